"""A project's blockers as a download in every format, re-read with an independent reader: the same parcels
and overlap areas as the JSON list, the whole list (not a page) unless a limit is given."""

from __future__ import annotations

import csv
import io
from urllib.parse import unquote

import pytest

from gis.domain.stages import STAGE_LABELS_ZH, today_in
from tests.downloads import FILE_FORMATS, code_of, read_download


@pytest.fixture(scope="module")
def xinan(client, projects):
    project = projects["xinan_road"]
    listed = client.get(f"/projects/{project['id']}/blockers", params={"limit": 10000}).json()
    assert listed["total"] > 100  # more than a page: a download that stopped at one would show
    return project, {i["code"]: i for i in listed["items"]}


@pytest.fixture(scope="module")
def projects(client):
    return {p["code"]: p for p in client.get("/projects").json()["projects"]}


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_every_format_holds_the_whole_list_with_its_areas(client, settings, xinan, fmt, tmp_path, role_headers):
    project, expected = xinan
    r = client.get(f"/projects/{project['code']}/blockers", params={"format": fmt}, headers=role_headers["viewer"])
    assert r.status_code == 200, r.text
    name = unquote(r.headers["content-disposition"].split("filename*=UTF-8''")[1])
    assert name.startswith(f"{project['name']}_阻碍地块_{today_in(settings.city_timezone).isoformat()}")
    rows = read_download(fmt, r.content, tmp_path)
    codes = [code_of(row, fmt) for row in rows]
    assert sorted(codes) == sorted(expected)
    if fmt in ("csv", "xlsx"):
        for row in rows:
            item = expected[str(row["地块编号"])]
            assert float(row["占用面积(㎡)"]) == pytest.approx(item["overlap_m2"], abs=0.006)
            assert row["阶段"] == STAGE_LABELS_ZH[item["stage"]]
            assert "*" in (row["权利人"] or "*")  # the client's role (viewer) sees names masked
    elif fmt != "kml":
        for row in rows:
            assert row["overlap_m2"] == pytest.approx(expected[str(row["code"])]["overlap_m2"], abs=0.001)


def test_a_limit_and_the_filters_apply_to_a_download(client, xinan):
    project, expected = xinan
    r = client.get(f"/projects/{project['id']}/blockers", params={"format": "csv", "limit": 5,
                                                                  "sort": "-overlap_m2"})
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))[:-1]
    largest = sorted(expected.values(), key=lambda i: (-i["overlap_m2"], i["code"]))[:5]
    assert [row["地块编号"] for row in rows] == [i["code"] for i in largest]
    holdouts = client.get(f"/projects/{project['id']}/blockers", params={"format": "csv", "holdout": "true"})
    rows = list(csv.DictReader(io.StringIO(holdouts.content.decode("utf-8-sig"))))[:-1]
    assert {row["地块编号"] for row in rows} == {c for c, i in expected.items() if i["holdout"]}


def test_unknown_format_or_district_is_refused(client, xinan):
    project, _ = xinan
    r = client.get(f"/projects/{project['id']}/blockers", params={"format": "docx"})
    assert r.status_code == 422 and "xlsx" in r.text
    r = client.get(f"/projects/{project['id']}/blockers", params={"format": "xlsx", "district": "无此片区"})
    assert r.status_code == 422 and r.json()["where"] == "district"


def test_the_command_line_writes_the_same_bytes_as_the_api(client, settings, xinan, role_headers, tmp_path):
    import os
    import subprocess
    import sys

    project, _ = xinan
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIS_")}
    env |= {"GIS_DATA_DIR": str(settings.data_dir), "GIS_PG_PORT": str(settings.pg_port)}
    for fmt in ("csv", "xlsx"):
        api = client.get("/projects/xinan_road/blockers", params={"format": fmt}, headers=role_headers["viewer"])
        out = tmp_path / f"cli.{fmt}"
        proc = subprocess.run([sys.executable, "-m", "cli", "blockers", "xinan_road", "--format", fmt,
                               "-o", str(out)], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes() == api.content


def test_parcel_export_of_a_project_is_its_footprints_parcels(client, xinan):
    project, blockers = xinan
    r = client.get("/parcels/export", params={"format": "csv", "project": project["code"]})
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))[:-1]
    codes = {row["地块编号"] for row in rows}
    assert len(codes) == project["parcels"]  # the project's parcels, cleared ones included
    assert set(blockers) <= codes
    assert sum(row["阶段"] == STAGE_LABELS_ZH["cleared"] for row in rows) == project["cleared"]
    assert client.get("/parcels/export", params={"project": "xinan"}).status_code == 422
