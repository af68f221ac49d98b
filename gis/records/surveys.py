"""A parcel's survey facts (调查登记) that itemised compensation needs: structure class, decoration grade, area used
for business, months of transition, attachments and crops by kind and count.

Recorded per parcel (``parcel_surveys``, ``parcel_survey_counts``), by one edit (``put_survey``) or from a sheet
(``import_surveys``): the parcel file itself (its 地块编号 and the survey columns; other columns are left alone) or a
survey sheet of its own. Every row checked, all stored or none. Each change is written to the parcel's history
through ``gis.records.history``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.compensation import COUNTED, SURVEY_FIELDS, Count, SurveyFacts, parse_survey
from gis.io.fields import normalise
from gis.platform.errors import InvalidInput, NotFound
from gis.records import history
from gis.records.standards import Issue, StandardsRejected, match_header, read_sheet
from gis.records.users import Principal, Role

SURVEY_LABELS_ZH = {"structure": "房屋结构", "decoration": "装修等级", "business_area_m2": "经营面积（㎡）",
                    "transition_months": "过渡期（月）", "attachments": "附属物", "crops": "青苗及林木"}
_HEADERS = {normalise(n): f for f, names in {
    "code": ("code", "地块编号", "宗地代码", "宗地编码", "地块编码", "地块代码", "不动产单元号", "编号"),
    "structure": ("structure", "房屋结构", "结构", "结构类型", "建筑结构"),
    "decoration": ("decoration", "装修等级", "装修", "装修档次"),
    "business_area_m2": ("business_area_m2", "经营面积", "经营面积(㎡)", "经营面积(m2)", "营业面积"),
    "transition_months": ("transition_months", "过渡期", "过渡期(月)", "过渡月数"),
    "attachments": ("attachments", "附属物", "附属设施"),
    "crops": ("crops", "青苗", "青苗及林木", "林木青苗", "苗木"),
}.items() for n in names}
_ENTRY = re.compile(r"^(.+?)[:：=×x*]\s*([0-9.]+)$")


class SurveysRejected(StandardsRejected):
    """Survey rows refused, nothing stored; ``issues`` lists every one."""


_GET_SQL = "SELECT structure, decoration, business_area_m2, transition_months FROM parcel_surveys WHERE parcel_id = :id"
_COUNTS_SQL = "SELECT item, grade, quantity FROM parcel_survey_counts WHERE parcel_id = :id ORDER BY item, grade"


def get_survey(conn: Connection, parcel_id: int) -> SurveyFacts | None:
    """The parcel's survey facts, or None when none are recorded."""
    row = conn.execute(text(_GET_SQL), {"id": parcel_id}).first()
    counts = tuple(Count(r.item, r.grade, r.quantity) for r in conn.execute(text(_COUNTS_SQL), {"id": parcel_id}))
    if row is None and not counts:
        return None
    row = row or _EMPTY
    return SurveyFacts(structure=row.structure, decoration=row.decoration,
                       business_area_m2=None if row.business_area_m2 is None else Decimal(str(row.business_area_m2)),
                       transition_months=row.transition_months, counts=counts)


class _Empty:
    structure = decoration = business_area_m2 = transition_months = None


_EMPTY = _Empty()
_UPSERT_SQL = """
INSERT INTO parcel_surveys (parcel_id, structure, decoration, business_area_m2, transition_months, recorded_by)
VALUES (:parcel_id, :structure, :decoration, :business_area_m2, :transition_months, :actor)
ON CONFLICT (parcel_id) DO UPDATE SET structure = EXCLUDED.structure, decoration = EXCLUDED.decoration,
    business_area_m2 = EXCLUDED.business_area_m2, transition_months = EXCLUDED.transition_months,
    recorded_by = EXCLUDED.recorded_by, recorded_at = now()
"""


def _store(conn: Connection, parcel_id: int, facts: SurveyFacts, actor: str, note: str) -> bool:
    """Store one parcel's facts; True (and a history event) when they changed."""
    before = get_survey(conn, parcel_id)
    if before == facts:
        return False
    conn.execute(text(_UPSERT_SQL), {"parcel_id": parcel_id, "structure": facts.structure,
                                     "decoration": facts.decoration, "transition_months": facts.transition_months,
                                     "business_area_m2": facts.business_area_m2, "actor": actor})
    conn.execute(text("DELETE FROM parcel_survey_counts WHERE parcel_id = :id"), {"id": parcel_id})
    if facts.counts:
        conn.execute(text("INSERT INTO parcel_survey_counts (parcel_id, item, grade, quantity) "
                          "VALUES (:parcel_id, :item, :grade, :quantity)"),
                     [{"parcel_id": parcel_id, "item": c.item, "grade": c.grade, "quantity": c.quantity}
                      for c in facts.counts])
    old = before.as_dict() if before else {}
    new = facts.as_dict()
    changes = {f"survey.{k}": {"from": old.get(k), "to": new[k]} for k in SURVEY_FIELDS if old.get(k) != new[k]}
    history.record(conn, [history.event(parcel_id, actor, "attributes", changes=changes, note=note)])
    return True


