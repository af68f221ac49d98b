"""The quarterly contest (四季竞赛、五大比拼): each district scored and ranked per quarter on five comparisons.

The source asks that each district's expropriation progress be "laid out and compared" every season (征收征迁进度
晒一晒、比一比), names the holdouts to resolve one by one (逐户化解), the supervision of findings (督查督办) and the
archives inspectors check (档案是否建立健全). The five comparisons, with their weights (``COMPARISONS``, the one
place they are set), each a rate between 0 and 1 at the end of the quarter (or of the as-of day in a quarter
under way), replayed from the history:

1. signing (签约率): the district's parcels at signed or beyond (signed, paid, demolished, cleared) / its parcels;
2. clearance (任务完成率): done / target of the district's quarter target (``gis.records.targets``), the mean
   over the amounts it sets (m², mu, parcels), each capped at 1; none without a quarter target;
3. holdouts (钉子户化解率): holdouts open at the quarter's start or flagged during it, the share resolved (flag
   removed or parcel cleared) by its end; none without holdouts;
4. findings (问题按期整改率): rectification items due in the quarter, the share reported rectified by the end of
   their deadline day; none without items due;
5. archives (档案完整率): 1 − the district's parcels the incomplete-archives check flags / its parcels.

score = 100 × Σ weight × rate / Σ weight over the comparisons that apply (a comparison with none is left out,
its weight shared by the others). Ranks: by score, highest first; equal scores share a rank (1, 1, 3); a district
with no score has no rank. The change against the previous quarter: its score and rank then, score difference
and places gained (previous rank − rank).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis.checks import incomplete_archives
from gis.domain.stages import STAGE_AT_SQL, end_of_day
from gis.domain.tolerance import Tolerance
from gis.io.export import Column, Sheet, write_xlsx_sheets
from gis.platform.config import DEFAULT_TIMEZONE
from gis.platform.errors import InvalidInput
from gis.records.targets import check_quarter, check_year, district_targets, period, period_label


@dataclass(frozen=True)
class Comparison:
    """One of the five comparisons: key, Chinese label, weight, and its rule in words."""

    key: str
    label: str
    weight: float
    rule: str


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("signing", "签约率", 0.25, "已签约及以后阶段的地块 / 片区地块总数"),
    Comparison("clearance", "任务完成率", 0.25, "季度任务（房屋㎡、土地亩、宗数）完成比例的平均，单项最高100%"),
    Comparison("holdouts", "钉子户化解率", 0.20, "季初未化解及季内新增的钉子户中，季末已撤销标记或已交地的比例"),
    Comparison("findings", "问题按期整改率", 0.15, "本季度到期的督查整改事项中，在期限内报告整改完成的比例"),
    Comparison("archives", "档案完整率", 0.15, "1 − 档案不全的地块 / 片区地块总数"),
)
SIGNED_STAGES = ("signed", "paid", "demolished", "cleared")

_PARCELS_SQL = f"""
SELECT d.code AS district, count(s.stage) AS parcels,
       count(s.stage) FILTER (WHERE s.stage = ANY(:signed)) AS signed
FROM districts d
LEFT JOIN parcels pa ON pa.district_id = d.id
LEFT JOIN LATERAL (SELECT {STAGE_AT_SQL.format(parcel="pa.id", end=":end")} AS stage) s ON true
GROUP BY d.code
"""


def _holdout_at(moment: str) -> str:
    """Per parcel: whether it was ever a holdout before ``moment`` and whether it was one still at ``moment``
    (the last 'flags' event's value, else the value before the first later one, else the record's), and its
    stage then. ``moment`` is a bound parameter's name (constants only)."""
    flag = "e.parcel_id = pa.id AND e.kind = 'flags' AND e.changes -> 'holdout' IS NOT NULL"
    return f"""
    SELECT pa.id AS parcel_id, pa.district_id,
           coalesce((SELECT CAST(e.changes -> 'holdout' ->> 'to' AS boolean) FROM parcel_events e
                     WHERE {flag} AND e.at < :{moment} ORDER BY e.at DESC, e.id DESC LIMIT 1),
                    (SELECT CAST(e.changes -> 'holdout' ->> 'from' AS boolean) FROM parcel_events e
                     WHERE {flag} AND e.at >= :{moment} ORDER BY e.at, e.id LIMIT 1),
                    pa.holdout) AS holdout,
           EXISTS (SELECT 1 FROM parcel_events e WHERE {flag} AND e.at < :{moment}
                   AND CAST(e.changes -> 'holdout' ->> 'to' AS boolean)) AS flagged_before,
           {STAGE_AT_SQL.format(parcel="pa.id", end=":" + moment)} AS stage
    FROM parcels pa"""


