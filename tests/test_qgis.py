"""A real QGIS — Debian 12's 3.22, the one on many planners' desks — reads the service headless, set up as the
README's QGIS steps say: a Basic authentication configuration with a viewer's name and API token, ``parcels``
and a project's blockers through the OAPIF provider, the parcels' vector tiles in both URL forms and an
imagery layer's tiles with the same configuration. Each layer is drawn to a PNG, and the stage colours (the
imagery's colour) must be in its pixels; the server's own log shows every request of each route family
answered, so removing Basic from any of them fails here.

QGIS runs in Debian's own python3 (``tests/qgis_probe.py``; the project's venv does not see the ``qgis``
module), against a uvicorn server started here on a small world of its own: 12 land parcels first (no floor
area: the first page, from which QGIS guesses its field types, has none) then 24 houses through every stage
of the main path, two districts, a zone project (no corridor width) over half of them, and a one-colour
orthophoto over the districts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from PIL import Image
from pyproj import Transformer
from sqlalchemy import text

from api.app import create_app
from gis.domain.privacy import mask_name
from gis.domain.stages import STAGES
from gis.imagery.layers import register_layer
from gis.maps.page import STAGE_COLOURS
from gis.maps.tiles import MAX_ZOOM, TILE_LAYERS
from gis.platform.db import get_engine
from tests.conftest import add_parcel, live_server, make_role_tokens, make_temp_dir
from tests.worlds import WORLD_ORIGIN, insert_zone, two_districts

SYSTEM_PYTHON = "/usr/bin/python3"
PROBE = Path(__file__).with_name("qgis_probe.py")
LAND, HOUSES = 12, 24
ORTHO_RGB = (200, 30, 160)  # a colour no stage has
NUMERIC_TYPES = {"Integer", "Integer64", "Real", "Double"}


def qgis_available() -> bool:
    return shutil.which(SYSTEM_PYTHON) is not None and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True).returncode == 0


class StatusLog:
    """ASGI wrapper recording each request's path, query and response status, as the server saw them."""

    def __init__(self, app) -> None:
        self.app = app
        self.requests: list[tuple[str, dict[str, list[str]], int]] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        entry = [scope["path"], parse_qs(scope["query_string"].decode()), 0]

        async def record(message) -> None:
            if message["type"] == "http.response.start":
                entry[2] = message["status"]
                self.requests.append(tuple(entry))
            await send(message)

        await self.app(scope, receive, record)

    def statuses(self, prefix: str, suffix: str = "") -> list[int]:
        return [status for path, _, status in self.requests if path.startswith(prefix) and path.endswith(suffix)]


@pytest.fixture(scope="module")
def world(pg_dir):
    """Database 'qgis' (see the module's docstring); the users qgis-<role>; the orthophoto's layer id."""
    assert qgis_available(), "Debian's python3-qgis is missing: scripts/bootstrap.sh installs it"
    s = two_districts(pg_dir, "qgis")
    engine = get_engine(s)
    with engine.begin() as conn:
        insert_zone(conn, s.srid, 1, "Z1", "测试园区", (500, 1500), "2025-06-01", "2027-06-30")
    for i in range(LAND + HOUSES):
        pid = add_parcel(s, 1 + i % 2, stage=STAGES[i % len(STAGES)], owner=f"王{'小大'[i % 2]}明",
                         inside_project=i % 3 != 0)
        if i < LAND:
            with engine.begin() as conn:
                conn.execute(text("UPDATE parcels SET kind = 'land', floor_area_m2 = NULL, land_area_mu = 0.6 "
                                  "WHERE id = :id"), {"id": pid})
        else:
            with engine.begin() as conn:
                conn.execute(text("UPDATE parcels SET floor_area_m2 = :m2 WHERE id = :id"),
                             {"id": pid, "m2": 100 + 7.5 * i})
    folder = make_temp_dir("pb-qgis-")
    x, y = WORLD_ORIGIN
    rgb = np.empty((3, 100, 200), dtype="uint8")  # 10 m pixels over both districts
    for band, value in enumerate(ORTHO_RGB):
        rgb[band] = value
    path = folder / "ortho.tif"
    with rasterio.open(path, "w", driver="GTiff", width=200, height=100, count=3, dtype="uint8",
                       crs=f"EPSG:{s.srid}", transform=Affine(10, 0, x, 0, -10, y + 1000)) as dst:
        dst.write(rgb)
    with engine.begin() as conn:
        layer = register_layer(conn, path, acquired_on=date(2025, 4, 1), kind="orthophoto")
    tokens = make_role_tokens(engine, ["a"], prefix="qgis")
    yield s, engine, tokens, layer.id
    shutil.rmtree(folder, ignore_errors=True)


