"""Lists as downloads in every format, re-read with independent readers: the answers of POST /overlaps and
/overlaps/bands (the same parcels, overlap areas and distances as the JSON, the owner masked by role) and the
districts' progress ranking (the same figures, each district with its boundary)."""

from __future__ import annotations

import pytest
import shapely

from gis.domain.stages import STAGE_LABELS_ZH
from tests.downloads import FILE_FORMATS, code_of, read_download


@pytest.fixture(scope="module")
def line(demo_city) -> dict:
    """Xin'an Road's centre line in the working CRS, as a planner would draw a variant of it."""
    project = demo_city.projects.set_index("code").loc["xinan_road"]
    return {"geometry": shapely.geometry.mapping(project["centerline"]), "crs": demo_city.srid, "width_m": 60}


@pytest.fixture(scope="module")
def answer(client, line) -> dict[str, dict]:
    body = client.post("/overlaps", json=line).json()
    assert body["totals"]["parcels"] > 100
    return {p["code"]: p for p in body["parcels"]}


@pytest.mark.parametrize("fmt", ("geojson", *FILE_FORMATS))
def test_an_overlap_answer_downloads_in_every_format(client, line, answer, role_headers, fmt, tmp_path):
    r = client.post("/overlaps", params={"format": fmt}, json=line, headers=role_headers["viewer"])
    assert r.status_code == 200, r.text
    assert "占压分析" in r.headers["content-disposition"] or "%E5%8D%A0" in r.headers["content-disposition"]
    if fmt == "geojson":
        rows = [f["properties"] for f in r.json()["features"]]
    else:
        rows = read_download(fmt, r.content, tmp_path)
    assert sorted(code_of(row, fmt) for row in rows) == sorted(answer)
    for row in rows:
        hit = answer[code_of(row, fmt)]
        if fmt in ("csv", "xlsx"):
            assert float(row["占用面积(㎡)"]) == pytest.approx(hit["overlap_m2"], abs=0.006)
            assert row["阶段"] == STAGE_LABELS_ZH[hit["stage"]]
            assert "*" in (row["权利人"] or "*")  # a viewer sees names masked
            if hit["estimated_compensation_yuan"] is not None:
                assert float(row["估算补偿(元)"]) == pytest.approx(hit["estimated_compensation_yuan"], abs=0.01)
        elif fmt != "kml":
            assert row["overlap_m2"] == pytest.approx(hit["overlap_m2"], abs=0.001)


def test_an_admin_download_shows_names_and_totals_match(client, line, answer, role_headers, tmp_path):
    r = client.post("/overlaps", params={"format": "xlsx"}, json=line, headers=role_headers["admin"])
    rows = read_download("xlsx", r.content, tmp_path)
    assert any(row["权利人"] and "*" not in row["权利人"] for row in rows)
    assert sum(float(row["占用面积(㎡)"]) for row in rows) == pytest.approx(
        sum(h["overlap_m2"] for h in answer.values()), abs=0.01 * len(rows))


def test_distance_bands_download_band_by_band(client, line, tmp_path):
    body = {"geometry": line["geometry"], "crs": line["crs"], "bands": [0, 30, 60, 120]}
    bands = client.post("/overlaps/bands", json=body).json()["bands"]
    r = client.post("/overlaps/bands", params={"format": "csv"}, json=body)
    assert r.status_code == 200, r.text
    rows = read_download("csv", r.content, tmp_path)
    expected = [(f"{b['from_m']:g}–{b['to_m']:g} m", i["code"], i["distance_m"]) for b in bands for i in b["items"]]
    assert len(expected) > 100
    assert [(row["距离带"], row["地块编号"]) for row in rows] == [(band, code) for band, code, _ in expected]
    for row, (_, _, distance) in zip(rows, expected):
        assert float(row["距中线(m)"]) == pytest.approx(distance, abs=0.006)


def test_an_unknown_format_is_refused_listing_the_formats(client, line):
    r = client.post("/overlaps", params={"format": "docx"}, json=line)
    assert r.status_code == 422 and "xlsx" in r.text


@pytest.mark.parametrize("fmt", ("csv", "xlsx", "gpkg"))
def test_district_progress_downloads_with_the_rankings_figures(client, fmt, tmp_path):
    ranking = client.get("/districts/progress").json()["districts"]
    r = client.get("/districts/progress", params={"format": fmt})
    assert r.status_code == 200, r.text
    rows = read_download(fmt, r.content, tmp_path)
    if fmt == "gpkg":
        got = [(row["rank"], row["district_code"], row["total"], row["cleared"], row["change_7d"]) for row in rows]
        areas = {d["code"]: d["area_m2"] for d in client.get("/districts").json()["districts"]}
        for row in rows:
            assert row["geometry"].area == pytest.approx(areas[row["district_code"]], rel=1e-6)
    else:
        got = [(int(row["名次"]), str(row["片区代码"]), int(row["项目内地块(宗)"]), int(row["已净地(宗)"]),
                int(row["近7日新增净地(宗)"])) for row in rows]
    assert got == [(d["rank"], d["district"], d["total"], d["cleared"], d["change"]["7d"]) for d in ranking]


def test_a_comparison_downloads_as_a_sheet_per_candidate_and_side_by_side(client, line, tmp_path):
    import io

    import openpyxl

    candidates = [{"name": "宽60米", **line}, {"name": "宽30米", **line, "width_m": 30}]
    compared = client.post("/overlaps/compare", json={"candidates": candidates}).json()
    each = {c["name"]: {p["code"] for p in client.post("/overlaps", json={k: v for k, v in c.items()
                                                                          if k != "name"}).json()["parcels"]}
            for c in candidates}
    r = client.post("/overlaps/compare", params={"format": "xlsx"}, json={"candidates": candidates})
    assert r.status_code == 200, r.text
    book = openpyxl.load_workbook(io.BytesIO(r.content), data_only=True)
    assert book.sheetnames == ["方案比选", "宽60米", "宽30米"]
    header, *rows = list(book["方案比选"].iter_rows(values_only=True))
    side = {row[0]: dict(zip(header, row, strict=True)) for row in rows[:-1]}
    assert str(rows[-1][0]).startswith("合计（2 个方案）")
    for c in compared["candidates"]:
        assert side[c["name"]]["占用地块(宗)"] == c["totals"]["parcels"]
        assert side[c["name"]]["估算补偿(元)"] == pytest.approx(c["totals"]["estimated_compensation_yuan"], abs=0.01)
        assert side[c["name"]]["各方案共同占用(宗)"] == compared["hit_by_all_count"]
        header, *parcels = list(book[c["name"]].iter_rows(values_only=True))
        assert {row[header.index("地块编号")] for row in parcels[:-1]} == each[c["name"]]
    flat = read_download("csv", client.post("/overlaps/compare", params={"format": "csv"},
                                            json={"candidates": candidates}).content, tmp_path)
    expected = {(n, code) for n, codes in each.items() for code in codes}
    assert {(row["方案"], row["地块编号"]) for row in flat} == expected
