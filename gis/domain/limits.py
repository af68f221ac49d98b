"""Each field's bounds, declared once on its column in ``gis.domain.schema`` (``info["limits"]``).

The same declaration serves every gate a value passes: the API's request models (``api.params.limited``, so
the OpenAPI document states the range), the importer's row checks, the core's own checks of an edit, and the
database's CHECK constraints (``check_constraints``, added by migration 0009). A day that must have happened
(``past``) is checked against the city's today by the service; the database only keeps the fixed range.

Bounds are wide enough for any real parcel and narrow enough to refuse what is typed by mistake or sent to
break things: a floor area of 1e308 m², a payment dated 0001-01-01.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData

from gis.platform.errors import InvalidInput

EARLIEST_DAY = date(1980, 1, 1)  # no record of this service (survey, payment, standard) predates the 1980s
LATEST_DAY = date(2100, 12, 31)  # planned dates (deadlines) stay within the century
MAX_INT32 = 2**31 - 1  # PostgreSQL integer
MAX_INT64 = 2**63 - 1  # PostgreSQL bigint
MAX_YUAN = Decimal("99999999999.99")  # numeric(14, 2) holds 12 integer digits; one fewer leaves room for sums
MAX_NOTE = 2000  # characters of a note or remark
MAX_PERSON_TEXT = 100  # characters of a name, an ID number, a phone number
MAX_AREA_THRESHOLD_M2 = 1_000_000_000  # an area a filter or check asks for: no overlap exceeds a city (1,000 km²)


@dataclass(frozen=True)
class Limit:
    """A field's bounds: ``ge``/``gt``/``le`` for numbers and days, ``max_length`` for text (characters),
    ``past`` for a day that cannot be after today. Text never holds NUL (PostgreSQL refuses it)."""

    ge: float | int | Decimal | date | None = None
    gt: float | int | Decimal | None = None
    le: float | int | Decimal | date | None = None
    max_length: int | None = None
    past: bool = False

    def problem(self, value: Any, today: date | None = None) -> str | None:
        """Why ``value`` is out of bounds (without quoting it: it may be personal), or None when it is within."""
        if value is None:
            return None
        if isinstance(value, str):
            if "\x00" in value:
                return "must not contain NUL (0x00) characters"
            if self.max_length is not None and len(value) > self.max_length:
                return f"must be at most {self.max_length} characters long"
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if self.ge is not None and value < self.ge:
            return f"must be at least {_shown(self.ge)}"
        if self.gt is not None and value <= self.gt:
            return f"must be more than {_shown(self.gt)}"
        if self.le is not None and value > self.le:
            return f"must be at most {_shown(self.le)}"
        if self.past and today is not None and isinstance(value, date) and value > today:
            return f"cannot be after today ({today.isoformat()})"
        return None

    def sql(self, column: str) -> str | None:
        """The CHECK expression the database keeps for ``column`` (a trusted identifier from the schema)."""
        terms = []
        if self.max_length is not None:
            terms.append(f"char_length({column}) <= {self.max_length}")
        for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le)):
            if bound is not None:
                terms.append(f"{column} {op} {_sql_literal(bound)}")
        return " AND ".join(terms) or None

    def describe(self) -> str:
        """The bounds in words, for documentation (``0 to 1000000``, ``1980-01-01 to today``)."""
        if self.max_length is not None:
            return f"at most {self.max_length} characters"
        low = f"more than {_shown(self.gt)}" if self.gt is not None else _shown(self.ge) if self.ge is not None else ""
        high = "today" if self.past else _shown(self.le) if self.le is not None else ""
        return f"{low} to {high}".strip() if low and high else (f"from {low}" if low else f"up to {high}")


def _shown(bound: Any) -> str:
    if isinstance(bound, date):
        return bound.isoformat()
    return f"{bound:,}".replace(",", "") if isinstance(bound, int) else f"{bound:g}"


def _sql_literal(bound: Any) -> str:
    if isinstance(bound, date):
        return f"DATE '{bound.isoformat()}'"
    return repr(float(bound)) if isinstance(bound, float) else str(bound)


# Shared bounds, used by several columns and by query parameters of the same kind.
DAY = Limit(ge=EARLIEST_DAY, le=LATEST_DAY)  # a planned day: a deadline, a day a standard takes effect
PAST_DAY = Limit(ge=EARLIEST_DAY, le=LATEST_DAY, past=True)  # a day something happened
NOTE = Limit(max_length=MAX_NOTE)
PERSON_TEXT = Limit(max_length=MAX_PERSON_TEXT)
YUAN = Limit(gt=0, le=MAX_YUAN)
AREA_M2 = Limit(ge=0, le=1_000_000)  # a parcel's or payment's area: 1 km² of floor is more than any building
AREA_MU = Limit(ge=0, le=100_000)  # 66.7 km² of land in one parcel
CORRIDOR_WIDTH_M = Limit(ge=1, le=2000)  # full width of a corridor around a centre line


def limit_of(metadata: MetaData, table: str, column: str) -> Limit | None:
    """The declared bounds of ``table.column`` (None when it has none)."""
    return metadata.tables[table].columns[column].info.get("limits")


def limits_of(metadata: MetaData, table: str) -> dict[str, Limit]:
    """Column name → bounds, for the columns of ``table`` that declare them."""
    return {c.name: c.info["limits"] for c in metadata.tables[table].columns if "limits" in c.info}


def check_values(limits: Mapping[str, Limit], values: Mapping[str, Any], *, today: date | None = None) -> None:
    """Raise InvalidInput naming the first field of ``values`` outside its bounds (fields without bounds pass)."""
    for name, value in values.items():
        limit = limits.get(name)
        problem = limit.problem(value, today) if limit is not None else None
        if problem:
            raise InvalidInput(f"{name} {problem}", name)


def constraint_name(table: str, column: str) -> str:
    """The name of the CHECK constraint that keeps ``table.column`` within its bounds."""
    return f"{table}_{column}_limits"


def check_constraints(metadata: MetaData) -> Iterator[tuple[str, str, str]]:
    """(table, constraint name, CHECK expression) for every column with declared bounds."""
    for table in metadata.sorted_tables:
        for column in table.columns:
            limit = column.info.get("limits")
            expression = limit.sql(column.name) if limit is not None else None
            if expression:
                yield table.name, constraint_name(table.name, column.name), expression
