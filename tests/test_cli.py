"""The ``gis`` command line, run as a user would: a real process, its own embedded cluster."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
import shapely
from sqlalchemy import text

from gis.platform import cluster
from gis.platform.db import get_engine
from tests.conftest import make_temp_dir
from tests.worlds import settings_for


@pytest.fixture(scope="module")
def cli_env():
    """A data folder whose cluster the command line set up and loaded with a 600-parcel demo city, so that each
    test runs alone as well as in the file's order."""
    path = make_temp_dir("pb-cli-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIS_")}
    env |= {"GIS_DATA_DIR": str(path), "GIS_PG_FSYNC": "false", "COLUMNS": "200"}
    gis(env, "db", "up")
    gis(env, "demo", "load", "--parcels", "600", "--seed", "7")
    yield env, path
    cluster.stop(settings_for(path))
    shutil.rmtree(path, ignore_errors=True)


def gis(env, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_db_up_twice_then_demo_load_twice_replaces_the_city(cli_env):
    env, path = cli_env  # the fixture ran each once
    gis(env, "db", "up")
    assert gis(env, "db", "status").returncode == 0
    gis(env, "demo", "load", "--parcels", "600", "--seed", "7")
    with get_engine(settings_for(path)).connect() as conn:
        n, distinct = conn.execute(text("SELECT count(*), count(DISTINCT code) FROM parcels")).one()
        projects = conn.execute(text("SELECT count(*) FROM projects")).scalar_one()
        overlaps = conn.execute(text("SELECT count(*) FROM project_parcel_overlaps")).scalar_one()
    assert (n, distinct, projects) == (600, 600, 3)
    assert overlaps > 0


def test_blockers_as_csv_match_the_library(cli_env):
    env, path = cli_env
    out = gis(env, "blockers", "xinan_road", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out.removeprefix("\ufeff"))))
    assert rows and "地块编号" in rows[0] and "占用面积(㎡)" in rows[0]
    assert rows.pop()["地块编号"].startswith("合计")
    with get_engine(settings_for(path)).connect() as conn:
        expected = conn.execute(text(
            "SELECT count(*) FROM project_parcel_overlaps o JOIN parcels p ON p.id = o.parcel_id "
            "JOIN projects pr ON pr.id = o.project_id WHERE pr.code = 'xinan_road' AND p.stage <> 'cleared' "
            "AND o.overlap_m2 >= 1 AND o.share >= 0.005")).scalar_one()
    assert len(rows) == expected
    geojson = json.loads(gis(env, "blockers", "xinan_road", "--format", "geojson").stdout)
    assert len(geojson["features"]) == expected


def test_overlaps_and_progress(cli_env, tmp_path):
    env, path = cli_env
    with get_engine(settings_for(path)).connect() as conn:
        line = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(ST_Transform(ST_GeometryN(centerline, 1), 4326)) FROM projects "
            "WHERE code = 'xinan_road'")).scalar_one()))
    f = tmp_path / "line.geojson"
    f.write_text(json.dumps(shapely.geometry.mapping(line)))
    report = json.loads(gis(env, "overlaps", str(f), "--width", "40").stdout)
    assert report["totals"]["parcels"] > 0 and report["query"]["width_m"] == 40
    assert "各片区征迁进度" in gis(env, "progress").stderr


def test_bad_input_exits_1_with_a_message_and_no_traceback(cli_env, tmp_path):
    env, _ = cli_env
    f = tmp_path / "bad.geojson"
    f.write_text(json.dumps({"type": "Point", "coordinates": [118.9, 30.6]}))
    proc = gis(env, "overlaps", str(f), "--width", "40", check=False)
    assert proc.returncode == 1 and "Point" in proc.stderr and "Traceback" not in proc.stderr
    proc = gis(env, "blockers", "no-such-project", check=False)
    assert proc.returncode == 1 and "no-such-project" in proc.stderr
    proc = gis(env, "overlaps", str(f), check=False)
    assert proc.returncode == 1
    f.write_text(json.dumps({"type": "LineString", "coordinates": [[30.62, 118.96], [30.64, 118.99]]}))
    proc = gis(env, "overlaps", str(f), "--width", "40", check=False)
    assert proc.returncode == 1 and "[longitude, latitude]" in proc.stderr
    proc = gis(env, "blockers", "hsr", "--as-of", "2026-13-01", check=False)
    assert proc.returncode == 1 and "--as-of" in proc.stderr and "Traceback" not in proc.stderr


def test_db_down_leaves_no_server(cli_env):
    env, path = cli_env
    pid = int((settings_for(path).cluster_dir / "postmaster.pid").read_text().split()[0])
    gis(env, "db", "down")
    assert gis(env, "db", "status", check=False).returncode == 3
    stat = f"/proc/{pid}/stat"
    assert not os.path.exists(stat) or open(stat).read().rsplit(")", 1)[1].split()[0] == "Z"
