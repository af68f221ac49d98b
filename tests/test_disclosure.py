"""Public disclosure (阳光征迁) and personal data kept out of logs and error messages."""

from __future__ import annotations

import logging
import re
from typing import Annotated

import httpx
import pytest
import shapely
from fastapi import Depends
from sqlalchemy import Connection, text

from api.auth import Role, require
from api.deps import get_conn
from gis.domain.privacy import mask_name
from tests.conftest import bearer, live_server

PUBLIC_FIELDS = {"code", "kind", "kind_label", "area", "area_unit", "stage", "stage_label", "compensation_paid_yuan",
                 "owner"}


def _expected_members(demo_city, project_id: int, min_m2: float, min_share: float) -> set[str]:
    """The project's parcels computed with shapely outside PostGIS: overlap ≥ both tolerances."""
    footprint = demo_city.projects.set_index("id").geometry[project_id]
    parcels = demo_city.parcels
    overlap = shapely.area(shapely.intersection(parcels.geometry.values, footprint))
    share = overlap / shapely.area(parcels.geometry.values)
    return set(parcels["code"][(overlap >= min_m2) & (share >= min_share)])


def test_public_project_lists_exactly_its_parcels_with_masked_owners(anon_client, demo_city, settings):
    parcels = demo_city.parcels.set_index("code")
    payments = demo_city.payments
    for project_id in demo_city.projects["id"]:
        r = anon_client.get(f"/public/projects/{int(project_id)}")
        assert r.status_code == 200
        body = r.json()
        rows = {p["code"]: p for p in body["parcels"]}
        booked = payments[payments["project_id"].isna() | (payments["project_id"] == project_id)]
        paid = booked.groupby("parcel_id")["amount_yuan"].sum().astype(float).to_dict()
        assert set(rows) == _expected_members(demo_city, project_id, settings.blocker_min_m2,
                                              settings.blocker_min_share)
        assert len(rows) > 50
        for code, row in rows.items():
            assert set(row) == PUBLIC_FIELDS
            truth = parcels.loc[code]
            assert row["owner"] == mask_name(truth["owner_name"]) and "*" in row["owner"]
            assert row["stage"] == truth["stage"] and row["kind"] == truth["kind"]
            area = truth["floor_area_m2"] if truth["kind"] == "house" else truth["land_area_mu"]
            assert row["area"] == pytest.approx(float(area))
            assert row["compensation_paid_yuan"] == pytest.approx(paid.get(truth["id"], 0.0), abs=0.005)
        assert body["totals"]["compensation_paid_yuan"] == pytest.approx(
            sum(r["compensation_paid_yuan"] for r in rows.values()), abs=0.01)


def _unescape(html: str) -> str:
    """The page with the \\uXXXX escapes of its embedded JSON decoded."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), html)


def test_public_map_page_shows_the_published_record_offline(anon_client, demo_city):
    from gis.maps.assets import external_urls

    project_id = int(demo_city.projects["id"].iloc[0])
    page = anon_client.get(f"/public/projects/{project_id}/map")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = _unescape(page.text)
    published = anon_client.get(f"/public/projects/{project_id}").json()["parcels"]
    assert all(f'"code": "{p["code"]}"' in html and f'"owner": "{p["owner"]}"' in html for p in published)
    assert "征收补偿公示" in html and not external_urls(page.text)
    assert anon_client.get("/public/projects/999999").status_code == 404
    assert anon_client.get("/public/projects/999999/map").status_code == 404
    # The published record cannot be widened by the caller: the tolerance is not a parameter of the public page.
    widened = anon_client.get(f"/public/projects/{project_id}?min_overlap_m2=0&min_share=0")
    assert widened.status_code == 422 and widened.json()["where"] == "min_overlap_m2"


class PersonalDataScanner:
    """Finds the demo owners' names, ID numbers and phones in a text (each looked up, not searched for)."""

    def __init__(self, parcels) -> None:
        self.names = {n for n in parcels["owner_name"].dropna() if len(n) >= 2}
        self.ids = set(parcels["owner_id_number"].dropna())
        self.phones = set(parcels["owner_phone"].dropna())

    def find(self, text_: str) -> set[str]:
        text_ = _unescape(text_)
        found = set()
        for run in re.findall(r"[\u4e00-\u9fff]{2,}", text_):
            found |= {run[i:j] for i in range(len(run)) for j in range(i + 2, min(i + 5, len(run) + 1))} & self.names
        found |= set(re.findall(r"(?<!\d)\d{17}[\dX](?!\d)", text_)) & self.ids
        found |= set(re.findall(r"(?<!\d)1\d{10}(?!\d)", text_)) & self.phones
        return found


