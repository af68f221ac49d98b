"""Resettlement (安置) and the supply of cleared land (净地供应): what is stored, and its only writes.

The rules, each stated here once:

- **The stock** (安置房源): estates (安置小区, each in a district), their buildings, and flats with a number,
  a floor, an area (m²) and a settlement unit price (元/㎡). A flat's status is not stored: it is
  ``available`` (可选) without an active allocation, ``allocated`` (已选) with one, ``delivered`` (已交房) once
  the allocated household has its keys (``flat_status_sql``).
- **A household** (one per house parcel, 安置户) chooses money (货币补偿, ``money``) or a flat in exchange
  (产权调换, ``flat``) on its agreement day. Its old house's value (``old_value_yuan``, for the price
  difference) is given, or taken from the agreement amount already stored: the sum of the parcel's
  ``house_value`` payments. A household choosing a flat moves out on ``transition_from`` and is paid a
  monthly transitional fee (临时安置费, ``monthly_fee_yuan``) for up to ``promised_months`` (过渡期) until it
  gets its keys (交房, ``keys_on``); each month's payment is recorded once (``transition_payments``, month 1
  is the month that starts on ``transition_from``).
- **Flat selection** (选房) goes by signing order: the households of one project that chose a flat, ordered by
  agreement day, then parcel code. A household may select only when every household before it in that
  order has selected; its place is recorded with the allocation. One active allocation per flat and per
  household (partial unique indexes); a cancelled allocation keeps its row.
- **Cleared land's supply** (供地): a cleared parcel is awaiting supply until a supply is recorded: by
  transfer (出让, ``transfer``) or allocation (划拨, ``allocation``), with its day and the receiving project.
- Every write is a ``parcel_events`` row through ``gis.records.history`` (kinds ``resettlement`` and
  ``land_supply``), in the caller's transaction.

The limits are the columns' (``gis.domain.schema``), which the API, the CLI and migration 0017's CHECK constraints read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.limits import Limit, check_values, limits_of
from gis.domain.schema import metadata
from gis.platform.errors import Conflict, InvalidInput, NotFound
from gis.records.history import event, record

CHOICES = ("money", "flat")
CHOICE_LABELS_ZH = {"money": "货币补偿", "flat": "产权调换"}
SUPPLY_METHODS = ("transfer", "allocation")
SUPPLY_LABELS_ZH = {"awaiting": "待供地", "transfer": "已出让", "allocation": "已划拨"}
FLAT_STATUS_LABELS_ZH = {"available": "可选", "allocated": "已选", "delivered": "已交房"}

# Bounds, declared on the columns (gis.domain.schema): migration 0017 writes its CHECK constraints from these.
TABLES = ("resettlement_estates", "resettlement_buildings", "resettlement_flats", "resettlement_households",
          "resettlement_allocations", "transition_payments", "land_supply")
LIMITS: dict[str, dict[str, Limit]] = {table: limits_of(metadata(4326), table) for table in TABLES}

# A flat's status, from its active allocation and the household's keys, at the end of :as_of.
FLAT_STATUS_SQL = """
CASE WHEN {alloc}.id IS NULL THEN 'available'
     WHEN {household}.keys_on IS NOT NULL AND {household}.keys_on <= :as_of THEN 'delivered'
     ELSE 'allocated' END"""
# The allocation in force for a flat or a household at the end of :as_of.
ACTIVE_ALLOCATION_SQL = "a.selected_on <= :as_of AND (a.cancelled_on IS NULL OR a.cancelled_on > :as_of)"


def flat_status_sql(alloc: str = "a", household: str = "h") -> str:
    """The SQL expression of a flat's status (see the module's rules)."""
    return FLAT_STATUS_SQL.format(alloc=alloc, household=household)


def _check(table: str, values: dict[str, Any], today: date | None) -> None:
    check_values(LIMITS[table], values, today=today)


def _history(conn: Connection, parcel_id: int, actor: str, kind: str, changes: dict[str, Any]) -> None:
    record(conn, [event(parcel_id, actor, kind, changes=changes)])


# ---------------------------------------------------------------------------------------------
# The stock


def add_estate(conn: Connection, code: str, name: str, district_id: int, actor: str) -> int:
    """A resettlement estate (安置小区) in a district; its id."""
    _check("resettlement_estates", {"code": code, "name": name}, None)
    if conn.execute(text("SELECT 1 FROM districts WHERE id = :id"), {"id": district_id}).first() is None:
        raise InvalidInput(f"unknown district {district_id}", "district_id")
    if conn.execute(text("SELECT 1 FROM resettlement_estates WHERE code = :c"), {"c": code}).first():
        raise Conflict(f"an estate with code {code!r} exists", "code")
    return int(conn.execute(text(
        "INSERT INTO resettlement_estates (code, name, district_id, recorded_by) VALUES (:c, :n, :d, :a) RETURNING id"
    ), {"c": code, "n": name, "d": district_id, "a": actor}).scalar_one())


def add_building(conn: Connection, estate_id: int, name: str, floors: int) -> int:
    """A building of an estate; its id."""
    _check("resettlement_buildings", {"name": name, "floors": floors}, None)
    if conn.execute(text("SELECT 1 FROM resettlement_estates WHERE id = :id"), {"id": estate_id}).first() is None:
        raise NotFound(f"no resettlement estate {estate_id}")
    if conn.execute(text("SELECT 1 FROM resettlement_buildings WHERE estate_id = :e AND name = :n"),
                    {"e": estate_id, "n": name}).first():
        raise Conflict(f"the estate already has a building {name!r}", "name")
    return int(conn.execute(text(
        "INSERT INTO resettlement_buildings (estate_id, name, floors) VALUES (:e, :n, :f) RETURNING id"
    ), {"e": estate_id, "n": name, "f": floors}).scalar_one())


def add_flat(conn: Connection, building_id: int, number: str, floor: int, area_m2: Decimal,
             unit_price_yuan: Decimal) -> int:
    """A flat of a building, on a floor the building has; its id."""
    _check("resettlement_flats", {"number": number, "floor": floor, "area_m2": area_m2,
                                  "unit_price_yuan": unit_price_yuan}, None)
    floors = conn.execute(text("SELECT floors FROM resettlement_buildings WHERE id = :id"),
                          {"id": building_id}).scalar()
    if floors is None:
        raise NotFound(f"no resettlement building {building_id}")
    if floor > floors:
        raise InvalidInput(f"floor must be at most {floors}, the building's floors", "floor")
    if conn.execute(text("SELECT 1 FROM resettlement_flats WHERE building_id = :b AND number = :n"),
                    {"b": building_id, "n": number}).first():
        raise Conflict(f"the building already has a flat {number!r}", "number")
    return int(conn.execute(text(
        "INSERT INTO resettlement_flats (building_id, number, floor, area_m2, unit_price_yuan) "
        "VALUES (:b, :n, :f, :a, :p) RETURNING id"
    ), {"b": building_id, "n": number, "f": floor, "a": area_m2, "p": unit_price_yuan}).scalar_one())


# ---------------------------------------------------------------------------------------------
# Households


@dataclass(frozen=True)
class HouseholdIn:
    """A household's resettlement choice and terms, as the API and the CLI give them."""

    parcel_id: int
    choice: str
    agreement_on: date | None = None  # default: the parcel's contract day (signed_on)
    project_id: int | None = None
    old_value_yuan: Decimal | None = None  # default: the agreement amount (house_value payments)
    transition_from: date | None = None
    promised_months: int | None = None
    monthly_fee_yuan: Decimal | None = None
    note: str | None = None