_HOLDOUTS_SQL = f"""
WITH s AS ({_holdout_at("start")}), e AS ({_holdout_at("end")}),
play AS (
    SELECT s.district_id, NOT e.holdout OR e.stage = 'cleared' AS resolved
    FROM s JOIN e ON e.parcel_id = s.parcel_id
    WHERE (s.holdout AND s.stage IS NOT NULL AND s.stage <> 'cleared')                      -- open at the start
       OR (e.holdout AND e.stage IS NOT NULL AND (s.stage IS NULL OR s.stage <> 'cleared'))  -- open at the end
       OR (e.flagged_before AND NOT s.flagged_before)                                       -- flagged during it
)
SELECT d.code AS district, count(*) AS holdouts, count(*) FILTER (WHERE play.resolved) AS resolved
FROM play JOIN districts d ON d.id = play.district_id
GROUP BY d.code
"""
_FINDINGS_SQL = """
SELECT d.code AS district, count(*) AS due,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM finding_events e WHERE e.finding_id = f.id AND e.status_to = 'rectified'
           AND e.at < :end AND timezone(:tz, e.at) < CAST(f.deadline AS timestamp) + interval '1 day')) AS on_time
FROM findings f JOIN districts d ON d.id = f.district_id
WHERE f.deadline BETWEEN :first AND :last AND f.created_at < :end
GROUP BY d.code
"""


def _rate(numerator: float, denominator: float) -> dict[str, Any] | None:
    if not denominator:
        return None
    return {"rate": round(numerator / denominator, 6), "numerator": numerator, "denominator": denominator}


def _clearance(block: dict[str, Any] | None) -> dict[str, Any] | None:
    if not block:
        return None
    shares = [min(1.0, float(block[m]["done"]) / float(block[m]["target"]))
              for m in ("house_m2", "land_mu", "parcels") if block.get(m) and float(block[m]["target"]) > 0]
    if not shares:
        return None
    return {"rate": round(sum(shares) / len(shares), 6), "numerator": round(sum(shares), 6),
            "denominator": len(shares)}


def _end_day(year: int, quarter: int, today: date) -> date:
    first, last = period(year, quarter)
    if first > today:
        raise InvalidInput(f"{period_label(year, quarter)} has not begun", "quarter")
    return min(last, today)


def score(rates: dict[str, dict[str, Any] | None]) -> float | None:
    """100 × Σ weight × rate / Σ weight over the comparisons with a rate; None when none has one."""
    weighted = [(c.weight, rates[c.key]["rate"]) for c in COMPARISONS if rates.get(c.key) is not None]
    total = sum(w for w, _ in weighted)
    return round(100 * sum(w * r for w, r in weighted) / total, 2) if total else None


def _ranks(scores: dict[str, float | None]) -> dict[str, int | None]:
    ranked = sorted((s for s in scores.values() if s is not None), reverse=True)
    return {d: (ranked.index(s) + 1 if s is not None else None) for d, s in scores.items()}


def _quarter_rates(conn: Connection, tolerance: Tolerance, year: int, quarter: int, end_day: date,
                   tz: str) -> dict[str, dict[str, Any]]:
    first, last = period(year, quarter)
    start, end = end_of_day(first - timedelta(days=1), tz), end_of_day(end_day, tz)
    params = {"start": start, "end": end, "signed": list(SIGNED_STAGES), "tz": tz, "first": first, "last": last}
    parcels = {r.district: r for r in conn.execute(text(_PARCELS_SQL), params)}
    holdouts = {r.district: r for r in conn.execute(text(_HOLDOUTS_SQL), params)}
    due = {r.district: r for r in conn.execute(text(_FINDINGS_SQL), params)}
    targets = district_targets(conn, tolerance, end_day, tz=tz)
    flagged: dict[str, int] = {}
    for f in incomplete_archives(conn, as_of=end_day, tz=tz).findings:
        flagged[f["district"]] = flagged.get(f["district"], 0) + 1
    names = dict(conn.execute(text("SELECT code, name FROM districts")).all())
    out = {}
    for code in sorted(parcels):
        p = parcels[code]
        rates = {
            "signing": _rate(p.signed, p.parcels),
            "clearance": _clearance((targets.get(code) or {}).get("quarter")),
            "holdouts": _rate(holdouts[code].resolved, holdouts[code].holdouts) if code in holdouts else None,
            "findings": _rate(due[code].on_time, due[code].due) if code in due else None,
            "archives": _rate(p.parcels - flagged.get(code, 0), p.parcels),
        }
        out[code] = {"district": code, "district_name": names[code], "rates": rates, "score": score(rates)}
    return out


