"""A real city from its own files only, as a new user would set it up: the two French communes.

A fresh data folder with Lambert-93 as the working CRS; the districts from a file made from the communes,
the parcels of both with ``gis import``, a project from the Ile-de-France rail lines file filtered to
TRAIN and RER, 40 m wide. Everything is set up through the ``gis`` command, in its own process: no SQL,
no library call. The answers are checked against shapely and pyproj on the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import mapping

from gis.platform import cluster
from tests.conftest import SHARED_DATA, make_temp_dir
from tests.worlds import settings_for

RAIL_DIR = SHARED_DATA / "fr-cadastre-rail"
COMMUNES = {"75118": ("巴黎十八区", RAIL_DIR / "cadastre-75118-parcelles.json"),
            "91216": ("埃皮奈奥尔日", RAIL_DIR / "cadastre-91216-parcelles.json")}
RAIL = RAIL_DIR / "traces-du-reseau-ferre-idf.geojson"
HEAVY_RAIL = "mode IN ('TRAIN', 'RER')"
WIDTH = 40.0
MIN_M2, MIN_SHARE = 1.0, 0.005


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """A data folder of its own and the ``gis`` command run in it, GIS_SRID=2154."""
    path = make_temp_dir("pb-realcity-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIS_")}
    env |= {"GIS_DATA_DIR": str(path), "GIS_PG_FSYNC": "false", "GIS_SRID": "2154", "COLUMNS": "200"}

    def gis(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True,
                              timeout=600)
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    files = tmp_path_factory.mktemp("real-city-files")
    yield gis, files
    cluster.stop(settings_for(path))
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def parcels() -> gpd.GeoDataFrame:
    frames = [gpd.read_file(f).assign(commune_code=code) for code, (_, f) in COMMUNES.items()]
    return gpd.GeoDataFrame(gpd.pd.concat(frames, ignore_index=True), crs=4326).to_crs(2154)


def heavy_rail() -> gpd.GeoDataFrame:
    rail = gpd.read_file(RAIL)
    return rail[rail["mode"].isin(["TRAIN", "RER"])].to_crs(2154)


def corridor_oracle(lines, width: float):
    """The corridor rule computed another way: the whole network buffered with round ends, then each free
    end's round cap cut off by a box beyond the end, square to the line's last segment."""
    merged = shapely.line_merge(shapely.union_all(lines))
    parts = shapely.get_parts(merged)
    r = width / 2
    ends = [(p.coords[0], p.coords[1]) for p in parts] + [(p.coords[-1], p.coords[-2]) for p in parts]
    points = [e for e, _ in ends]
    free = [(e, n) for e, n in ends if points.count(e) == 1]
    caps = []
    for (x, y), (nx, ny) in free:
        d = np.array([x - nx, y - ny])
        d /= np.hypot(*d)
        n = np.array([-d[1], d[0]])
        e = np.array([x, y])
        caps.append(shapely.Polygon([e + n * r * 1.01, e + n * r * 1.01 + d * r * 1.01,
                                     e - n * r * 1.01 + d * r * 1.01, e - n * r * 1.01]))
    return shapely.difference(shapely.buffer(merged, r), shapely.union_all(caps))


def test_a_city_from_its_own_files(city, parcels):
    gis, files = city
    gis("db", "up")

    # Districts: one per commune, the union of its parcels a few metres wide, in WGS 84 like the sources.
    districts = gpd.GeoDataFrame(
        {"insee": list(COMMUNES), "nom": [name for name, _ in COMMUNES.values()]},
        geometry=[shapely.union_all(parcels[parcels.commune_code == c].geometry.values).buffer(5) for c in COMMUNES],
        crs=2154).to_crs(4326)
    districts_file = files / "communes.gpkg"
    districts.to_file(districts_file, driver="GPKG")
    gis("districts", "import", str(districts_file), "--map", "insee=code", "--map", "nom=name")

    for _, source in COMMUNES.values():
        gis("import", str(source), "--map", "id=code", "--map", "contenance=land_area_m2", "--map", "commune=-",
            "--default", "kind=land")
    gis("projects", "add", "rer", "--name", "RER 与 TRAIN 线路", "--kind", "rail", "--line", str(RAIL),
        "--where", HEAVY_RAIL, "--width", str(WIDTH))

    out = gis("blockers", "rer", "--format", "geojson").stdout
    got = {f["properties"]["code"]: f["properties"] for f in json.loads(out)["features"]}

    footprint = corridor_oracle(heavy_rail().geometry.values, WIDTH)
    shapely.prepare(footprint)
    geoms = parcels.geometry.values
    hit = shapely.intersects(footprint, geoms)
    expected = {}
    for code, geom in zip(parcels["id"].values[hit], geoms[hit]):
        area = shapely.area(shapely.intersection(geom, footprint))
        if area >= MIN_M2 and area >= MIN_SHARE * geom.area:
            expected[code] = area
    assert len(expected) > 25
    assert set(got) == set(expected)
    for code, area in expected.items():
        assert got[code]["overlap_m2"] == pytest.approx(area, rel=1e-3), code
    districts_of = dict(zip(parcels["id"], parcels["commune_code"]))
    assert {got[c]["district_code"] for c in got} == {districts_of[c] for c in got} == set(COMMUNES)
    assert all(got[c]["district_code"] == districts_of[c] for c in got)


def test_a_line_in_pieces_merged_or_drawn_gives_one_footprint(city, parcels):
    """The TRAIN and RER lines through Paris 18e as their pieces, as one merged line, and as a DXF drawing."""
    gis, files = city
    rail = heavy_rail()
    hull = shapely.convex_hull(shapely.union_all(parcels[parcels.commune_code == "75118"].geometry.values))
    through = set(rail.loc[rail.intersects(hull), "res_com"])
    pieces = rail[rail["res_com"].isin(through)]
    assert len(pieces) > 200
    pieces_file = files / "pieces.geojson"
    pieces[["res_com", "geometry"]].to_crs(4326).to_file(pieces_file, driver="GeoJSON")
    merged = shapely.line_merge(shapely.union_all(pieces.geometry.values))
    merged_file = files / "merged.geojson"
    merged_file.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": mapping(gpd.GeoSeries([merged], crs=2154).to_crs(4326)[0])}
    ]}))
    dxf_file = files / "lines.dxf"
    gpd.GeoDataFrame({"Layer": ["铁路中线"] * len(pieces)}, geometry=pieces.geometry.values).to_file(
        dxf_file, driver="DXF")

    gis("projects", "add", "pieces", "--name", "分段", "--kind", "rail", "--line", str(pieces_file),
        "--width", str(WIDTH))
    gis("projects", "add", "merged", "--name", "合并", "--kind", "rail", "--line", str(merged_file),
        "--width", str(WIDTH))
    refused = gis("projects", "add", "drawn", "--name", "图纸", "--kind", "rail", "--line", str(dxf_file),
                  "--width", str(WIDTH), ok=False)
    assert refused.returncode == 1 and "--crs" in refused.stderr
    gis("projects", "add", "drawn", "--name", "图纸", "--kind", "rail", "--line", str(dxf_file), "--width",
        str(WIDTH), "--layer", "铁路中线", "--crs", "2154")
    listed = {p["code"]: p for p in json.loads(gis("projects", "list", "--json").stdout)}
    areas = [listed[c]["footprint_m2"] for c in ("pieces", "merged", "drawn")]
    assert max(areas) / min(areas) - 1 < 1e-4, areas
    oracle = corridor_oracle(pieces.geometry.values, WIDTH).area
    assert areas[0] == pytest.approx(oracle, rel=1e-4)
    # Buffering each piece with flat ends, as before, notches every joint: measurably less.
    notched = shapely.buffer(shapely.multilinestrings(list(pieces.geometry.values)), WIDTH / 2, cap_style="flat").area
    assert notched < areas[0] - 100
    assert listed["pieces"]["parcels"] == listed["merged"]["parcels"] == listed["drawn"]["parcels"] > 0