def agreement_amount(conn: Connection, parcel_id: int) -> Decimal | None:
    """The agreement amount stored for the parcel's house: the sum of its ``house_value`` payments (None if none)."""
    return conn.execute(text(
        "SELECT sum(amount_yuan) FROM payments WHERE parcel_id = :p AND item = 'house_value'"
    ), {"p": parcel_id}).scalar()


def register_household(conn: Connection, h: HouseholdIn, actor: str, today: date) -> dict[str, Any]:
    """Record a house parcel's resettlement choice (once); the stored record."""
    if h.choice not in CHOICES:
        raise InvalidInput(f"choice must be one of {', '.join(CHOICES)}", "choice")
    parcel = conn.execute(text("SELECT id, kind, signed_on FROM parcels WHERE id = :id"), {"id": h.parcel_id}).first()
    if parcel is None:
        raise NotFound(f"no parcel {h.parcel_id}")
    if parcel.kind != "house":
        raise InvalidInput("only a house parcel has a household to resettle", "parcel_id")
    agreement_on = h.agreement_on or parcel.signed_on
    if agreement_on is None:
        raise InvalidInput("the parcel has no contract day: give agreement_on", "agreement_on")
    old_value = h.old_value_yuan if h.old_value_yuan is not None else agreement_amount(conn, h.parcel_id)
    values = {"agreement_on": agreement_on, "old_value_yuan": old_value, "transition_from": h.transition_from,
              "promised_months": h.promised_months, "monthly_fee_yuan": h.monthly_fee_yuan, "note": h.note}
    _check("resettlement_households", values, today)
    if h.choice == "money" and any(v is not None for v in (h.transition_from, h.promised_months, h.monthly_fee_yuan)):
        raise InvalidInput("a household taking money has no transition period", "choice")
    if h.choice == "flat" and (h.transition_from is None) != (h.promised_months is None):
        raise InvalidInput("a transition needs both transition_from and promised_months", "transition_from")
    if h.transition_from is not None and h.transition_from < agreement_on:
        raise InvalidInput("the transition cannot start before the agreement", "transition_from")
    if h.project_id is not None and conn.execute(
            text("SELECT 1 FROM projects WHERE id = :id"), {"id": h.project_id}).first() is None:
        raise InvalidInput(f"unknown project {h.project_id}", "project_id")
    if conn.execute(text("SELECT 1 FROM resettlement_households WHERE parcel_id = :p"), {"p": h.parcel_id}).first():
        raise Conflict("the household's choice is already recorded", "parcel_id")
    conn.execute(text(
        "INSERT INTO resettlement_households (parcel_id, project_id, choice, agreement_on, old_value_yuan, "
        "transition_from, promised_months, monthly_fee_yuan, note, recorded_by) VALUES (:parcel_id, :project_id, "
        ":choice, :agreement_on, :old_value_yuan, :transition_from, :promised_months, :monthly_fee_yuan, :note, :actor)"
    ), {**values, "parcel_id": h.parcel_id, "project_id": h.project_id, "choice": h.choice, "actor": actor})
    _history(conn, h.parcel_id, actor, "resettlement", {"household": {**values, "choice": h.choice,
                                                                       "project_id": h.project_id}})
    return get_household(conn, h.parcel_id)


