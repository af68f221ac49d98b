"""One parcel: reading it with its timeline, editing it under optimistic concurrency, payments.

Every change is appended to parcel_events in the same transaction as the change itself: who, when,
what changed from what to what (``changes``: ``{field: {"from": old, "to": new}}``) and a note.
One edit can write several events, one per kind of change (stage, attributes, flags, geometry).
An edit names the version it was based on; ``UPDATE ... WHERE version = :v`` lets the database
decide between concurrent edits, so exactly one of them wins and the others change nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.domain import workflow
from gis.domain.geometry import city_extent, parse_geometry
from gis.domain.limits import NOTE, check_values, limits_of
from gis.domain.privacy import PERSONAL_FIELDS, mask_record
from gis.domain.schema import PARCEL_ATTRIBUTES, PARCEL_FLAGS, metadata
from gis.domain.stages import STAGE_LABELS_ZH
from gis.platform.config import SQM_PER_MU
from gis.platform.errors import Forbidden, InvalidInput, NotFound, ProjectNotFound, VersionConflict
from gis.records.districts import DISTRICT_REFS_SQL, check_districts
from gis.records.documents import masked_filename, missing_documents
from gis.records.footprints import refresh_parcels
from gis.records.history import event as history_event
from gis.records.history import record as record_history
from gis.records.users import Principal, Role

ATTRIBUTE_FIELDS = PARCEL_ATTRIBUTES
FLAG_FIELDS = PARCEL_FLAGS
_DATE_SELECT = ", ".join(f"p.{c}" for c in workflow.DATE_COLUMNS.values())
_PARCEL_SQL = f"""
SELECT p.id, p.code, p.kind, p.district_id, d.code AS district_code, d.name AS district_name,
       p.owner_name, p.owner_id_number, p.owner_phone, p.households, p.floor_area_m2, p.land_area_mu,
       p.stage, p.stage_since, p.holdout, p.legacy, p.holdout_note, {_DATE_SELECT},
       p.version, p.updated_at, ST_Area(p.geom) AS area_m2,
       (SELECT count(*) FROM payments pm WHERE pm.parcel_id = p.id) AS payment_count
       {{geometry}}
FROM parcels p JOIN districts d ON d.id = p.district_id
WHERE p.id = :id
"""
_EVENTS_SQL = """
SELECT id, at, actor, kind, stage_from, stage_to, changes, note
FROM parcel_events WHERE parcel_id = :id ORDER BY at, id
"""
_PROJECTS_SQL = """
SELECT pr.id, pr.code, pr.name, pr.freeze_date, pr.deadline, o.overlap_m2, o.share
FROM project_parcel_overlaps o JOIN projects pr ON pr.id = o.project_id
WHERE o.parcel_id = :id ORDER BY pr.id
"""
PARCEL_LIMITS = limits_of(metadata(4326), "parcels")  # bounds do not depend on the working CRS
PAYMENT_LIMITS = limits_of(metadata(4326), "payments")


def _plain(value: Any) -> Any:
    """JSON-ready: dates as ISO strings, numerics as floats."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _mask_changes(changes: dict | None) -> dict | None:
    if not changes:
        return changes
    out = dict(changes)
    if isinstance(out.get("document"), dict):
        doc = out["document"]
        out["document"] = doc | {"filename": masked_filename(doc.get("kind", ""), doc.get("filename", ""))}
    for name in PERSONAL_FIELDS:
        if name in out and isinstance(out[name], dict):
            out[name] = {
                side: mask_record({name: out[name].get(side)})[name] for side in ("from", "to")
            }
    return out


def _read(conn: Connection, parcel_id: int, *, geometry: str = "") -> Any:
    row = conn.execute(text(_PARCEL_SQL.format(geometry=geometry)), {"id": parcel_id}).mappings().first()
    if row is None:
        raise NotFound(f"no parcel with id {parcel_id}")
    return row


