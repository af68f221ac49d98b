"""Independent oracles: what the service should answer, computed with shapely and pandas from the demo generator's
own tables, never through the service's SQL. A test compares the service with these."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import shapely

TZ = ZoneInfo("Asia/Shanghai")  # the demo city's


def footprint_of(project) -> shapely.Geometry:
    """A generated project's footprint: its corridor (flat ends, round joins) or its boundary."""
    if project["centerline"] is not None:
        return shapely.buffer(project["centerline"], project["corridor_width_m"] / 2, cap_style="flat",
                              join_style="round")
    return project["boundary"]


def last_stage_events(city, day: date) -> pd.DataFrame:
    """Replay the generator's history by hand: per parcel id the last stage event before the end of ``day``."""
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=TZ)
    ev = city.events[city.events["stage_to"].notna() & (city.events["at"] < end)].sort_values(["parcel_id", "at"])
    return ev.groupby("parcel_id").tail(1).set_index("parcel_id")


def stages_at(city, day: date) -> dict[int, tuple[str, date]]:
    """Parcel id → (stage, day reached) at the end of ``day``, from the replayed history."""
    last = last_stage_events(city, day)
    return {pid: (stage, at.astimezone(TZ).date()) for pid, stage, at in zip(last.index, last["stage_to"], last["at"])}


def stage_on(city, day: date) -> dict[int, str]:
    """Parcel id → its stage at the end of ``day`` (absent: nothing recorded by then)."""
    return {pid: stage for pid, (stage, _) in stages_at(city, day).items()}
