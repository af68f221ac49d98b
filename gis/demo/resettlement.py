"""The demo city's resettlement and cleared land: two resettlement estates with their flats, households in
every resettlement state, cleared land in every supply state, and the planted cases the checks must find.

Built from the loaded city (``load_city`` calls ``seed_resettlement``), deterministic for a seed: parcels are
taken in code order and drawn with a seeded generator. The day it is written for is the city's last recorded
day (the generator's ``today``), stored with the manifest (``dataset_notes`` key ``demo_resettlement``).

Planted, and nothing else of the kind:
- ``transition_overdue``: households that chose a flat, promised 6 months, moved out more than 7 months ago,
  flat selected but no keys (every other household is promised 36 months and keeps within it);
- ``unresettled``: households demolished more than 30 days ago that chose a flat, have none and were paid no
  transitional fee;
- ``flat_allocated_twice``: one flat whose first household's cancellation was recorded after the flat had gone
  to a second (a legacy record), both listed;
- ``idle_cleared_land``: land cleared more than ``IDLE_DAYS`` days ago and never supplied (every other such
  parcel is supplied);
- ``reoccupied`` (``write_reoccupation_imagery``, beside the demo imagery): a structure on one cleared parcel
  of the development zone, on the latest of two synthetic height epochs flown after its clearance.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import rasterize
from sqlalchemy import Connection, text

from gis.analysis.resettlement import add_months, months_started, price_difference
from gis.imagery.layers import delete_layers_under, register_layer, to_cog, working_crs
from gis.platform.config import DEFAULT_TIMEZONE
from gis.platform.db import working_srid

NOTE_KEY = "demo_resettlement"
REOCCUPATION_NOTE_KEY = "demo_reoccupation"
ACTOR = "demo"
IDLE_DAYS = 180  # the check's default (Settings.idle_land_days)
ESTATES = (  # code, name, district code, unit price (元/㎡), flat areas by position on a floor
    ("XJ-AZ01", "西津安置小区", "xijin", Decimal(4200), (Decimal("75.50"), Decimal("90.00"), Decimal("110.20"),
                                                     Decimal("125.80"))),
    ("WX-AZ01", "汪溪安置小区", "wangxi", Decimal(3300), (Decimal("70.00"), Decimal("88.60"), Decimal("105.00"),
                                                     Decimal("120.40"))),
)
BUILDINGS, FLOORS = ("1栋", "2栋"), 6
COUNTS = {"money_paid": 6, "money_pending": 3, "delivered": 8, "selected": 6, "awaiting": 9, "overdue": 3,
          "unresettled": 2, "twice": 2}
MONTHLY_FEE = Decimal(1500)
PROMISED, PROMISED_OVERDUE = 36, 6
RECEIVERS = {"transfer": ("商住用地出让项目", "工业用地出让项目", "物流园出让项目"),
             "allocation": ("市政道路工程", "学校建设项目", "公园绿地项目")}
PLANTED_IDLE = 4


def _today(conn: Connection) -> date:
    return conn.execute(text("SELECT max(CAST(timezone(:tz, at) AS date)) FROM parcel_events"),
                        {"tz": DEFAULT_TIMEZONE}).scalar()


def _stock(conn: Connection) -> dict[str, list[tuple[int, Decimal, Decimal]]]:
    """The two estates' flats: district code → [(flat id, area, unit price)] in building, floor, number order."""
    out: dict[str, list[tuple[int, Decimal, Decimal]]] = {}
    for code, name, district, price, areas in ESTATES:
        estate = conn.execute(text(
            "INSERT INTO resettlement_estates (code, name, district_id, recorded_by) "
            "SELECT :c, :n, id, :a FROM districts WHERE code = :d RETURNING id"
        ), {"c": code, "n": name, "d": district, "a": ACTOR}).scalar_one()
        flats = out.setdefault(district, [])
        for building in BUILDINGS:
            bid = conn.execute(text("INSERT INTO resettlement_buildings (estate_id, name, floors) "
                                    "VALUES (:e, :n, :f) RETURNING id"), {"e": estate, "n": building, "f": FLOORS})
            bid = bid.scalar_one()
            for floor in range(1, FLOORS + 1):
                for k, area in enumerate(areas, start=1):
                    fid = conn.execute(text(
                        "INSERT INTO resettlement_flats (building_id, number, floor, area_m2, unit_price_yuan) "
                        "VALUES (:b, :n, :f, :a, :p) RETURNING id"
                    ), {"b": bid, "n": f"{floor}0{k}", "f": floor, "a": area, "p": price}).scalar_one()
                    flats.append((int(fid), area, price))
    return out