def get_household(conn: Connection, parcel_id: int) -> dict[str, Any]:
    """The stored household record (NotFound when the parcel has none)."""
    row = conn.execute(text("SELECT * FROM resettlement_households WHERE parcel_id = :p"), {"p": parcel_id}).mappings()
    found = row.first()
    if found is None:
        raise NotFound(f"no resettlement household on parcel {parcel_id}")
    return dict(found)


def selection_queue(conn: Connection, project_id: int | None) -> list[dict[str, Any]]:
    """The households of one project (None: those of no project) that chose a flat, in selection order (by
    agreement day, then parcel code), each with its place and whether it has selected (an active allocation)."""
    rows = conn.execute(text("""
        SELECT h.parcel_id, pa.code, h.agreement_on,
               row_number() OVER (ORDER BY h.agreement_on, pa.code) AS place,
               EXISTS (SELECT 1 FROM resettlement_allocations a
                       WHERE a.parcel_id = h.parcel_id AND a.cancelled_on IS NULL) AS selected
        FROM resettlement_households h JOIN parcels pa ON pa.id = h.parcel_id
        WHERE h.choice = 'flat' AND h.project_id IS NOT DISTINCT FROM :project
        ORDER BY place
    """), {"project": project_id}).mappings()
    return [dict(r) for r in rows]