def world_lonlat(srid: int) -> list[float]:
    x, y = WORLD_ORIGIN
    to_lonlat = Transformer.from_crs(srid, 4326, always_xy=True)
    (w, e), (s, n) = to_lonlat.transform([x - 50, x + 2050], [y - 50, y + 1050])
    return [w, s, e, n]


def run_qgis(base: str, out: Path, user: str | None, token: str | None, imagery: int, srid: int) -> dict:
    out.mkdir(exist_ok=True)
    job = out / "job.json"
    job.write_text(json.dumps({"base": base, "user": user, "token": token, "out": str(out), "blockers": "blockers-Z1",
                               "imagery": imagery, "colours": STAGE_COLOURS,
                               "zmin": TILE_LAYERS["parcels"].min_zoom, "zmax": MAX_ZOOM,
                               "extent_lonlat": world_lonlat(srid)}), encoding="utf-8")
    done = subprocess.run([SYSTEM_PYTHON, "-X", "faulthandler", str(PROBE), str(job)], capture_output=True, text=True,
                          timeout=300, env={"QT_QPA_PLATFORM": "offscreen", "HOME": str(out), "PATH": "/usr/bin:/bin",
                                            "LANG": "C.UTF-8"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def colours_in(png: str) -> set[tuple[int, int, int]]:
    """The colours covering at least 20 pixels (a few parcels' worth): edges and stray pixels left out."""
    return {rgb for n, rgb in Image.open(png).convert("RGB").getcolors(1 << 20) if n >= 20}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def test_a_viewers_qgis_reads_draws_and_sees_masked_owners(world, tmp_path):
    s, engine, tokens, imagery = world
    log = StatusLog(create_app(s))
    with live_server(log) as base:
        got = run_qgis(base, tmp_path, "qgis-viewer", tokens["viewer"], imagery, s.srid)
    assert got["qgis"].startswith("3.")
    with engine.connect() as conn:
        db = {r.id: r for r in conn.execute(text(
            "SELECT id, code, kind, stage, stage_since, owner_name, floor_area_m2 FROM parcels"))}
        blocking = {r[0] for r in conn.execute(text(
            "SELECT parcel_id FROM project_parcel_overlaps o JOIN parcels pa ON pa.id = o.parcel_id "
            "WHERE o.project_id = 1 AND pa.stage <> 'cleared'"))}

    parcels = got["parcels"]
    assert parcels["valid"], got["messages"]
    first = [q for path, q, _ in log.requests if path == "/ogc/collections/parcels/items"]
    assert first and first[0].get("limit") == ["10"]  # QGIS 3.22 guesses the field types from 10 features
    assert parcels["count"] == len(parcels["features"]) == len(db) == LAND + HOUSES  # every feature: numberMatched
    assert {f["code"] for f in parcels["features"]} == {r.code for r in db.values()}
    # Every numeric field is numeric in QGIS, though the first page's floor areas are all of land parcels.
    numeric = {"households", "floor_area_m2", "land_area_mu", "area_m2"}
    assert {n: t for n, t in parcels["fields"].items() if n in numeric} == {
        "households": "Integer", "floor_area_m2": "Real", "land_area_mu": "Real", "area_m2": "Real"}
    assert all(set(parcels["python_types"][n]) <= {"int", "float"} for n in numeric)
    assert parcels["fields"]["stage_since"] == "Date" and parcels["fields"]["holdout"] == "Boolean"
    by_code = {f["code"]: f for f in parcels["features"]}
    for r in db.values():
        f = by_code[r.code]
        assert f["stage"] == r.stage
        assert f["stage_since"] == r.stage_since.isoformat()
        assert f["floor_area_m2"] == (0 if r.kind == "land" else pytest.approx(r.floor_area_m2))
        assert f["owner_name"] == mask_name(r.owner_name) != r.owner_name  # a viewer's QGIS: masked

    blockers = got["blockers"]
    assert blockers["valid"], got["messages"]
    # QGIS numbers features its own way: compared by parcel code
    assert {f["code"] for f in blockers["features"]} == {db[i].code for i in blocking}
    assert 0 < len(blocking) < len(db)
    assert {n: t for n, t in blockers["fields"].items() if n in numeric | {"overlap_m2", "share"}} == {
        "households": "Integer", "floor_area_m2": "Real", "land_area_mu": "Real", "area_m2": "Real",
        "overlap_m2": "Real", "share": "Real"}

    # Drawn: every stage's colour of the style is in the pixels of each layer (blockers: the stages blocking).
    stages = {rgb(STAGE_COLOURS[r.stage]) for r in db.values()}
    blocking_stages = {rgb(STAGE_COLOURS[db[i].stage]) for i in blocking}
    assert colours_in(parcels["png"]) >= stages
    assert colours_in(blockers["png"]) & stages == blocking_stages
    for form in ("xyz", "ogc"):
        assert got["tiles"][form]["valid"]
        assert colours_in(got["tiles"][form]["png"]) >= stages, form
    assert got["imagery"]["valid"] and ORTHO_RGB in colours_in(got["imagery"]["png"])

    # Every request of each route family was answered (Basic accepted everywhere QGIS goes).
    families = {
        "OGC API": log.statuses("/ogc/collections/parcels/items") + log.statuses("/ogc/collections/blockers-Z1"),
        "vector tiles": log.statuses("/tiles/parcels/", ".mvt"),
        "OGC tiles": log.statuses("/ogc/collections/parcels/tiles/WebMercatorQuad/"),
        "imagery tiles": log.statuses(f"/imagery/{imagery}/tiles/", ".png"),
    }
    for family, statuses in families.items():
        assert statuses and set(statuses) <= {200, 204}, (family, statuses)


def test_an_anonymous_qgis_gets_nothing(world, tmp_path):
    s, _, _, imagery = world
    log = StatusLog(create_app(s))
    with live_server(log) as base:
        got = run_qgis(base, tmp_path, None, None, imagery, s.srid)
    assert not got["parcels"]["valid"] and not got["blockers"]["valid"]
    colours = {rgb(c) for c in STAGE_COLOURS.values()}
    for form in ("xyz", "ogc"):
        assert not colours_in(got["tiles"][form]["png"]) & colours, form  # a blank map
    assert not got["imagery"]["valid"] or ORTHO_RGB not in colours_in(got["imagery"]["png"])
    assert log.requests and {status for _, _, status in log.requests} == {401}


def test_gdal_pages_as_large_as_page_size_with_basic_auth(world, tmp_path):
    """The README's GDAL step: ``-oo PAGE_SIZE=10000`` asks for pages of 10,000, and the server answers them."""
    s, _, tokens, _ = world
    log = StatusLog(create_app(s))
    out = tmp_path / "parcels.gpkg"
    with live_server(log) as base:
        done = subprocess.run(
            ["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{base}/ogc", "parcels", "-oo", "PAGE_SIZE=10000",
             "--config", "GDAL_HTTP_AUTH", "BASIC", "--config", "GDAL_HTTP_USERPWD", f"qgis-viewer:{tokens['viewer']}"],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(pyogrio.read_dataframe(out)) == LAND + HOUSES
    pages = [q for path, q, status in log.requests if path == "/ogc/collections/parcels/items" and status == 200]
    assert pages and pages[-1].get("limit") == ["10000"] and "offset" not in pages[-1]


def test_schema_and_queryables_state_every_fields_type_and_numbers_come_as_numbers(world):
    """Each collection's schema (and, for what a viewer may filter on, its queryables) types every property the
    features carry; every number-typed property of every feature is a JSON number or null, never a string."""
    from fastapi.testclient import TestClient

    s, _, tokens, _ = world
    json_types = {"number": (int, float), "integer": (int,), "boolean": (bool,), "string": (str,)}
    with TestClient(create_app(s), headers={"Authorization": f"Bearer {tokens['viewer']}"}) as client:
        for collection in ("parcels", "blockers-Z1", "projects", "districts"):
            described = client.get(f"/ogc/collections/{collection}").json()["links"]
            assert {(x["rel"], x["type"]) for x in described if x["href"].endswith("/schema")} >= {
                ("describedby", "application/schema+json")}
            schema = client.get(f"/ogc/collections/{collection}/schema")
            assert schema.status_code == 200 and schema.headers["content-type"] == "application/schema+json"
            properties = schema.json()["properties"]
            queryables = client.get(f"/ogc/collections/{collection}/queryables").json()["properties"]
            assert all(queryables[n] == properties[n] for n in queryables)  # the same types, where both say
            features = client.get(f"/ogc/collections/{collection}/items", params={"limit": 10000}).json()["features"]
            assert features
            for feature in features:
                assert set(feature["properties"]) == set(properties) - {"geometry"}, collection
                for name, value in feature["properties"].items():
                    if value is not None:
                        assert isinstance(value, json_types[properties[name]["type"]]), (collection, name, value)
                        assert not (properties[name]["type"] != "boolean" and isinstance(value, bool))
        projects = client.get("/ogc/collections/projects/items").json()["features"]
        assert [p["properties"]["corridor_width_m"] for p in projects] == [0]  # a zone has no corridor: 0