def test_no_personal_data_in_logs_errors_or_public_output(caplog, settings, engine, demo_city, role_tokens):
    """Run requests that handle personal data, fail on it or query with it, over real HTTP; then scan the logs
    (Python, uvicorn's access log, the PostgreSQL server log) and every public or error output."""
    from api.app import create_app

    scanner = PersonalDataScanner(demo_city.parcels)
    owner = demo_city.parcels.iloc[11]
    pid, name, id_number = int(owner["id"]), owner["owner_name"], owner["owner_id_number"]
    district = demo_city.districts["code"].iloc[0]
    app = create_app(settings)

    @app.get("/test-db-error", dependencies=[Depends(require(Role.admin))])
    def db_error(conn: Annotated[Connection, Depends(get_conn)]) -> None:
        # A NOT NULL violation (a CHECK one is a 422 now): PostgreSQL's DETAIL quotes the whole row, owner name
        # and ID number included.
        conn.execute(text("UPDATE parcels SET kind = NULL WHERE id = :id"), {"id": pid})

    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    admin = bearer(role_tokens["admin"])
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        # Personal data in a query string: refused by name, never echoed or logged.
        in_query = c.get(f"/parcels/{pid}", params={"q": name, "id": id_number}, headers=admin)
        assert in_query.status_code == 422 and not scanner.find(in_query.text)
        full = c.get(f"/parcels/{pid}", headers=admin)
        assert full.status_code == 200
        assert {name, id_number} <= scanner.find(full.text)  # the scanner finds what is there
        version = full.json()["version"]
        bad = [
            c.patch(f"/parcels/{pid}", json={"households": name, "owner_id_number": 3.5, "version": version},
                    headers=admin),
            c.patch(f"/parcels/{pid}", json={"owner_name": name + "某", "owner_phone": id_number, "version": 0},
                    headers=admin),
            c.patch(f"/parcels/{pid}", json={"owner_name": name, "unknown_field": id_number}, headers=admin),
            c.post("/login", data={"username": name, "password": id_number}),
            c.get(f"/parcels/{pid}", headers={"Authorization": f"Bearer {id_number}"}),
            c.get("/test-db-error", headers=admin),
            c.get(f"/public/projects/{int(demo_city.projects['id'].iloc[0])}", params={"owner": name}),
            # The public calculator's estimate given personal data where a district or a structure belongs.
            c.post("/public/compensation/estimate", json={"district": name, "kind": "house", "floor_area_m2": 80}),
            c.post("/public/compensation/estimate", json={"district": district, "kind": "house",
                                                          "floor_area_m2": 80, "structure": id_number}),
        ]
        assert [r.status_code for r in bad] == [422, 412, 422, 401, 401, 500, 422, 422, 422]
        outputs += [r.text for r in bad]
        for project_id in demo_city.projects["id"]:
            outputs.append(c.get(f"/public/projects/{int(project_id)}").text)
            outputs.append(c.get(f"/public/projects/{int(project_id)}/map").text)
            outputs.append(c.get(f"/public/projects/{int(project_id)}/standards").text)
        for path in ("/public", "/public/", "/public/calculator"):
            page = c.get(path)
            assert page.status_code == 200, path
            outputs.append(page.text)
        estimate = c.post("/public/compensation/estimate", json={"district": district, "kind": "house",
                                                                 "floor_area_m2": 80, "structure": "砖混"})
        assert estimate.status_code == 200 and estimate.json()["items"], estimate.text
        outputs.append(estimate.text)
    with engine.connect() as conn:  # nothing above changed the parcel
        assert conn.execute(text("SELECT version, households > 0 FROM parcels WHERE id = :id"), {"id": pid}).one() == (
            version, True)

    # Every record of the service's side; httpx/httpcore are this test's own HTTP client, which logs its URLs.
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
                     if not r.name.startswith(("httpx", "httpcore")))
    server_log = settings.log_file.read_text(encoding="utf-8", errors="replace")
    assert f"/parcels/{pid}?" in logs  # the access log was captured (its query string cut)
    assert "unhandled IntegrityError on GET /test-db-error" in logs or "unhandled NotNullViolation" in logs
    assert 'column "kind"' in server_log  # the server logged the failure, without the row
    for where, content in [("python and uvicorn logs", logs), ("PostgreSQL log", server_log),
                           *[(f"output {i}", o) for i, o in enumerate(outputs)]]:
        assert not scanner.find(content), f"personal data in {where}"
