"""The demo city's itemised compensation: every item's standard in the four districts, and each parcel's survey facts.

Deterministic: rates follow each district's base rate (``STANDARD_RATES``), survey facts follow the parcel's id.
The base items (房屋价值补偿 and 土地补偿, one rate for all classes) stay the generator's, which the demo payments
are paid at, so the planted above-standard cases stay exactly the planted ones; the other items are added here,
all in force from the base standards' day, the signing incentive until ``SIGN_BY`` (after every demo contract).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
from sqlalchemy import Connection

from gis.demo.generator import ACTOR, STANDARD_RATES, DemoCity
from gis.domain.compensation import DECORATIONS, STRUCTURES
from gis.platform.bulk import copy_frame

VALID_FROM = date(2024, 1, 1)  # the base standards' day
SIGN_BY = date(2099, 12, 31)  # the demo's signing period has not closed
ARTICLE = "宁政〔2024〕12号"
# (kind, item, grade, unit, rate at the base house rate 3000 元/㎡ or land rate 60000 元/亩), scaled per district
ITEMS = (
    ("house", "decoration", "simple", "m2", 150), ("house", "decoration", "medium", "m2", 300),
    ("house", "decoration", "fine", "m2", 600),
    ("house", "relocation", "", "m2", 20),
    ("house", "temporary_resettlement", "", "m2_month", 12),
    ("house", "business_loss", "", "m2", 800),
    ("house", "incentive", "", "m2", 200),
    ("house", "attachments", "围墙", "each", 120), ("house", "attachments", "水井", "each", 1500),
    ("land", "subsidy", "", "mu", 32000),
    ("land", "social_security", "", "mu", 25000),
    ("land", "crops", "青苗", "mu", 2000), ("land", "crops", "果树", "each", 80),
)
STRUCTURE_CODES = tuple(STRUCTURES)
DECORATION_CODES = tuple(DECORATIONS)


def _scale(code: str, kind: str) -> Decimal:
    house, land = STANDARD_RATES[code]
    return Decimal(str(house)) / 3000 if kind == "house" else Decimal(str(land)) / 60000


def itemised_standards(city: DemoCity) -> pd.DataFrame:
    """The non-base items' standards of every district, rates rounded to the yuan."""
    rows = []
    for district_id, code in zip(city.districts["id"], city.districts["code"]):
        for n, (kind, item, grade, unit, rate) in enumerate(ITEMS, start=1):
            rows.append({"district_id": int(district_id), "kind": kind, "item": item, "grade": grade, "unit": unit,
                         "rate_yuan": (rate * _scale(code, kind)).quantize(Decimal(1)), "valid_from": VALID_FROM,
                         "sign_by": SIGN_BY if item == "incentive" else None, "note": f"{ARTICLE} 第{n}条",
                         "recorded_by": ACTOR})
    return pd.DataFrame(rows)


def surveys(city: DemoCity) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each parcel's survey facts and counted attachments and crops, from its id."""
    facts, counts = [], []
    for pid, kind, mu in zip(city.parcels["id"], city.parcels["kind"], city.parcels["land_area_mu"]):
        pid = int(pid)
        if kind == "house":
            facts.append({"parcel_id": pid, "structure": STRUCTURE_CODES[pid % 4],
                          "decoration": DECORATION_CODES[(pid // 4) % 4],
                          "business_area_m2": float(20 + pid % 5 * 10) if pid % 17 == 0 else None,
                          "transition_months": (6, 12, 18)[pid % 3], "recorded_by": ACTOR})
            if pid % 3 == 0:
                counts.append({"parcel_id": pid, "item": "attachments", "grade": "围墙", "quantity": 10 + pid % 20})
            if pid % 7 == 0:
                counts.append({"parcel_id": pid, "item": "attachments", "grade": "水井", "quantity": 1})
        else:
            if pid % 5 < 3 and mu and mu > 0:
                counts.append({"parcel_id": pid, "item": "crops", "grade": "青苗", "quantity": round(float(mu), 2)})
            if pid % 5 == 4:
                counts.append({"parcel_id": pid, "item": "crops", "grade": "果树", "quantity": 5 + pid % 30})
    return pd.DataFrame(facts), pd.DataFrame(counts)


def load_compensation(conn: Connection, city: DemoCity) -> dict[str, int]:
    """Write the itemised standards and the surveys into the loaded demo city (after its parcels)."""
    standards = itemised_standards(city)
    facts, counts = surveys(city)
    # COPY writes an empty text as NULL: the items with one rate for all take the column's default ('') instead.
    graded = standards[standards["grade"] != ""]
    ungraded = standards[standards["grade"] == ""].drop(columns="grade")
    written = sum(copy_frame(conn, "compensation_standards", frame, tuple(frame.columns), srid=city.srid)
                  for frame in (graded, ungraded))
    return {
        "compensation_standards (itemised)": written,
        "parcel_surveys": copy_frame(conn, "parcel_surveys", facts, tuple(facts.columns), srid=city.srid),
        "parcel_survey_counts": copy_frame(conn, "parcel_survey_counts", counts, tuple(counts.columns),
                                           srid=city.srid),
    }
