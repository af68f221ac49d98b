"""The parcel workflow's stages, their Chinese labels, and dates in the city's time zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gis.platform.errors import InvalidInput

STAGES = ("surveyed", "appraised", "signed", "paid", "demolished", "cleared")
# The dispute path of the national rules (gis.domain.workflow has the transitions).
DISPUTE_STAGES = ("no_agreement", "compensation_decision", "court_enforcement")
ALL_STAGES = STAGES + DISPUTE_STAGES
STAGE_LABELS_ZH = {
    "surveyed": "调查登记",
    "appraised": "评估",
    "signed": "签约",
    "paid": "补偿款发放",
    "demolished": "腾空/拆除",
    "cleared": "交地(净地)",
    "no_agreement": "达不成协议",
    "compensation_decision": "补偿决定",
    "court_enforcement": "申请法院强制执行",
}
KIND_LABELS_ZH = {"house": "房屋", "land": "土地"}


def check_stages(stages: Sequence[str], where: str = "stage") -> None:
    """Refuse a filter naming an unknown stage: it would match nothing and answer "none"."""
    bad = [s for s in stages if s not in ALL_STAGES]
    if bad:
        raise InvalidInput(f"unknown stage {bad[0]!r}; stages are {', '.join(ALL_STAGES)}", where)

# The stage a parcel was in at the end of a day, replayed from its history:
# the last stage event before the end of that day. Index parcel_events_stage_idx serves it.
STAGE_AT_SQL = """(SELECT e.stage_to FROM parcel_events e
    WHERE e.parcel_id = {parcel} AND e.stage_to IS NOT NULL AND e.at < {end}
    ORDER BY e.at DESC, e.id DESC LIMIT 1)"""
STAGE_SINCE_AT_SQL = """(SELECT e.at FROM parcel_events e
    WHERE e.parcel_id = {parcel} AND e.stage_to IS NOT NULL AND e.at < {end}
    ORDER BY e.at DESC, e.id DESC LIMIT 1)"""


def today_in(tz: str) -> date:
    """Today in time zone ``tz``: the city's date, not the server's."""
    return datetime.now(ZoneInfo(tz)).date()


def end_of_day(day: date, tz: str) -> datetime:
    """The first instant after ``day`` in the city's time zone."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(tz))