def put_survey(conn: Connection, parcel_id: int, values: Mapping[str, Any], principal: Principal) -> dict[str, Any]:
    """Record a parcel's survey facts (structure, decoration, business_area_m2, transition_months, counts), replacing
    what was recorded; InvalidInput names a refused field, NotFound an unknown parcel, Forbidden a parcel outside a
    district editor's districts."""
    unknown = sorted(set(values) - set(SURVEY_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}; fields are {', '.join(SURVEY_FIELDS)}", unknown[0])
    row = conn.execute(text("SELECT district_id FROM parcels WHERE id = :id FOR UPDATE"), {"id": parcel_id}).first()
    if row is None:
        raise NotFound(f"no parcel with id {parcel_id}", "parcel")
    if principal.role != Role.admin:
        principal.ensure_may_edit_district(row.district_id)
    facts = parse_survey(values)
    changed = _store(conn, parcel_id, facts, principal.name, "调查登记")
    return facts.as_dict() | {"parcel_id": parcel_id, "changed": changed}


def parse_entries(value: Any, item: str) -> list[dict[str, Any]]:
    """Counts as a sheet's cell writes them, ``围墙:20；水井:1`` (kind, then quantity in its standard's unit)."""
    if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
        return []
    out = []
    for part in re.split(r"[;；,，、\n]+", str(value).strip()):
        if not part.strip():
            continue
        found = _ENTRY.match(part.strip())
        if not found:
            raise ValueError(f"{SURVEY_LABELS_ZH[item]}: write each kind and quantity as 围墙:20; "
                             f"{part.strip()[:40]!r} is not")
        out.append({"item": item, "grade": found.group(1).strip(), "quantity": found.group(2)})
    return out


def import_surveys(conn: Connection, path: Path | str, actor: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Import survey facts from a parcel file or a survey sheet (XLSX or CSV): each row's 地块编号 names a stored
    parcel; the survey columns (房屋结构, 装修等级, 经营面积, 过渡期, 附属物, 青苗) are read, others left alone.
    Raises SurveysRejected naming each refused row and column, and stores nothing."""
    header, records = read_sheet(Path(path), "surveys")
    columns, _unused = match_header(header, _HEADERS)
    if "code" not in columns:
        raise InvalidInput("the sheet has no column for the parcel's code (地块编号)", "header")
    if len(columns) == 1:
        raise InvalidInput("the sheet has no survey column (房屋结构, 装修等级, 经营面积, 过渡期, 附属物, 青苗)",
                           "header")
    codes = [str(rec[columns["code"]]).strip().replace("\x00", "") for _n, rec in records]
    ids = dict(conn.execute(text("SELECT code, id FROM parcels WHERE code = ANY(:codes)"), {"codes": codes}).all())
    issues: list[Issue] = []
    parsed: list[tuple[int, SurveyFacts]] = []
    for (row, rec), code in zip(records, codes):
        if code not in ids:
            issues.append(Issue(row, columns["code"], f"no parcel with code {code[:40]!r}"))
            continue
        values = {f: rec[c] for f, c in columns.items() if f in ("structure", "decoration", "business_area_m2",
                                                                  "transition_months")}
        values = {k: (None if v is None or (isinstance(v, float) and v != v) else v) for k, v in values.items()}
        try:
            values["counts"] = [e for item in COUNTED if item in columns
                                for e in parse_entries(rec[columns[item]], item)]
            parsed.append((ids[code], parse_survey(values)))
        except (ValueError, InvalidInput) as exc:
            where = getattr(exc, "where", None)
            issues.append(Issue(row, columns.get(str(where).split("[")[0], "counts") if where else "counts",
                                str(exc)))
    if issues:
        raise SurveysRejected(issues)
    changed = 0
    if not dry_run:
        for parcel_id, facts in parsed:
            changed += _store(conn, parcel_id, facts, actor, f"调查登记导入：{Path(path).name}")
    return {"rows": len(records), "changed": changed, "dry_run": dry_run}


def survey_columns(header: Sequence[str]) -> bool:
    """Whether a parcel file's header holds survey columns (so its import records the survey too)."""
    columns, _unused = match_header(header, _HEADERS)
    return len(set(columns) - {"code"}) > 0


def import_with_parcels(conn: Connection, path: Path | str, actor: str) -> str | None:
    """After a parcel file's import (``gis.records.importer``): its survey columns, if it is a sheet (XLSX or CSV)
    with any, recorded for the parcels just written, in the same transaction; a note saying so, or None. Refused
    rows raise SurveysRejected, so the parcels are not stored either."""
    if Path(path).suffix.lower() not in (".csv", ".xlsx"):
        return None
    header, _records = read_sheet(Path(path), "surveys")
    if not survey_columns(header):
        return None
    if "code" not in match_header(header, _HEADERS)[0]:
        return "survey columns not read: the parcel code's column is not one they know (地块编号, 宗地代码 …)"
    out = import_surveys(conn, path, actor)
    return f"survey facts (调查登记) recorded for {out['changed']} of {out['rows']} parcels"