def previous_quarter(year: int, quarter: int) -> tuple[int, int]:
    """The quarter before: (2026, 1) → (2025, 4)."""
    return (year - 1, 4) if quarter == 1 else (year, quarter - 1)


def contest(conn: Connection, tolerance: Tolerance, *, year: int, quarter: int, today: date,
            tz: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """The quarter's contest: the comparisons with their weights, and per district each rate, the score, the
    rank, and the previous quarter's score and rank with the change. A quarter under way is scored as of
    ``today``; one not begun is refused."""
    year = check_year(year)
    quarter = check_quarter(quarter)
    if quarter is None:
        raise InvalidInput("a quarter (1–4) is required", "quarter")
    end_day = _end_day(year, quarter, today)
    now = _quarter_rates(conn, tolerance, year, quarter, end_day, tz)
    py, pq = previous_quarter(year, quarter)
    before = (_quarter_rates(conn, tolerance, py, pq, period(py, pq)[1], tz)
              if py >= 2000 else {})
    ranks = _ranks({d: r["score"] for d, r in now.items()})
    prev_ranks = _ranks({d: r["score"] for d, r in before.items()})
    rows = []
    for code, r in now.items():
        prev = before.get(code, {}).get("score")
        rows.append(r | {
            "rank": ranks[code], "previous_score": prev, "previous_rank": prev_ranks.get(code),
            "score_change": round(r["score"] - prev, 2) if r["score"] is not None and prev is not None else None,
            "rank_change": (prev_ranks[code] - ranks[code]
                            if ranks[code] is not None and prev_ranks.get(code) is not None else None),
        })
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["district"]))
    first, last = period(year, quarter)
    return {"year": year, "quarter": quarter, "label": period_label(year, quarter),
            "period": {"from": first.isoformat(), "to": last.isoformat()}, "as_of": end_day.isoformat(),
            "previous": {"year": py, "quarter": pq, "label": period_label(py, pq)},
            "comparisons": [{"key": c.key, "label": c.label, "weight": c.weight, "rule": c.rule}
                            for c in COMPARISONS],
            "districts": rows}


CONTEST_COLUMNS = (
    Column("rank", "名次", "int"),
    Column("district_name", "片区", width=10),
    *(Column(c.key, f"{c.label}（权重{c.weight:.0%}）", "share", width=14) for c in COMPARISONS),
    Column("score", "得分", "float"),
    Column("previous_rank", "上季度名次", "int"),
    Column("previous_score", "上季度得分", "float"),
    Column("rank_change", "名次变化", "int"),
    Column("score_change", "得分变化", "float"),
)


def contest_rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The contest's districts as flat rows for ``CONTEST_COLUMNS`` (a table, a spreadsheet)."""
    return [{k: r.get(k) for k in ("rank", "district_name", "score", "previous_rank", "previous_score",
                                   "rank_change", "score_change")}
            | {c.key: (r["rates"][c.key] or {}).get("rate") for c in COMPARISONS} for r in answer["districts"]]


def contest_xlsx(answer: dict[str, Any]) -> bytes:
    """The contest as a workbook: one sheet, a row per district (rates as percentages, scores 2 decimals)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contest.xlsx"
        write_xlsx_sheets([Sheet(answer["label"] + "竞赛", contest_rows(answer), CONTEST_COLUMNS, unit="个片区")],
                          path, on=date.fromisoformat(answer["as_of"]))
        return path.read_bytes()