def select_flat(conn: Connection, parcel_id: int, flat_id: int, on: date, actor: str, today: date) -> dict[str, Any]:
    """The household selects a flat (选房) on ``on``, in its turn; the allocation with its recorded place."""
    _check("resettlement_allocations", {"selected_on": on}, today)
    household = get_household(conn, parcel_id)
    if household["choice"] != "flat":
        raise InvalidInput("the household chose money, not a flat", "parcel_id")
    if on < household["agreement_on"]:
        raise InvalidInput("a flat cannot be selected before the agreement", "selected_on")
    flat = conn.execute(text("SELECT id FROM resettlement_flats WHERE id = :id FOR UPDATE"), {"id": flat_id}).first()
    if flat is None:
        raise NotFound(f"no resettlement flat {flat_id}")
    queue = selection_queue(conn, household["project_id"])
    mine = next(q for q in queue if q["parcel_id"] == parcel_id)
    if mine["selected"]:
        raise Conflict("the household has already selected a flat", "parcel_id")
    ahead = [q for q in queue if q["place"] < mine["place"] and not q["selected"]]
    if ahead:
        raise Conflict(f"not this household's turn: place {mine['place']}; parcel {ahead[0]['code']} "
                       f"(place {ahead[0]['place']}) selects first", "parcel_id")
    if conn.execute(text("SELECT 1 FROM resettlement_allocations WHERE flat_id = :f AND cancelled_on IS NULL"),
                    {"f": flat_id}).first():
        raise Conflict(f"flat {flat_id} is already allocated", "flat_id")
    allocation_id = conn.execute(text(
        "INSERT INTO resettlement_allocations (parcel_id, flat_id, selection_order, selected_on, recorded_by) "
        "VALUES (:p, :f, :o, :on, :a) RETURNING id"
    ), {"p": parcel_id, "f": flat_id, "o": mine["place"], "on": on, "a": actor}).scalar_one()
    _history(conn, parcel_id, actor, "resettlement", {"allocation": {"flat_id": flat_id, "selection_order":
                                                                      mine["place"], "selected_on": on}})
    return {"allocation_id": int(allocation_id), "parcel_id": parcel_id, "flat_id": flat_id,
            "selection_order": mine["place"], "selected_on": on}


def hand_over_keys(conn: Connection, parcel_id: int, on: date, actor: str, today: date) -> None:
    """The household gets the keys of its allocated flat (交房) on ``on``: its transition ends."""
    _check("resettlement_households", {"keys_on": on}, today)
    household = get_household(conn, parcel_id)
    selected = conn.execute(text(
        "SELECT selected_on FROM resettlement_allocations WHERE parcel_id = :p AND cancelled_on IS NULL"
    ), {"p": parcel_id}).scalar()
    if selected is None:
        raise InvalidInput("the household has no allocated flat to hand over", "parcel_id")
    if household["keys_on"] is not None:
        raise Conflict("the keys were already handed over", "keys_on")
    if on < selected:
        raise InvalidInput("keys cannot be handed over before the flat was selected", "keys_on")
    if household["transition_from"] is not None and on < household["transition_from"]:
        raise InvalidInput("keys cannot be handed over before the transition started", "keys_on")
    conn.execute(text("UPDATE resettlement_households SET keys_on = :on WHERE parcel_id = :p"),
                 {"on": on, "p": parcel_id})
    _history(conn, parcel_id, actor, "resettlement", {"keys_on": {"from": None, "to": on}})


