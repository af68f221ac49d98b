"""Personal data in upload names (issue 14, defect 9): every upload route saves the file under a neutral name, so
neither the service's log nor an error message carries the name or ID number a planner put in the file name, and
no error response shows a server path (GDAL names the file it could not read)."""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
import zipfile

import pytest

from api.errors import scrub_paths
from api.uploads import stored_name

PERSON, ID_NUMBER = "黄辉霞", "341881200012042564"
SERVER_PATH = re.compile(r"/(tmp|var|vsi\w*|dev/shm)/|pb-(upload|import|standards|alignment)-")

GEOJSON = json.dumps({"type": "FeatureCollection", "features": [{
    "type": "Feature", "properties": {"code": "P1"},
    "geometry": {"type": "Polygon", "coordinates": [[[118.98, 30.63], [118.981, 30.63], [118.981, 30.631],
                                                     [118.98, 30.63]]]}}]}).encode()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


# (route, extra form fields): every route that takes a file.
ROUTES = [
    ("/imports", {"dry_run": "true"}),
    ("/districts/imports", {"dry_run": "true"}),
    ("/projects/preview", {"width_m": "50"}),
    ("/admin/files/layers", {}),
    ("/standards/imports", {"dry_run": "true"}),
]
CORRUPT = {  # file name → bytes that no reader accepts
    f"{PERSON}_{ID_NUMBER}.gpkg": b"SQLite format 3\0" + b"\x13" * 3000,
    f"{PERSON}_{ID_NUMBER}.geojson": b'{"type": "FeatureCollection", "features": [',
    f"{PERSON}_{ID_NUMBER}.zip": _zip({f"{PERSON}_{ID_NUMBER}.shp": b"not a shapefile"}),
    f"{PERSON}.{ID_NUMBER}": GEOJSON,
    f"{PERSON}_{ID_NUMBER}.xlsx": b"PK\x03\x04 broken",
}


@pytest.mark.parametrize("route,form", ROUTES, ids=[r for r, _ in ROUTES])
def test_upload_names_stay_out_of_logs_and_errors(client, role_headers, caplog, route, form):
    caplog.set_level(logging.DEBUG)
    bodies = []
    # GDAL's complaints reach the service's log as Python warnings (stderr), each naming the file it read.
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        for name, data in CORRUPT.items():
            r = client.post(route, files={"file": (name, data)}, data=form, headers=role_headers["admin"])
            assert 400 <= r.status_code < 500, (route, name, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/json")
            bodies.append(r.text)
        valid = client.post(route, files={"file": (f"{PERSON}_{ID_NUMBER}.geojson", GEOJSON)}, data=form,
                            headers=role_headers["admin"])
    assert valid.status_code < 500
    bodies.append(valid.text)
    assert warned  # the corrupt GeoPackage makes GDAL speak: the check below has something to read
    logged = caplog.text + "".join(str(r.args) for r in caplog.records) + "".join(str(w.message) for w in warned)
    assert PERSON not in logged and ID_NUMBER not in logged, route
    for body in bodies:
        assert not SERVER_PATH.search(body), (route, body)


def test_a_document_upload_refused_keeps_the_name_out_of_logs(client, role_headers, caplog):
    """Documents are streamed into the archive (no temporary file); a refused one logs nothing of its name."""
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        r = client.post("/parcels/2147483000/documents", data={"kind": "contract"},
                        files={"file": (f"{PERSON}_{ID_NUMBER}.pdf", b"%PDF-1.4 x")}, headers=role_headers["admin"])
    assert r.status_code == 404
    logged = caplog.text + "".join(str(w.message) for w in warned)
    assert PERSON not in logged and ID_NUMBER not in logged
    assert not SERVER_PATH.search(r.text)


def test_saved_names_and_scrubbed_messages():
    assert stored_name(f"{PERSON}_{ID_NUMBER}.GPKG") == "upload.gpkg"
    assert stored_name(f"{PERSON}.{ID_NUMBER}") == "upload"  # a suffix that is no format is dropped
    assert stored_name("../../etc/passwd") == "upload"
    assert stored_name("parcels.shp.zip") == "upload.zip"
    assert scrub_paths("'/tmp/pb-upload-x1/upload.gpkg' not recognized") == "'upload.gpkg' not recognized"
    assert scrub_paths("/vsizip//tmp/pb-import-q/data.zip/a.shp: bad") == "a.shp: bad"
    assert scrub_paths("see /ogc/collections") == "see /ogc/collections"  # the API's own paths stay