def get_parcel(conn: Connection, parcel_id: int, *, reveal_personal: bool = False,
               with_geometry: bool = True) -> dict[str, Any]:
    """The parcel's record, with its projects, required documents still missing and allowed next stages."""
    geom = ", ST_AsGeoJSON(ST_Transform(p.geom, 4326), 7) AS geometry" if with_geometry else ""
    row = _read(conn, parcel_id, geometry=geom)
    out: dict[str, Any] = {
        "id": row["id"],
        "code": row["code"],
        "kind": row["kind"],
        "district": {"id": row["district_id"], "code": row["district_code"], "name": row["district_name"]},
        "owner_name": row["owner_name"],
        "owner_id_number": row["owner_id_number"],
        "owner_phone": row["owner_phone"],
        "households": row["households"],
        "floor_area_m2": row["floor_area_m2"],
        "land_area_mu": row["land_area_mu"],
        "area_m2": round(row["area_m2"], 2),
        "area_mu": round(row["area_m2"] / SQM_PER_MU, 4),
        "stage": row["stage"],
        "stage_label": STAGE_LABELS_ZH[row["stage"]],
        "stage_since": _plain(row["stage_since"]),
        "stage_dates": {s: _plain(row[c]) for s, c in workflow.DATE_COLUMNS.items() if row[c] is not None},
        "next_stages": list(workflow.FORWARD[row["stage"]]),
        "holdout": row["holdout"],
        "legacy": row["legacy"],
        "holdout_note": row["holdout_note"],
        "version": row["version"],
        "updated_at": row["updated_at"].isoformat(),
        "projects": [
            {k: _plain(v) for k, v in r.items()}
            for r in conn.execute(text(_PROJECTS_SQL), {"id": parcel_id}).mappings()
        ],
        "documents_missing": missing_documents(conn, parcel_id),
    }
    if with_geometry:
        out["geometry"] = json.loads(row["geometry"])
    return out if reveal_personal else mask_record(out)


SEARCH_LIMIT = 200
_SEARCH_SQL = """
SELECT p.id, p.code, p.kind, d.code AS district, d.name AS district_name, p.stage, p.holdout, p.legacy,
       p.households, p.floor_area_m2, p.land_area_mu, p.owner_name, count(*) OVER () AS total
FROM parcels p JOIN districts d ON d.id = p.district_id
WHERE {where}
ORDER BY p.code
LIMIT :limit
"""


def _like(value: str) -> str:
    """``value`` for LIKE as typed: its % and _ are plain characters, not wildcards."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_parcels(conn: Connection, *, code: str | None = None, district: str | None = None,
                   owner: str | None = None, reveal_personal: bool = False,
                   limit: int = 50) -> dict[str, Any]:
    """Parcels by code (any part of it, any case), district (code, name or id) and owner (part of the name),
    all given criteria together, in code order, at most ``limit``; with how many match in all.

    Searching by owner reads personal data: only a role that may see it (``reveal_personal``) may, and the
    owner is shown masked to the others.
    """
    code, district, owner = (v.strip() if v else None for v in (code, district, owner))
    if not (code or district or owner):
        raise InvalidInput("give a parcel code, a district or an owner to search for", "code")
    if owner and not reveal_personal:
        raise Forbidden("searching by owner reads personal data: your role may not", "owner")
    if not 1 <= limit <= SEARCH_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {SEARCH_LIMIT}", "limit")
    clauses, params = [], {"limit": limit}
    if code:
        clauses.append("p.code ILIKE :code ESCAPE '\\'")
        params["code"] = "%" + _like(code) + "%"
    if district:
        check_districts(conn, [district])
        clauses.append(DISTRICT_REFS_SQL)
        params["districts"] = [district]
    if owner:
        clauses.append("p.owner_name ILIKE :owner ESCAPE '\\'")
        params["owner"] = "%" + _like(owner) + "%"
    rows = conn.execute(text(_SEARCH_SQL.format(where=" AND ".join(clauses))), params).mappings().all()
    items = [{k: v for k, v in r.items() if k != "total"} for r in rows]
    for item in items:
        item["stage_label"] = STAGE_LABELS_ZH[item["stage"]]
    return {"total": rows[0]["total"] if rows else 0, "limit": limit,
            "items": items if reveal_personal else [mask_record(i) for i in items]}


def history(conn: Connection, parcel_id: int, *, reveal_personal: bool = False) -> list[dict[str, Any]]:
    """The parcel's events, oldest first; personal values in ``changes`` masked unless revealed."""
    if conn.execute(text("SELECT 1 FROM parcels WHERE id = :id"), {"id": parcel_id}).first() is None:
        raise NotFound(f"no parcel with id {parcel_id}")
    events = []
    for r in conn.execute(text(_EVENTS_SQL), {"id": parcel_id}).mappings():
        event = {k: _plain(v) for k, v in r.items()}
        if not reveal_personal:
            event["changes"] = _mask_changes(event["changes"])
        events.append(event)
    return events


