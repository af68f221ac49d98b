"""Findings computed outside SQL (from rasters, say) handed to ``gis.checks``' findings query as rows.

The findings query joins each finding to its parcel's header (code, kind, district, stage as of the day, owner);
a check that finds its parcels in Python gives them as columns of bound arrays, unnested into a row set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def rows_sql(columns: Sequence[tuple[str, str]]) -> str:
    """``SELECT * FROM unnest(...) AS f(...)`` over bound arrays named after ``columns`` ((name, SQL type))."""
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns)
    return f"SELECT * FROM unnest({arrays}) AS f({', '.join(name for name, _ in columns)})"


def rows_params(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """The bound arrays of ``rows_sql``: one list per column, in ``rows``' order."""
    return {name: [row[i] for row in rows] for i, (name, _) in enumerate(columns)}
