"""The parcel workflow: every transition rule, the roles and districts that may make them, payments,
documents and edits through the API (on a database of its own, so the demo city stays as it is)."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from itertools import product

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import box, mapping
from sqlalchemy import text

from gis.domain import workflow
from gis.domain.stages import today_in
from gis.platform.db import get_engine
from gis.platform.errors import Forbidden, InvalidInput
from tests.conftest import add_parcel
from tests.worlds import WORLD_ORIGIN

# The rules as written in the national procedure, independently of gis.domain.workflow's tables.
MAIN = ["surveyed", "appraised", "signed", "paid", "demolished", "cleared"]
ALLOWED_FORWARD = {
    *zip(MAIN, MAIN[1:], strict=False),
    ("appraised", "no_agreement"), ("signed", "no_agreement"),
    ("no_agreement", "compensation_decision"),
    ("compensation_decision", "paid"), ("compensation_decision", "court_enforcement"),
    ("court_enforcement", "demolished"),
}
ALL = MAIN + ["no_agreement", "compensation_decision", "court_enforcement"]
TODAY = date(2026, 11, 26)


def _ancestors(stage: str) -> set[str]:
    out, frontier = set(), {stage}
    while frontier:
        frontier = {a for a, b in ALLOWED_FORWARD if b in frontier} - out
        out |= frontier
    return out


def _check(a: str, b: str, *, back: bool = True, reason: str | None = "复核纠错", payments: int = 1, on: date = TODAY,
           since: date | None = TODAY - timedelta(days=3)) -> workflow.Transition:
    return workflow.check_transition(a, b, may_go_back=back, reason=reason, payments=payments, on=on, today=TODAY,
                                     stage_since=since)


@pytest.mark.parametrize(("a", "b"), list(product(ALL, ALL)))
def test_every_pair_of_stages(a, b):
    """Forward: exactly the allowed edges; back: exactly to the stages a parcel comes from; nothing else."""
    if (a, b) in ALLOWED_FORWARD:
        move = _check(a, b, back=False, reason=None)
        assert (move.direction, move.set_date, move.clear_dates) == ("forward", f"{b}_on", ())
    elif b in _ancestors(a):
        with pytest.raises(Forbidden):
            _check(a, b, back=False)
        with pytest.raises(InvalidInput, match="reason"):
            _check(a, b, reason="  ")
        move = _check(a, b)
        assert move.direction == "back" and move.set_date is None
        # The dates undone: every stage reachable from the target, which includes where the parcel was.
        undone = {s for s in ALL if b in _ancestors(s)}
        assert a in undone and set(move.clear_dates) == {f"{s}_on" for s in undone}
    else:
        with pytest.raises(InvalidInput):
            _check(a, b)


def test_the_graph_has_no_cycle_and_every_stage_can_finish():
    for s in ALL:
        assert s not in workflow.descendants(s)
        assert s == "cleared" or "cleared" in workflow.descendants(s)


@pytest.mark.parametrize(("a", "b"), [("signed", "paid"), ("paid", "demolished"), ("compensation_decision", "paid"),
                                      ("court_enforcement", "demolished")])
def test_paid_and_demolished_need_a_payment(a, b):
    with pytest.raises(InvalidInput, match="payment"):
        _check(a, b, payments=0)
    assert _check(a, b, payments=1).direction == "forward"


def test_stage_dates_cannot_be_in_the_future_or_before_the_current_stage():
    with pytest.raises(InvalidInput, match="future"):
        _check("surveyed", "appraised", on=TODAY + timedelta(days=1))
    with pytest.raises(InvalidInput, match="before"):
        _check("surveyed", "appraised", on=TODAY - timedelta(days=4))
    assert _check("surveyed", "appraised", on=TODAY - timedelta(days=3)).on == TODAY - timedelta(days=3)


# ---------------------------------------------------------------------------------------------
# Through the API


@pytest.fixture(scope="module")
def world(workflow_db):
    from api.app import create_app

    with TestClient(create_app(workflow_db.settings)) as c:
        yield workflow_db, c


def _patch(c, h, pid, version, **body):
    return c.patch(f"/parcels/{pid}", json=body, headers=h | {"If-Match": f'"{version}"'})


def test_editor_walks_a_parcel_from_survey_to_cleared(world):
    w, c = world
    h = w.headers["district_editor"]
    pid = add_parcel(w.settings, 1)
    today = today_in(w.settings.city_timezone)
    version = int(c.get(f"/parcels/{pid}", headers=h).headers["etag"].strip('"'))
    for stage in ["appraised", "signed", "paid", "demolished", "cleared"]:
        if stage == "paid":
            r = c.post(f"/parcels/{pid}/payments", headers=h,
                       json={"paid_on": today.isoformat(), "amount_yuan": "1680000.00", "item": "house_value"})
            assert r.status_code == 201, r.text
        r = _patch(c, h, pid, version, stage=stage, note=f"到{stage}")
        assert r.status_code == 200, r.text
        assert r.json()["stage"] == stage and r.json()["stage_dates"][stage] == today.isoformat()
        assert r.headers["etag"] == f'"{version + 1}"'
        version += 1
    events = c.get(f"/parcels/{pid}/history", headers=h).json()
    stages = [(e["stage_from"], e["stage_to"]) for e in events if e["kind"] == "stage"]
    assert stages == list(zip(MAIN, MAIN[1:], strict=False))
    assert [e["stage_to"] for e in events if e["kind"] == "created"] == ["surveyed"]
    mine = [e for e in events if e["actor"] == "test-district_editor"]
    assert [e["kind"] for e in mine] == ["stage", "stage", "payment", "stage", "stage", "stage"]
    assert mine[0]["changes"]["stage"] == {"from": "surveyed", "to": "appraised"}
    assert mine[0]["note"] == "到appraised"


def test_skipping_a_stage_is_refused_for_every_role(world):
    w, c = world
    pid = add_parcel(w.settings, 1)
    for role in ("district_editor", "admin"):
        r = _patch(c, w.headers[role], pid, 1, stage="signed")
        assert r.status_code == 422 and "not an allowed move" in r.json()["detail"]
    assert c.get(f"/parcels/{pid}", headers=w.headers["admin"]).json()["version"] == 1


def test_district_boundary_for_editors(world):
    w, c = world
    ed, admin = w.headers["district_editor"], w.headers["admin"]
    in_a, in_b = add_parcel(w.settings, 1), add_parcel(w.settings, 2)
    assert _patch(c, ed, in_b, 1, stage="appraised").status_code == 403
    assert _patch(c, ed, in_b, 1, holdout=True).status_code == 403
    assert c.post(f"/parcels/{in_b}/documents", headers=ed, data={"kind": "contract"},
                  files={"file": ("c.pdf", b"%PDF-1.4 x")}).status_code == 403
    assert _patch(c, ed, in_a, 1, district_id=2).status_code == 403  # moving a parcel out of one's districts
    assert _patch(c, ed, in_a, 1, households=3).status_code == 200
    assert _patch(c, admin, in_b, 1, stage="appraised").status_code == 200  # admins edit every district
    assert c.get(f"/parcels/{in_b}", headers=ed).status_code == 200  # reading is not limited to one's districts
    with get_engine(w.settings).connect() as conn:
        assert conn.execute(text("SELECT stage, version FROM parcels WHERE id = :id"), {"id": in_b}).one() == (
            "appraised", 2)


def test_moving_back_needs_an_inspector_or_admin_and_a_reason(world):
    w, c = world
    pid = add_parcel(w.settings, 1, stage="paid", paid_yuan=100000)
    r = _patch(c, w.headers["district_editor"], pid, 1, stage="signed", note="报错了")
    assert r.status_code == 403
    assert _patch(c, w.headers["inspector"], pid, 1, stage="signed").status_code == 422  # no reason
    assert _patch(c, w.headers["viewer"], pid, 1, stage="signed", note="x").status_code == 403
    r = _patch(c, w.headers["inspector"], pid, 1, stage="appraised", note="签约材料不实，退回重新评估")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stage"] == "appraised"
    assert set(body["stage_dates"]) == {"surveyed", "appraised"}  # signed_on and paid_on undone
    event = c.get(f"/parcels/{pid}/history", headers=w.headers["inspector"]).json()[-1]
    assert (event["actor"], event["stage_from"], event["stage_to"]) == ("test-inspector", "paid", "appraised")
    assert event["changes"]["paid_on"]["to"] is None and event["changes"]["paid_on"]["from"] is not None
    assert event["note"] == "签约材料不实，退回重新评估"
    # An inspector corrects progress; the work itself (forward moves, attributes) is the districts'.
    assert _patch(c, w.headers["inspector"], pid, 2, stage="signed").status_code == 403
    assert _patch(c, w.headers["inspector"], pid, 2, households=2).status_code == 403


def test_dispute_path_rejoins_at_paid_and_at_demolished(world):
    w, c = world
    h = w.headers["district_editor"]
    decided = add_parcel(w.settings, 1, stage="appraised")
    enforced = add_parcel(w.settings, 1, stage="signed")
    for pid, path in [(decided, ["no_agreement", "compensation_decision", "paid", "demolished"]),
                      (enforced, ["no_agreement", "compensation_decision", "court_enforcement", "demolished"])]:
        version = 1
        for stage in path:
            if stage == "demolished" and pid == enforced:  # enforcement rejoins at demolished, not at paid
                assert _patch(c, h, pid, version, stage="paid").status_code == 422
            if stage in ("paid", "court_enforcement"):  # the decision's compensation, paid or deposited
                item = "house_value" if stage == "paid" else "deposit"
                r = c.post(f"/parcels/{pid}/payments", headers=h, json={
                    "paid_on": today_in(w.settings.city_timezone).isoformat(), "amount_yuan": 250000, "item": item})
                assert r.status_code == 201, r.text
            r = _patch(c, h, pid, version, stage=stage)
            assert r.status_code == 200, (stage, r.text)
            version += 1
        dates = c.get(f"/parcels/{pid}", headers=h).json()["stage_dates"]
        assert set(path) <= set(dates)
    # A late agreement, or a dispute recorded by mistake, is a move back: an inspector's.
    assert _patch(c, h, decided, 5, stage="no_agreement").status_code == 403


def test_payments_only_under_a_contract_or_decision(world):
    w, c = world
    h = w.headers["district_editor"]
    pid = add_parcel(w.settings, 1, stage="appraised")
    pay = {"paid_on": today_in(w.settings.city_timezone).isoformat(), "amount_yuan": "1000.00", "item": "house_value"}
    assert c.post(f"/parcels/{pid}/payments", headers=h, json=pay).status_code == 422
    signed = add_parcel(w.settings, 1, stage="signed")
    assert c.post(f"/parcels/{signed}/payments", headers=w.headers["inspector"], json=pay).status_code == 403
    assert c.post(f"/parcels/{signed}/payments", headers=h, json=pay | {"item": "bribe"}).status_code == 422
    future = pay | {"paid_on": (date.today() + timedelta(days=5)).isoformat()}
    assert c.post(f"/parcels/{signed}/payments", headers=h, json=future).status_code == 422
    r = c.post(f"/parcels/{signed}/payments", headers=h, json=pay | {"project_id": 1})
    assert r.status_code == 201 and r.json()["recorded_by"] == "test-district_editor"
    listed = c.get(f"/parcels/{signed}/payments", headers=w.headers["viewer"]).json()
    assert [(p["amount_yuan"], p["project_id"]) for p in listed] == [(1000.0, 1)]


def test_editing_needs_the_version_and_a_stale_one_changes_nothing(world):
    w, c = world
    h = w.headers["district_editor"]
    pid = add_parcel(w.settings, 1)
    assert c.patch(f"/parcels/{pid}", json={"households": 2}, headers=h).status_code == 428
    assert c.patch(f"/parcels/{pid}", json={"households": 2}, headers=h | {"If-Match": "abc"}).status_code == 422
    assert c.patch(f"/parcels/{pid}", json={"households": 2, "version": 1}, headers=h).status_code == 200
    r = _patch(c, h, pid, 1, households=5)
    assert r.status_code == 412
    now = c.get(f"/parcels/{pid}", headers=h).json()
    assert (now["households"], now["version"]) == (2, 2)
    # An edit that changes nothing leaves the version (and the history) alone.
    assert _patch(c, h, pid, 2, households=2).headers["etag"] == '"2"'


def test_flags_attributes_and_masking_in_the_history(world):
    w, c = world
    h = w.headers["district_editor"]
    pid = add_parcel(w.settings, 1, owner="欧阳明月")
    r = _patch(c, h, pid, 1, holdout=True, holdout_note="要求原地安置", owner_phone="13912345678", households=2)
    assert r.status_code == 200, r.text
    assert r.json()["owner_phone"] == "139****5678" and r.json()["owner_name"] == "欧**月"  # editors see masked data
    events = {e["kind"]: e for e in c.get(f"/parcels/{pid}/history", headers=w.headers["inspector"]).json()}
    assert events["flags"]["changes"] == {"holdout": {"from": False, "to": True},
                                          "holdout_note": {"from": None, "to": "要求原地安置"}}
    assert events["attributes"]["changes"]["owner_phone"] == {"from": "13800000000", "to": "13912345678"}
    masked = {e["kind"]: e for e in c.get(f"/parcels/{pid}/history", headers=w.headers["viewer"]).json()}
    assert masked["attributes"]["changes"]["owner_phone"] == {"from": "138****0000", "to": "139****5678"}
    full = c.get(f"/parcels/{pid}", headers=w.headers["admin"]).json()
    assert (full["owner_name"], full["holdout"]) == ("欧阳明月", True)


def test_geometry_edit_is_recorded_and_refreshes_the_project_overlap(world):
    w, c = world
    h = w.headers["district_editor"]
    pid = add_parcel(w.settings, 1)
    to_wgs = Transformer.from_crs(w.settings.srid, 4326, always_xy=True)
    x0, y0 = WORLD_ORIGIN
    # Straddle the project's west edge (x0 + 500): 30 m x 20 m, 10 m of it inside.
    new = box(x0 + 480, y0 + 940, x0 + 510, y0 + 960)
    wgs = shapely.transform(new, lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1])))
    r = _patch(c, h, pid, 1, geometry=mapping(wgs), note="重新测绘")
    assert r.status_code == 200, r.text
    assert r.json()["area_m2"] == pytest.approx(600, rel=1e-6)
    overlap = r.json()["projects"][0]
    assert overlap["overlap_m2"] == pytest.approx(new.intersection(box(x0 + 500, y0, x0 + 1500, y0 + 1000)).area,
                                                  rel=1e-6)
    event = c.get(f"/parcels/{pid}/history", headers=h).json()[-1]
    assert event["kind"] == "geometry" and event["note"] == "重新测绘"
    assert event["changes"]["area_m2"] == {"from": 400.0, "to": pytest.approx(600, rel=1e-6)}
    assert event["changes"]["geom"]["from"].startswith(f"SRID={w.settings.srid};MULTIPOLYGON")
    line = {"type": "LineString", "coordinates": list(wgs.exterior.coords)[:2]}
    assert _patch(c, h, pid, 2, geometry=line).status_code == 422


def test_documents_are_stored_by_hash_and_required_kinds_tracked(world):
    w, c = world
    h = w.headers["district_editor"]
    pid = add_parcel(w.settings, 1, stage="appraised")
    before = c.get(f"/parcels/{pid}", headers=h).json()["documents_missing"]
    assert before == ["appraisal_report", "survey_record"]
    content = "评估报告 2026".encode() * 1000
    r = c.post(f"/parcels/{pid}/documents", headers=h, data={"kind": "appraisal_report"},
               files={"file": ("../../评估报告.pdf", content, "application/pdf")})
    assert r.status_code == 201, r.text
    doc = r.json()
    sha = hashlib.sha256(content).hexdigest()
    assert (doc["sha256"], doc["size_bytes"], doc["uploaded_by"], doc["filename"]) == (
        sha, len(content), "test-district_editor", "评估报告.pdf")
    assert (w.settings.data_dir / "documents" / sha).read_bytes() == content
    listed = c.get(f"/parcels/{pid}/documents", headers=w.headers["inspector"]).json()
    assert [(d["sha256"], d["filename"]) for d in listed] == [(sha, "评估报告.pdf")]
    # File names of scans often carry the owner's name: others see the kind instead.
    listed = c.get(f"/parcels/{pid}/documents", headers=w.headers["viewer"]).json()
    assert [(d["sha256"], d["filename"]) for d in listed] == [(sha, "appraisal_report.pdf")]
    assert c.get(f"/parcels/{pid}", headers=h).json()["documents_missing"] == ["survey_record"]
    assert c.get(f"/parcels/{pid}/history", headers=h).json()[-1]["changes"]["document"]["sha256"] == sha
    bad = [({"kind": "Contract!"}, b"x", 422), ({"kind": "contract"}, b"", 422)]
    for data, payload, status in bad:
        assert c.post(f"/parcels/{pid}/documents", headers=h, data=data,
                      files={"file": ("a.pdf", payload)}).status_code == status


def test_document_size_limit_and_required_documents_switch(workflow_db):
    from api.app import create_app

    s = workflow_db.settings.model_copy(update={"document_max_bytes": 1000, "workflow_require_documents": True})
    h = workflow_db.headers["district_editor"]
    with TestClient(create_app(s)) as c:
        pid = add_parcel(s, 1)
        r = c.post(f"/parcels/{pid}/documents", headers=h, data={"kind": "survey_record"},
                   files={"file": ("big.pdf", b"0" * 1001)})
        assert r.status_code == 413
        assert not list((s.data_dir / "documents").glob(".upload-*"))
        assert _patch(c, h, pid, 1, stage="appraised").status_code == 422  # survey_record missing
        assert c.post(f"/parcels/{pid}/documents", headers=h, data={"kind": "survey_record"},
                      files={"file": ("s.pdf", b"1" * 1000)}).status_code == 201
        assert _patch(c, h, pid, 1, stage="appraised").status_code == 200


def test_document_requirements_are_configurable_by_admins(world):
    w, c = world
    current = c.get("/document-requirements", headers=w.headers["viewer"]).json()
    assert current["signed"] == ["contract"]
    new = current | {"signed": ["contract", "id_card_copy"]}
    assert c.put("/document-requirements", json=new, headers=w.headers["inspector"]).status_code == 403
    assert c.put("/document-requirements", json={"nowhere": ["x"]}, headers=w.headers["admin"]).status_code == 422
    r = c.put("/document-requirements", json=new, headers=w.headers["admin"])
    assert r.status_code == 200 and r.json()["signed"] == ["contract", "id_card_copy"]
    pid = add_parcel(w.settings, 1, stage="signed")
    assert "id_card_copy" in c.get(f"/parcels/{pid}", headers=w.headers["viewer"]).json()["documents_missing"]
    assert c.put("/document-requirements", json=current, headers=w.headers["admin"]).status_code == 200
