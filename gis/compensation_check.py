"""突破政策底线, item by item: what was paid on an item of a parcel against the item's amount by the itemised engine
(``gis.analysis.compensation``), for the items a payment's own rate × area cannot price.

The above-standard check (``gis.checks.above_standard``) holds each payment priced per m² or per mu to its rate ×
area, the rate of the parcel's structure or decoration grade when the standards set one. The items whose standard
is not a rate per area, or whose amount depends on more than an area, are compared here, as an item's total paid up
to the check's day against the engine's amount for that item on the parcel's agreement date:

- attachments and crops (附属物、青苗: counted kinds), the transitional fee (临时安置费: area × months), the signing
  incentive (签约奖励: nothing after its deadline), and any item whose standard is per item, per household or per m²
  and month.

A finding names the item and the excess; its rows have the columns of the per-payment findings (the latest payment
of the item stands for the date and id; the paid rate is not given, several payments making the amount).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from gis.analysis.compensation import calculate, parcel_household

ENGINE_ITEMS = ("attachments", "crops", "temporary_resettlement", "incentive")
AREA_UNITS = ("m2", "mu")
_PAIRS_SQL = """
SELECT pm.parcel_id, pm.item, sum(pm.amount_yuan) AS paid, max(pm.paid_on) AS last_paid_on,
       (array_agg(pm.id ORDER BY pm.paid_on DESC, pm.id DESC))[1] AS payment_id
FROM payments pm JOIN parcels pa ON pa.id = pm.parcel_id
WHERE pm.paid_on <= :as_of
  AND (pm.item = ANY(:engine_items) OR EXISTS (
      SELECT 1 FROM compensation_standards s
      WHERE s.district_id = pa.district_id AND s.kind = pa.kind AND s.item = pm.item
        AND s.unit <> ALL(:area_units)))
GROUP BY pm.parcel_id, pm.item
ORDER BY pm.parcel_id, pm.item
"""
INNER_COLUMNS = ("parcel_id", "payment_id", "paid_on", "item", "priced_on", "standard_from", "amount_yuan",
                 "basis_area", "basis_unit", "standard_rate", "paid_rate", "standard_amount", "excess_yuan",
                 "excess_share")
_TYPES = ("bigint", "bigint", "date", "text", "date", "date", "numeric", "numeric", "text", "numeric", "numeric",
          "numeric", "numeric", "numeric")


def item_excesses(conn: Connection, as_of: date, tolerance: Decimal) -> list[dict[str, Any]]:
    """Each (parcel, item) of the engine's items paid above the engine's amount by more than ``tolerance``."""
    pairs = conn.execute(text(_PAIRS_SQL), {"as_of": as_of, "engine_items": list(ENGINE_ITEMS),
                                            "area_units": list(AREA_UNITS)}).all()
    out: list[dict[str, Any]] = []
    calculations: dict[int, Any] = {}
    for p in pairs:
        if p.parcel_id not in calculations:
            calculations[p.parcel_id] = calculate(conn, parcel_household(conn, p.parcel_id, today=as_of))
        calc = calculations[p.parcel_id]
        lines = [i for i in calc.items if i.item == p.item]
        if not lines or any(i.amount_yuan is None for i in lines):
            continue  # no standard, or a survey fact missing: not checked here
        if p.item not in ENGINE_ITEMS and all(i.unit in AREA_UNITS for i in lines):
            continue  # priced per area: the per-payment rule holds it
        due = sum((i.amount_yuan for i in lines), Decimal(0))
        excess = p.paid - due
        if excess <= tolerance:
            continue
        one = lines[0] if len(lines) == 1 else None
        out.append({
            "parcel_id": p.parcel_id, "payment_id": p.payment_id, "paid_on": p.last_paid_on, "item": p.item,
            "priced_on": calc.household.agreed_on, "standard_from": max(i.valid_from for i in lines),
            "amount_yuan": p.paid, "basis_area": one.quantity if one else None, "basis_unit": one.unit if one else None,
            "standard_rate": one.rate_yuan if one else None, "paid_rate": None, "standard_amount": due,
            "excess_yuan": excess, "excess_share": excess / due if due else None,
        })
    return out


def item_excesses_sql(conn: Connection, as_of: date, tolerance: Decimal) -> tuple[str, dict[str, Any]]:
    """``item_excesses`` as an SQL row source with the per-payment rule's columns (to UNION ALL with it), and its
    bound parameters (arrays, one per column)."""
    rows = item_excesses(conn, as_of, tolerance)
    params = {f"ix_{c}": [r[c] for r in rows] for c in INNER_COLUMNS}
    arrays = ", ".join(f"CAST(:ix_{c} AS {t}[])" for c, t in zip(INNER_COLUMNS, _TYPES))
    return f"SELECT * FROM unnest({arrays}) AS ix({', '.join(INNER_COLUMNS)})", params