# ---------------------------------------------------------------------------------------------
# Editing


@dataclass
class ParcelEdit:
    """What a caller asks to change; fields left out stay as they are."""

    values: dict[str, Any] = field(default_factory=dict)  # ATTRIBUTE_FIELDS and FLAG_FIELDS
    stage: str | None = None
    stage_on: date | None = None
    geometry: dict | None = None  # GeoJSON Polygon / MultiPolygon
    geometry_crs: str | None = None
    note: str | None = None


def _check_values(conn: Connection, values: dict[str, Any], today: date) -> dict[str, Any]:
    """The values, checked against the bounds the schema declares (``gis.domain.limits``: the same the importer and
    the database keep); messages name the field, never the value (it may be personal data)."""
    unknown = set(values) - set(ATTRIBUTE_FIELDS) - set(FLAG_FIELDS)
    if unknown:
        raise InvalidInput(f"these fields cannot be edited: {', '.join(sorted(unknown))}", min(unknown))
    out = dict(values)
    for name in PERSONAL_FIELDS:  # the owner's name, ID number and phone, as typed with spaces around
        if name in out and out[name] is not None:
            out[name] = str(out[name]).strip() or None
    for name in ("holdout", "legacy"):
        if name in out and not isinstance(out[name], bool):
            raise InvalidInput(f"{name} must be true or false", name)
    if "kind" in out and out["kind"] not in ("house", "land"):
        raise InvalidInput("kind must be house or land", "kind")
    if "households" in out and (not isinstance(out["households"], int) or isinstance(out["households"], bool)):
        raise InvalidInput("households must be a whole number", "households")
    for name in ("floor_area_m2", "land_area_mu"):
        if name in out and out[name] is not None and (
            not isinstance(out[name], int | float) or isinstance(out[name], bool)
        ):
            raise InvalidInput(f"{name} must be a number", name)
    check_values(PARCEL_LIMITS, out, today=today)
    if "district_id" in out:
        found = conn.execute(text("SELECT 1 FROM districts WHERE id = :id"), {"id": out["district_id"]}).first()
        if found is None:
            raise InvalidInput(f"no district with id {out['district_id']}", "district_id")
    return out


