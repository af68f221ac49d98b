"""Zip bombs and path traversal (issue 14, defect 4): an uploaded zip is checked from its directory before
anything is extracted (member count, total unpacked size, compression ratio, member names), and extraction
counts what it really writes; every upload route answers 413 or 422 with JSON, and nothing is imported."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import text

from gis.io import archives
from gis.io.archives import ZipLimits
from gis.io.readers import unpacked

GEOJSON = json.dumps({"type": "FeatureCollection", "features": [{
    "type": "Feature", "properties": {"code": "Z1"},
    "geometry": {"type": "Polygon", "coordinates": [[[118.98, 30.63], [118.981, 30.63], [118.981, 30.631],
                                                     [118.98, 30.63]]]}}]}).encode()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def lying_zip(name: str, data: bytes, stated: int) -> bytes:
    """A zip whose headers (local and central) state ``stated`` unpacked bytes for a member of len(data)."""
    raw = bytearray(make_zip({name: data}))
    local = raw.index(b"PK\x03\x04")
    struct.pack_into("<I", raw, local + 22, stated)
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, stated)
    return bytes(raw)


@pytest.fixture
def small_limits(monkeypatch):
    """Caps small enough that a bomb is crafted in milliseconds."""
    monkeypatch.setattr(archives, "ZIP_LIMITS", ZipLimits(max_members=20, max_unpacked_bytes=2_000_000,
                                                          max_ratio=50, ratio_floor_bytes=64 * 1024))


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_plain_zip_still_unpacks(tmp_path, small_limits):
    path = _write(tmp_path, "ok.zip", make_zip({"parcels/地块.geojson": GEOJSON}))
    with unpacked(path) as inner:
        assert inner.read_bytes() == GEOJSON


@pytest.mark.parametrize(("case", "status", "words"), [
    ("ratio", 413, "zip bomb"),
    ("total", 413, "unpacks to"),
    ("members", 413, "files"),
    ("traversal", 422, "unsafe path"),
    ("absolute", 422, "unsafe path"),
])
def test_the_directory_is_checked_before_extracting(tmp_path, small_limits, monkeypatch, case, status, words):
    members = {
        "ratio": {"bomb.geojson": b"\0" * 3_000_000},  # ~1000 to 1
        "total": {"a.geojson": GEOJSON, **{f"x{i}.bin": os.urandom(250_000) for i in range(9)}},
        "members": {**{f"f{i}.txt": b"x" for i in range(30)}, "a.geojson": GEOJSON},
        "traversal": {"../../evil.geojson": GEOJSON},
        "absolute": {"/etc/evil.geojson": GEOJSON},
    }[case]
    path = _write(tmp_path, "up.zip", make_zip(members))
    extracted = []
    monkeypatch.setattr(archives.Extraction, "extract_member", lambda *a: extracted.append(a))
    with pytest.raises(Exception) as err, unpacked(path):
        pass
    assert err.value.status_code == status and words in str(err.value)
    assert not extracted  # refused from the directory alone


def test_extraction_does_not_trust_the_stated_sizes(tmp_path, small_limits):
    """The directory says 1,000 bytes; the member really holds 3 MB of zeros: refused, ≤ 1,000 bytes written."""
    path = _write(tmp_path, "liar.zip", lying_zip("data.geojson", b"\0" * 3_000_000, 1000))
    target = tmp_path / "out"
    with zipfile.ZipFile(path) as archive:
        member = archive.infolist()[0]
        assert member.file_size == 1000
        with pytest.raises(Exception) as err:
            archives.Extraction().extract_member(archive, member, target)
    assert err.value.status_code == 422
    assert target.stat().st_size <= 1000
    with pytest.raises(Exception) as err, unpacked(path):
        pass
    assert err.value.status_code == 422


def test_extraction_counts_the_total_across_members(tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "ZIP_LIMITS", ZipLimits(max_unpacked_bytes=10_000))
    data = make_zip({"a.shp": b"1" * 6000, "a.dbf": b"2" * 6000})
    path = _write(tmp_path, "two.zip", data)
    with zipfile.ZipFile(path) as archive:
        extraction = archives.Extraction()
        a, b = archive.infolist()
        # Pretend the directory check passed (as it would, were the sizes stated lower): the writes are counted.
        extraction.extract_member(archive, a, tmp_path / "a")
        with pytest.raises(Exception) as err:
            extraction.extract_member(archive, b, tmp_path / "b")
    assert err.value.status_code == 413


def test_upload_routes_refuse_bombs_with_json(client, engine, small_limits):
    bomb = make_zip({"bomb.geojson": b"\0" * 3_000_000})
    xlsx_bomb = make_zip({"[Content_Types].xml": b"<Types/>", "xl/worksheets/sheet1.xml": b" " * 3_000_000})
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM parcels")).scalar_one()
    routes = [
        ("/imports", "parcels.zip", bomb, {"dry_run": "false"}),
        ("/imports", "parcels.xlsx", xlsx_bomb, {}),
        ("/imports", "parcels.kmz", bomb, {}),
        ("/districts/imports", "districts.zip", bomb, {}),
        ("/admin/files/layers", "drawing.zip", bomb, {}),
        ("/standards/imports", "standards.xlsx", xlsx_bomb, {}),
        ("/projects/preview", "line.zip", bomb, {}),
    ]
    for route, name, body, form in routes:
        r = client.post(route, files={"file": (name, body)}, data=form)
        assert r.status_code == 413, (route, name, r.status_code, r.text)
        assert "detail" in r.json(), route
    traversal = make_zip({"../../../tmp/evil.geojson": GEOJSON})
    r = client.post("/imports", files={"file": ("parcels.zip", traversal)})
    assert r.status_code == 422 and "unsafe path" in r.json()["detail"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM parcels")).scalar_one() == before
