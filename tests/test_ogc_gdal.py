"""GDAL's OAPIF driver (from pyogrio's wheels) reads every collection of the OGC API from a real uvicorn
server, as QGIS would, and the server's own request log shows that filters and bboxes reached it.

The token goes in a bearer header: GDAL_HTTP_AUTH=BEARER with GDAL_HTTP_BEARER. (GDAL_HTTP_HEADERS
is not enough for OAPIF: the driver sets its own Accept header, which replaces GDAL_HTTP_HEADERS.)
pyogrio reads with ``use_arrow=True``: its row-by-row reader keeps the GIL while GDAL waits for the
server, which here runs in a thread of the same process.
"""

from __future__ import annotations

import random
from urllib.parse import parse_qs

import pyogrio
import pytest
import shapely
from sqlalchemy import text

from api.app import create_app
from tests.conftest import live_server

MIN_M2, MIN_SHARE = 1.0, 0.005


class RequestLog:
    """ASGI wrapper recording each request's path and query string, as the server received them."""

    def __init__(self, app) -> None:
        self.app = app
        self.requests: list[tuple[str, dict[str, list[str]]]] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["path"], parse_qs(scope["query_string"].decode())))
        await self.app(scope, receive, send)

    def items_requests(self, collection: str) -> list[dict[str, list[str]]]:
        return [q for path, q in self.requests if path == f"/ogc/collections/{collection}/items"]


@pytest.fixture(scope="module")
def server(settings, demo_city, role_tokens):
    log = RequestLog(create_app(settings))
    options = {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": role_tokens["viewer"]}
    pyogrio.set_gdal_config_options(options)
    try:
        with live_server(log) as base:
            yield f"OAPIF:{base}/ogc", log
    finally:
        pyogrio.set_gdal_config_options({k: None for k in options})


def read(url: str, layer: str, **kwargs):
    return pyogrio.read_dataframe(url, layer=layer, use_arrow=True, fid_as_index=True, **kwargs)


def db_geometries(engine, sql: str, params: dict) -> dict[int, shapely.Geometry]:
    with engine.connect() as conn:
        return {int(i): shapely.from_wkb(bytes(g)) for i, g in conn.execute(text(sql), params)}


def test_gdal_lists_and_reads_every_collection_through_paging(server, engine, settings):
    url, log = server
    with engine.connect() as conn:
        projects = [r.code for r in conn.execute(text("SELECT code FROM projects ORDER BY id"))]
    layers = dict(pyogrio.list_layers(url))
    assert set(layers) == {"parcels", "projects", "districts"} | {f"blockers-{c}" for c in projects}
    assert set(layers.values()) == {"MultiPolygon"}
    sources = {
        "parcels": ("SELECT id, ST_AsBinary(geom) FROM parcels", {}),
        "projects": ("SELECT id, ST_AsBinary(footprint) FROM projects", {}),
        "districts": ("SELECT id, ST_AsBinary(geom) FROM districts", {}),
    }
    for code in projects:
        sources[f"blockers-{code}"] = (
            "SELECT pa.id, ST_AsBinary(pa.geom) FROM project_parcel_overlaps o JOIN parcels pa ON pa.id = o.parcel_id "
            "JOIN projects p ON p.id = o.project_id WHERE p.code = :code AND o.overlap_m2 >= :m2 "
            "AND o.share >= :share AND pa.stage <> 'cleared'", {"code": code, "m2": MIN_M2, "share": MIN_SHARE})
    rng = random.Random(8)
    for layer, (sql, params) in sources.items():
        expected = db_geometries(engine, sql, params)
        frame = read(url, layer)
        assert len(frame) == len(expected) > 0, layer
        assert set(frame.index) == set(expected), layer  # feature ids are the database ids
        assert frame.crs.to_epsg() == settings.srid  # GDAL took the storage CRS the collection offers
        for fid in rng.sample(sorted(expected), min(25, len(expected))):
            got = frame.geometry.loc[fid]
            assert got.equals_exact(expected[fid], tolerance=0.002), (layer, fid)  # coordinates to the mm
    pages = log.items_requests("parcels")
    offsets = sorted(int(q["offset"][0]) for q in pages if "offset" in q)
    assert offsets[:4] == [1000, 2000, 3000, 4000]  # read in pages of 1,000, the API's limit for GDAL


def test_attribute_filter_and_bbox_are_sent_to_the_server(server, engine, demo_city):
    url, log = server
    with engine.connect() as conn:
        paid = {r[0] for r in conn.execute(text("SELECT id FROM parcels WHERE stage = 'paid'"))}
    log.requests.clear()
    frame = read(url, "parcels", where="stage = 'paid'")
    assert set(frame.index) == paid and set(frame["stage"]) == {"paid"}
    data_requests = [q for q in log.items_requests("parcels") if q.get("limit") != ["20"]]
    assert data_requests and all(q.get("stage") == ["paid"] for q in data_requests)
    assert all("offset" not in q for q in data_requests)  # 148 features: one page, filtered on the server

    x0, y0, x1, y1 = shapely.bounds(shapely.union_all(demo_city.parcels.geometry.values[:300]))
    with engine.connect() as conn:
        inside = {r[0] for r in conn.execute(text(
            "SELECT id FROM parcels WHERE ST_Intersects(geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4549))"),
            {"x0": x0, "y0": y0, "x1": x1, "y1": y1})}
    log.requests.clear()
    frame = read(url, "parcels", bbox=(x0, y0, x1, y1))
    assert set(frame.index) == inside and 0 < len(inside) < 2000
    data_requests = [q for q in log.items_requests("parcels") if q.get("limit") != ["20"]]
    assert data_requests and all("bbox" in q for q in data_requests)
    sent = [float(v) for v in data_requests[0]["bbox"][0].split(",")]
    assert sent == pytest.approx([y0, x0, y1, x1])  # northing first: EPSG:4549's own axis order
    assert data_requests[0]["bbox-crs"] == ["http://www.opengis.net/def/crs/EPSG/0/4549"]


def test_debian_gdal_reads_with_basic_auth_and_pushes_a_boolean_filter(settings, demo_city, role_tokens, tmp_path):
    """GDAL 3.6 (Debian 12's ogr2ogr, as many QGIS installs bundle) cannot send a bearer token: it reads with
    HTTP Basic, the user's name and a token as the password, and its ``-where "holdout = 1"`` reaches the
    server as a filter on the queryable."""
    import subprocess

    log = RequestLog(create_app(settings))
    out = tmp_path / "holdouts.geojson"
    holdouts = set(demo_city.parcels.loc[demo_city.parcels["holdout"], "code"])
    assert holdouts
    with live_server(log) as base:
        def ogr2ogr(user: str, token: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                ["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{base}/ogc", "parcels", "-where", "holdout = 1",
                 "--config", "GDAL_HTTP_AUTH", "BASIC", "--config", "GDAL_HTTP_USERPWD", f"{user}:{token}"],
                capture_output=True, text=True, timeout=300)

        refused = ogr2ogr("test-admin", role_tokens["viewer"])  # another user's token
        assert refused.returncode != 0 and "401" in refused.stderr
        done = ogr2ogr("test-viewer", role_tokens["viewer"])
    assert done.returncode == 0, done.stderr
    written = pyogrio.read_dataframe(out)
    assert set(written["code"]) == holdouts
    pushed = log.items_requests("parcels")
    # the first request reads the layer's schema; every page after it carries the filter
    assert len(pushed) > 1 and all(q.get("holdout") == ["1"] for q in pushed[1:])