def _diff(row: Any, values: dict[str, Any], names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {
        n: {"from": _plain(row[n]), "to": _plain(values[n])}
        for n in names if n in values and values[n] != row[n]
    }


def _new_geometry(conn: Connection, edit: ParcelEdit, srid: int) -> BaseGeometry:
    parsed = parse_geometry(edit.geometry, crs=edit.geometry_crs, working_srid=srid, extent=city_extent(conn))
    if parsed.is_line:
        raise InvalidInput("a parcel is a Polygon or MultiPolygon", "geometry.type")
    return parsed.geometry


def update_parcel(
    conn: Connection,
    parcel_id: int,
    edit: ParcelEdit,
    *,
    version: int,
    principal: Principal,
    today: date,
    srid: int,
    require_documents: bool = False,
) -> int:
    """Apply ``edit`` if the parcel is still at ``version``; returns the new version (unchanged if nothing
    changed). Raises VersionConflict (412) for a stale version, Forbidden (403) outside the caller's role
    or districts, InvalidInput (422) for a move the workflow does not allow."""
    geometry_sql = ", ST_AsEWKT(p.geom) AS ewkt" if edit.geometry is not None else ""
    row = _read(conn, parcel_id, geometry=geometry_sql)
    if row["version"] != version:
        raise VersionConflict(
            f"parcel {parcel_id} is at version {row['version']}, not {version}: reload it and apply the edit again"
        )
    note = (edit.note or "").strip() or None
    check_values({"note": NOTE}, {"note": note})
    values = _check_values(conn, edit.values, today)
    _check_permission(principal, row, edit, values)

    sets: dict[str, Any] = {}
    events: list[dict[str, Any]] = []

    def event(kind: str, changes: dict, stage_from: str | None = None, stage_to: str | None = None) -> None:
        events.append(history_event(parcel_id, principal.name, kind, stage_from=stage_from, stage_to=stage_to,
                                    changes=changes, note=note))

    if edit.stage is not None and edit.stage != row["stage"]:
        if require_documents:
            missing = missing_documents(conn, parcel_id)
            if missing and workflow.direction(row["stage"], edit.stage) == "forward":
                raise InvalidInput(f"archive documents missing for the stages reached: {', '.join(missing)}", "stage")
        move = workflow.check_transition(
            row["stage"], edit.stage, may_go_back=principal.role in (Role.inspector, Role.admin), reason=note,
            payments=row["payment_count"], on=edit.stage_on or today, today=today, stage_since=row["stage_since"],
        )
        sets["stage"] = move.to_stage
        sets["stage_since"] = move.on
        changes = {"stage": {"from": move.from_stage, "to": move.to_stage},
                   "stage_since": {"from": _plain(row["stage_since"]), "to": move.on.isoformat()}}
        if move.set_date:
            sets[move.set_date] = move.on
            changes[move.set_date] = {"from": _plain(row[move.set_date]), "to": move.on.isoformat()}
        for column in move.clear_dates:
            if row[column] is not None:
                sets[column] = None
                changes[column] = {"from": _plain(row[column]), "to": None}
        event("stage", changes, move.from_stage, move.to_stage)
    elif edit.stage_on is not None:
        raise InvalidInput("stage_on applies to a stage change only", "stage_on")
    if edit.geometry_crs is not None and edit.geometry is None:
        raise InvalidInput("geometry_crs applies to a new geometry only", "geometry_crs")

    attributes = _diff(row, values, ATTRIBUTE_FIELDS)
    if attributes:
        sets.update({n: values[n] for n in attributes})
        event("attributes", attributes)
    flags = _diff(row, values, FLAG_FIELDS)
    if flags:
        sets.update({n: values[n] for n in flags})
        event("flags", flags)
    geom_wkb = None
    if edit.geometry is not None:
        new = _new_geometry(conn, edit, srid)
        new = shapely.multipolygons([new]) if new.geom_type == "Polygon" else new
        old = shapely.from_wkt(row["ewkt"].split(";", 1)[1])
        if not shapely.equals_exact(shapely.normalize(old), shapely.normalize(new), 1e-6):
            geom_wkb = shapely.to_wkb(new)
            event("geometry", {
                "geom": {"from": row["ewkt"], "to": f"SRID={srid};{shapely.to_wkt(new, rounding_precision=-1)}"},
                "area_m2": {"from": round(old.area, 2), "to": round(new.area, 2)},
            })
    if not events:
        return version

    assignments = [f"{column} = :v_{column}" for column in sets]  # column names from the constants above
    if geom_wkb is not None:
        assignments.append("geom = ST_GeomFromWKB(:wkb, :srid)")
    params = {f"v_{c}": v for c, v in sets.items()} | {"id": parcel_id, "version": version, "wkb": geom_wkb,
                                                        "srid": srid}
    new_version = conn.execute(
        text(f"UPDATE parcels SET {', '.join(assignments)}, version = version + 1, updated_at = now() "
             "WHERE id = :id AND version = :version RETURNING version"),
        params,
    ).scalar_one_or_none()
    if new_version is None:
        raise VersionConflict(f"parcel {parcel_id} was changed by someone else meanwhile: reload it and apply the edit "
                              "again")
    record_history(conn, events)
    if geom_wkb is not None:
        refresh_parcels(conn, [parcel_id])
    return int(new_version)


def _check_permission(principal: Principal, row: Any, edit: ParcelEdit, values: dict[str, Any]) -> None:
    """District editors edit their districts' parcels; inspectors only move stages back; admins anything."""
    if principal.role == Role.admin:
        return
    if principal.role == Role.inspector:
        if values or edit.geometry is not None or edit.stage is None:
            raise Forbidden("an inspector may only move a parcel's stage back (with a reason)")
        if workflow.direction(row["stage"], workflow.check_stage(edit.stage)) == "forward":
            raise Forbidden("an inspector may move a stage back, not forward")
        return
    principal.ensure_may_edit_district(row["district_id"])
    if "district_id" in values:
        principal.ensure_may_edit_district(values["district_id"])


# ---------------------------------------------------------------------------------------------
# Payments

PAYMENT_ITEMS = ("house_value", "relocation", "temporary_resettlement", "business_loss", "subsidy", "incentive",
                 "land", "crops", "deposit",  # Decree 590 Art. 17 items, land and crops, and a decision's deposit
                 "decoration", "attachments", "social_security")  # the itemised compensation's other items
_PAYMENTS_SQL = """
SELECT id, project_id, paid_on, amount_yuan, item, basis_area, basis_unit, rate_yuan, note, recorded_by, created_at
FROM payments WHERE parcel_id = :id ORDER BY paid_on, id
"""


@dataclass(frozen=True)
class Payment:
    paid_on: date
    amount_yuan: Decimal
    item: str
    project_id: int | None = None
    basis_area: float | None = None
    basis_unit: str | None = None
    rate_yuan: Decimal | None = None
    note: str | None = None


def list_payments(conn: Connection, parcel_id: int) -> list[dict[str, Any]]:
    """A parcel's payments by date paid, JSON-ready; does not check that the parcel exists."""
    return [{k: _plain(v) for k, v in r.items()}
            for r in conn.execute(text(_PAYMENTS_SQL), {"id": parcel_id}).mappings()]


def record_payment(conn: Connection, parcel_id: int, payment: Payment, *, principal: Principal,
                   today: date) -> dict[str, Any]:
    """Record a compensation payment (and its history event); only under a contract or a decision."""
    row = _read(conn, parcel_id)
    principal.ensure_may_edit_district(row["district_id"])
    if row["stage"] not in workflow.PAYABLE_STAGES:
        raise InvalidInput(
            f"no compensation is paid at stage {row['stage']} ({STAGE_LABELS_ZH[row['stage']]}): only after a contract "
            "is signed or a compensation decision is made", "stage"
        )
    check_values(PAYMENT_LIMITS, asdict(payment), today=today)
    if payment.item not in PAYMENT_ITEMS:
        raise InvalidInput(f"item must be one of {', '.join(PAYMENT_ITEMS)}", "item")
    if payment.basis_unit not in (None, "m2", "mu"):
        raise InvalidInput("basis_unit must be m2 or mu", "basis_unit")
    if payment.project_id is not None and conn.execute(
        text("SELECT 1 FROM projects WHERE id = :id"), {"id": payment.project_id}
    ).first() is None:
        raise InvalidInput(str(ProjectNotFound(payment.project_id)), "project_id")
    created = conn.execute(
        text("""INSERT INTO payments (parcel_id, project_id, paid_on, amount_yuan, item, basis_area, basis_unit,
                                      rate_yuan, note, recorded_by)
                VALUES (:parcel_id, :project_id, :paid_on, :amount_yuan, :item, :basis_area, :basis_unit,
                        :rate_yuan, :note, :recorded_by)
                RETURNING id, project_id, paid_on, amount_yuan, item, basis_area, basis_unit, rate_yuan, note,
                          recorded_by, created_at"""),
        {"parcel_id": parcel_id, "recorded_by": principal.name, **asdict(payment)},
    ).mappings().one()
    out = {k: _plain(v) for k, v in created.items()}
    changes = {k: out[k] for k in ("id", "project_id", "paid_on", "amount_yuan", "item")}
    record_history(conn, [history_event(parcel_id, principal.name, "payment", changes={"payment": changes},
                                        note=payment.note)])
    return out