def record_settlement(conn: Connection, parcel_id: int, difference_yuan: Decimal, on: date, actor: str,
                      today: date) -> None:
    """The price difference of the household's flat settled (差价结算) on ``on`` for ``difference_yuan``
    (positive: paid by the household; negative: paid to it)."""
    _check("resettlement_allocations", {"settled_on": on, "difference_yuan": difference_yuan}, today)
    updated = conn.execute(text(
        "UPDATE resettlement_allocations SET settled_on = :on, difference_yuan = :d "
        "WHERE parcel_id = :p AND cancelled_on IS NULL AND settled_on IS NULL RETURNING id"
    ), {"on": on, "d": difference_yuan, "p": parcel_id}).first()
    if updated is None:
        raise InvalidInput("the household has no allocated flat with an unsettled difference", "parcel_id")
    _history(conn, parcel_id, actor, "resettlement", {"settlement": {"settled_on": on,
                                                                      "difference_yuan": difference_yuan}})


def pay_transition_month(conn: Connection, parcel_id: int, month_no: int, paid_on: date, amount_yuan: Decimal,
                         actor: str, today: date) -> None:
    """Record the transitional fee paid for month ``month_no`` of the household's transition (once per month)."""
    _check("transition_payments", {"month_no": month_no, "paid_on": paid_on, "amount_yuan": amount_yuan}, today)
    household = get_household(conn, parcel_id)
    if household["transition_from"] is None:
        raise InvalidInput("the household has no transition period", "parcel_id")
    if paid_on < household["transition_from"]:
        raise InvalidInput("a transitional fee cannot be paid before the transition starts", "paid_on")
    if conn.execute(text("SELECT 1 FROM transition_payments WHERE parcel_id = :p AND month_no = :m"),
                    {"p": parcel_id, "m": month_no}).first():
        raise Conflict(f"month {month_no} is already paid", "month_no")
    conn.execute(text(
        "INSERT INTO transition_payments (parcel_id, month_no, paid_on, amount_yuan, recorded_by) "
        "VALUES (:p, :m, :d, :y, :a)"
    ), {"p": parcel_id, "m": month_no, "d": paid_on, "y": amount_yuan, "a": actor})
    _history(conn, parcel_id, actor, "resettlement", {"transition_payment": {"month_no": month_no,
                                                                              "paid_on": paid_on,
                                                                              "amount_yuan": amount_yuan}})


# ---------------------------------------------------------------------------------------------
# Cleared land's supply


def record_supply(conn: Connection, parcel_id: int, method: str, supplied_on: date, receiving_project: str,
                  actor: str, today: date, note: str | None = None) -> None:
    """A cleared parcel supplied (供地) by transfer or allocation on ``supplied_on`` to ``receiving_project``."""
    if method not in SUPPLY_METHODS:
        raise InvalidInput(f"method must be one of {', '.join(SUPPLY_METHODS)}", "method")
    if not (receiving_project or "").strip():
        raise InvalidInput("the receiving project is required", "receiving_project")
    _check("land_supply", {"supplied_on": supplied_on, "receiving_project": receiving_project, "note": note}, today)
    parcel = conn.execute(text("SELECT stage, cleared_on FROM parcels WHERE id = :id"), {"id": parcel_id}).first()
    if parcel is None:
        raise NotFound(f"no parcel {parcel_id}")
    if parcel.stage != "cleared":
        raise InvalidInput("only cleared land (交地) can be supplied", "parcel_id")
    if parcel.cleared_on is not None and supplied_on < parcel.cleared_on:
        raise InvalidInput("land cannot be supplied before it was cleared", "supplied_on")
    if conn.execute(text("SELECT 1 FROM land_supply WHERE parcel_id = :p"), {"p": parcel_id}).first():
        raise Conflict("the parcel's supply is already recorded", "parcel_id")
    conn.execute(text(
        "INSERT INTO land_supply (parcel_id, method, supplied_on, receiving_project, note, recorded_by) "
        "VALUES (:p, :m, :d, :r, :n, :a)"
    ), {"p": parcel_id, "m": method, "d": supplied_on, "r": receiving_project, "n": note, "a": actor})
    _history(conn, parcel_id, actor, "land_supply", {"supply": {"method": method, "supplied_on": supplied_on,
                                                                 "receiving_project": receiving_project}})
