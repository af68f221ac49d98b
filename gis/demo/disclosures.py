"""The demo city's days of publication of compensation (亮底征收), deterministic from its projects and payments.

Every project published the day before the city's first payment (or before its own freeze date, when that is
earlier), except the first project (lowest id), which published ``LATE_DAYS`` after its own first booked payment:
the payments of those days are what the sunshine check (``gis.inspections.sunshine``) finds on the demo.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

LATE_DAYS = 5
NOTE_ZH = "征收补偿情况在项目现场及政府网站公示"


def demo_disclosures(projects: pd.DataFrame, payments: pd.DataFrame) -> pd.DataFrame:
    """One publication day per project: rows of ``compensation_disclosures`` (project_id, published_on, note,
    recorded_by)."""
    first_payment = min(payments["paid_on"]) if len(payments) else None
    rows = []
    for k, (pid, freeze) in enumerate(sorted(zip(projects["id"], projects["freeze_date"], strict=True))):
        own = payments.loc[payments["project_id"] == pid, "paid_on"]
        if k == 0 and len(own):
            published = min(own) + timedelta(days=LATE_DAYS)
        else:
            published = min(d for d in (first_payment, freeze) if d is not None) - timedelta(days=1)
        rows.append({"project_id": int(pid), "published_on": published, "note": NOTE_ZH, "recorded_by": "demo"})
    return pd.DataFrame(rows, columns=["project_id", "published_on", "note", "recorded_by"])