_HOUSES_SQL = """
SELECT pa.id, pa.code, pa.stage, pa.signed_on, pa.demolished_on, d.code AS district,
       (SELECT o.project_id FROM project_parcel_overlaps o WHERE o.parcel_id = pa.id
        ORDER BY o.overlap_m2 DESC, o.project_id LIMIT 1) AS project_id,
       (SELECT sum(amount_yuan) FROM payments pm WHERE pm.parcel_id = pa.id AND pm.item = 'house_value') AS old_value
FROM parcels pa JOIN districts d ON d.id = pa.district_id
WHERE pa.kind = 'house' AND pa.signed_on IS NOT NULL AND NOT pa.holdout AND NOT pa.legacy
ORDER BY pa.code
"""


def seed_resettlement(conn: Connection, *, seed: int = 42) -> dict[str, Any]:
    """Write the demo's resettlement stock, households and land supply; the manifest of planted cases."""
    rng = np.random.default_rng(seed)
    today = _today(conn)
    if today is None:
        return {}
    stock = _stock(conn)
    houses = [dict(r) for r in conn.execute(text(_HOUSES_SQL)).mappings()]
    demolished = [h for h in houses if h["stage"] in ("demolished", "cleared") and h["demolished_on"] is not None
                  and h["demolished_on"] <= today - timedelta(days=40) and h["old_value"] is not None]
    paid = [h for h in houses if h["stage"] == "paid"]
    signed = [h for h in houses if h["stage"] == "signed"]
    order = rng.permutation(len(demolished))
    pool = [demolished[i] for i in order]
    # The overdue households moved out more than 13 months ago; the rest are drawn from what is left.
    early = [h for h in pool if h["demolished_on"] <= add_months(today, -7)]
    roles: dict[str, list[dict[str, Any]]] = {"overdue": early[:COUNTS["overdue"]]}
    taken = {h["id"] for h in roles["overdue"]}
    rest = [h for h in pool if h["id"] not in taken]
    for role in ("delivered", "selected", "awaiting", "unresettled", "twice"):
        roles[role], rest = rest[:COUNTS[role]], rest[COUNTS[role]:]
    roles["money_paid"] = (rest + [paid[i] for i in rng.permutation(len(paid))])[:COUNTS["money_paid"]]
    roles["money_pending"] = [signed[i] for i in rng.permutation(len(signed))][:COUNTS["money_pending"]]
    projects_of: dict[int, int | None] = {}
    # Each household's place in its project's selection order: by agreement day, then parcel code.
    choosing = sorted((h for role in ("delivered", "selected", "overdue", "awaiting", "unresettled", "twice")
                       for h in roles[role]), key=lambda h: (h["project_id"] or 0, h["signed_on"], h["code"]))
    place: dict[int, int] = {}
    for h in choosing:
        place[h["id"]] = 1 + sum(1 for o in place if projects_of[o] == h["project_id"])
        projects_of[h["id"]] = h["project_id"]
    district_estate = {"xijin": "xijin", "nanshan": "xijin", "helixi": "wangxi", "wangxi": "wangxi"}
    free = {k: list(v) for k, v in stock.items()}

    def household(h: dict[str, Any], choice: str, promised: int | None) -> None:
        transition = h["demolished_on"] if choice == "flat" else None
        conn.execute(text(
            "INSERT INTO resettlement_households (parcel_id, project_id, choice, agreement_on, old_value_yuan, "
            "transition_from, promised_months, monthly_fee_yuan, recorded_by) VALUES (:p, :pr, :c, :a, :v, :t, :m, "
            ":f, :by)"
        ), {"p": h["id"], "pr": h["project_id"], "c": choice, "a": h["signed_on"], "v": h["old_value"],
            "t": transition, "m": promised if transition else None, "f": MONTHLY_FEE if transition else None,
            "by": ACTOR})

    def fees(h: dict[str, Any], until: date) -> None:
        """Each month's fee, paid on the month's third day, for the months started before ``until``."""
        start = h["demolished_on"]
        for month in range(1, months_started(start, until) + 1):
            paid_on = add_months(start, month - 1) + timedelta(days=3)
            if paid_on <= today:
                conn.execute(text("INSERT INTO transition_payments (parcel_id, month_no, paid_on, amount_yuan, "
                                  "recorded_by) VALUES (:p, :m, :d, :y, :by)"),
                             {"p": h["id"], "m": month, "d": paid_on, "y": MONTHLY_FEE, "by": ACTOR})

    def allocate(h: dict[str, Any], on: date, cancelled: date | None = None) -> tuple[int, Decimal, Decimal]:
        flat = free[district_estate[h["district"]]].pop(0)
        conn.execute(text(
            "INSERT INTO resettlement_allocations (parcel_id, flat_id, selection_order, selected_on, cancelled_on, "
            "recorded_by) VALUES (:p, :f, :o, :on, :x, :by)"
        ), {"p": h["id"], "f": flat[0], "o": place[h["id"]], "on": on, "x": cancelled, "by": ACTOR})
        return flat

    for h in roles["money_paid"]:
        household(h, "money", None)
    for h in roles["money_pending"]:
        household(h, "money", None)
    for h in roles["delivered"]:
        household(h, "flat", PROMISED)
        keys = min(add_months(h["demolished_on"], int(rng.integers(6, 21))), today - timedelta(days=1))
        selected = max(h["signed_on"], h["demolished_on"], keys - timedelta(days=60))
        _fid, area, price = allocate(h, selected)
        difference = price_difference(h["old_value"], area, price)["difference_yuan"]
        conn.execute(text("UPDATE resettlement_allocations SET settled_on = :s, difference_yuan = :d "
                          "WHERE parcel_id = :p"), {"s": keys - timedelta(days=1), "d": difference, "p": h["id"]})
        conn.execute(text("UPDATE resettlement_households SET keys_on = :k WHERE parcel_id = :p"),
                     {"k": keys, "p": h["id"]})
        fees(h, keys)
    for role, promised in (("selected", PROMISED), ("overdue", PROMISED_OVERDUE)):
        for h in roles[role]:
            household(h, "flat", promised)
            allocate(h, min(today, max(h["signed_on"], h["demolished_on"] + timedelta(days=30))))
            fees(h, today + timedelta(days=1))
    for h in roles["awaiting"]:
        household(h, "flat", PROMISED)
        fees(h, today + timedelta(days=1))
    for h in roles["unresettled"]:
        household(h, "flat", PROMISED)
    # A legacy record: the first household's cancellation came after the flat had gone to the second.
    if len(roles["twice"]) == 2:  # a city too small has no pair to plant
        first, second = roles["twice"]
        for h in (first, second):
            household(h, "flat", PROMISED)
            fees(h, today + timedelta(days=1))
        on = min(today - timedelta(days=20), max(first["signed_on"], first["demolished_on"], second["signed_on"],
                                                  second["demolished_on"]) + timedelta(days=5))
        shared = allocate(first, on, cancelled=on + timedelta(days=10))
        conn.execute(text("INSERT INTO resettlement_allocations (parcel_id, flat_id, selection_order, selected_on, "
                          "recorded_by) VALUES (:p, :f, :o, :on, :by)"),
                     {"p": second["id"], "f": shared[0], "o": place[second["id"]], "on": on + timedelta(days=3),
                      "by": ACTOR})
        allocate(first, on + timedelta(days=10))
    supply = _land_supply(conn, rng, today)
    manifest = {
        "as_of": today.isoformat(), "seed": seed, "synthetic": True,
        "households": {role: sorted(h["code"] for h in hs) for role, hs in roles.items()},
        "planted": {
            "transition_overdue": sorted(h["code"] for h in roles["overdue"]),
            "unresettled": sorted(h["code"] for h in roles["unresettled"]),
            "flat_allocated_twice": sorted(h["code"] for h in roles["twice"]),
            "idle_cleared_land": supply["idle"],
        },
        "land_supply": {k: len(v) for k, v in supply.items()},
    }
    conn.execute(text("INSERT INTO dataset_notes (key, value) VALUES (:k, CAST(:v AS jsonb)) "
                      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"),
                 {"k": NOTE_KEY, "v": json.dumps(manifest, ensure_ascii=False)})
    return manifest


def _land_supply(conn: Connection, rng: np.random.Generator, today: date) -> dict[str, list[str]]:
    """Supply every parcel cleared more than IDLE_DAYS ago but the planted idle ones, and some of the younger
    ones, by transfer or allocation; the rest await supply."""
    cleared = conn.execute(text(
        "SELECT id, code, cleared_on FROM parcels WHERE stage = 'cleared' AND cleared_on IS NOT NULL ORDER BY code"
    )).all()
    old = [c for c in cleared if (today - c.cleared_on).days > IDLE_DAYS + 30]
    idle = {old[i].id for i in rng.choice(len(old), size=min(PLANTED_IDLE, len(old)), replace=False)}
    out: dict[str, list[str]] = {"idle": [], "transfer": [], "allocation": [], "awaiting": []}
    for c in cleared:
        age = (today - c.cleared_on).days
        if c.id in idle:
            out["idle"].append(c.code)
            continue
        if age <= IDLE_DAYS and rng.random() < 0.6:
            out["awaiting"].append(c.code)
            continue
        if age <= 1:
            out["awaiting"].append(c.code)
            continue
        method = "transfer" if rng.random() < 0.6 else "allocation"
        on = c.cleared_on + timedelta(days=int(rng.integers(1, min(age, IDLE_DAYS) + 1)))
        names = RECEIVERS[method]
        conn.execute(text("INSERT INTO land_supply (parcel_id, method, supplied_on, receiving_project, recorded_by) "
                          "VALUES (:p, :m, :d, :r, :by)"),
                     {"p": c.id, "m": method, "d": on, "r": names[int(rng.integers(len(names)))], "by": ACTOR})
        out[method].append(c.code)
    out["idle"].sort()
    return out


# ---------------------------------------------------------------------------------------------
# Re-occupation on imagery

_REOCCUPATION_PARCEL_SQL = """
SELECT pa.id, pa.code, pa.cleared_on, ST_AsBinary(pa.geom) AS wkb
FROM parcels pa JOIN project_parcel_overlaps o ON o.parcel_id = pa.id JOIN projects p ON p.id = o.project_id
WHERE p.code = 'devzone' AND pa.stage = 'cleared' AND pa.kind = 'land' AND pa.cleared_on <= :before
  AND ST_Area(pa.geom) >= 600
ORDER BY pa.code
"""
BOX_M = 160.0
FIRST_DAYS, LATEST_DAYS = 150, 10  # the two epochs are flown this many days before the city's last day
STRUCTURE_M, STRUCTURE_HEIGHT_M = 12.0, 4.5


def write_reoccupation_imagery(conn: Connection, out_dir: Path, *, seed: int = 42) -> dict[str, Any]:
    """Two synthetic height epochs around one cleared parcel of the development zone, flown after its clearance,
    the latest with a new structure on it; registered, the manifest stored (``demo_reoccupation``)."""
    rng = np.random.default_rng(seed)
    today = _today(conn)
    first_on, latest_on = today - timedelta(days=FIRST_DAYS), today - timedelta(days=LATEST_DAYS)
    row = conn.execute(text(_REOCCUPATION_PARCEL_SQL), {"before": first_on - timedelta(days=30)}).first()
    if row is None:
        return {}
    srid = working_srid(conn)
    crs = working_crs(srid)
    parcel = shapely.from_wkb(row.wkb)
    if parcel.buffer(-3.0).is_empty:
        return {}
    spot = parcel.buffer(-3.0).point_on_surface()
    structure = shapely.box(spot.x - STRUCTURE_M / 2, spot.y - STRUCTURE_M / 2, spot.x + STRUCTURE_M / 2,
                            spot.y + STRUCTURE_M / 2).intersection(parcel.buffer(-1.0))
    n = int(BOX_M)
    x0, y0 = np.floor(spot.x - BOX_M / 2), np.ceil(spot.y + BOX_M / 2)
    transform = Affine(1.0, 0.0, x0, 0.0, -1.0, y0)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    delete_layers_under(conn, out_dir)
    layers = {}
    for name, on, shapes in (("first", first_on, []), ("latest", latest_on, [(structure, STRUCTURE_HEIGHT_M)])):
        heights = rasterize(shapes, out_shape=(n, n), transform=transform, fill=0.0, dtype="float32") if shapes \
            else np.zeros((n, n), dtype="float32")
        heights = np.maximum(heights + rng.normal(0, 0.05, heights.shape).astype("float32"), 0.0)
        plain = out_dir / f"_plain_{name}.tif"
        with rasterio.open(plain, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32", crs=crs,
                           transform=transform, nodata=-9999.0) as dst:
            dst.write(heights, 1)
        path = out_dir / f"cleared_hag_{name}_{on.isoformat()}.tif"
        path.unlink(missing_ok=True)
        to_cog(plain, path, kind="hag")
        plain.unlink()
        layers[name] = register_layer(conn, path, acquired_on=on, kind="hag", name=f"demo-cleared-{name}",
                                      attribution="合成演示数据（非真实影像）")
    manifest = {"synthetic": True, "as_of": today.isoformat(), "planted": [row.code],
                "layers": {k: {"id": v.id, "acquired_on": v.acquired_on.isoformat()} for k, v in layers.items()}}
    conn.execute(text("INSERT INTO dataset_notes (key, value) VALUES (:k, CAST(:v AS jsonb)) "
                      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"),
                 {"k": REOCCUPATION_NOTE_KEY, "v": json.dumps(manifest, ensure_ascii=False)})
    return manifest
