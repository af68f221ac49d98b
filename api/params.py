"""Request parameters and body fields with their bounds, shared by the routes (``api.deps`` re-exports them).

Numbers and days get a range the OpenAPI document states, so a number PostgreSQL cannot hold (an offset of
2⁶³, a project id of 2³¹) or a day no record can have (0001-01-01, 9999-12-31) is a 422 before any query runs.
A body field of a stored column takes its bounds from the column's declaration (``limited``), the one the
importer and the database's CHECK constraints read too. Numbers in bodies are strict (``true`` and ``"12"`` are
not numbers) and text never holds NUL, which PostgreSQL refuses.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import AllowInfNan, BeforeValidator, Field, Strict

from gis.domain.limits import (
    CORRIDOR_WIDTH_M,
    EARLIEST_DAY,
    LATEST_DAY,
    MAX_AREA_THRESHOLD_M2,
    MAX_INT32,
    MAX_INT64,
    Limit,
    limit_of,
)
from gis.domain.schema import metadata
from gis.maps.tiles import MAX_ZOOM

NO_NUL = r"^[^\x00]*$"
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day(value: Any) -> Any:
    """Only YYYY-MM-DD: pydantic would read a number as seconds since 1970 (``as_of=0`` is no day)."""
    if isinstance(value, str) and not _ISO_DAY.match(value):
        raise ValueError("a day as YYYY-MM-DD")
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("a day as YYYY-MM-DD, not a number")  # noqa: TRY004 - pydantic reports ValueError
    return value


IntId = Annotated[int, Ge(1), Le(MAX_INT32)]  # an integer key (projects, districts, layers, revisions)
BigId = Annotated[int, Ge(1), Le(MAX_INT64)]  # a bigint key (parcels)
Offset = Annotated[int, Ge(0), Le(MAX_INT32)]
Day = Annotated[date, BeforeValidator(_iso_day), Ge(EARLIEST_DAY), Le(LATEST_DAY)]
AreaM2 = Annotated[float, Ge(0), Le(MAX_AREA_THRESHOLD_M2), AllowInfNan(False)]  # an area threshold (filters)
Share = Annotated[float, Ge(0), Le(1), AllowInfNan(False)]
Text = Annotated[str, Field(pattern=NO_NUL)]  # any text a request sends on to the database
TileZoom = Annotated[int, Ge(0), Le(MAX_ZOOM)]
TileIndex = Annotated[int, Ge(0), Le(2**MAX_ZOOM - 1)]
# The same ranges stated only, where gis.maps.tiles checks them itself (422 naming z; 404 for a tile off the grid).
TILE_ZOOM_RANGE = {"minimum": 0, "maximum": MAX_ZOOM}
TILE_INDEX_RANGE = {"minimum": 0, "maximum": 2**MAX_ZOOM - 1}


def limited(table: str, column: str, default: Any = None, **field: Any) -> Any:
    """A body field bounded as ``table.column`` is declared in ``gis.domain.schema`` (its description says the
    range)."""
    limit: Limit = limit_of(metadata(4326), table, column) or Limit()
    bounds: dict[str, Any] = {k: v for k, v in (("ge", limit.ge), ("gt", limit.gt), ("le", limit.le),
                                                ("max_length", limit.max_length)) if v is not None}
    if limit.max_length is not None:
        bounds["pattern"] = NO_NUL
    elif isinstance(limit.ge, date) or isinstance(limit.le, date):
        pass
    elif isinstance(limit.le, Decimal) or isinstance(limit.gt, Decimal):
        bounds["strict"] = False  # amounts arrive as JSON numbers and become Decimal
    elif bounds:
        bounds["strict"] = True
        bounds["allow_inf_nan"] = False
    said = field.pop("description", None)
    described = f"{said} ({limit.describe()})" if said else limit.describe().capitalize()
    return Field(default, description=described, **(bounds | field))


StrictNumber = Annotated[float, Strict(), AllowInfNan(False)]  # a JSON number: not true, not "12", not NaN


def corridor_width(**field: Any) -> Any:
    """The corridor width of a line (``projects.corridor_width_m``): its range stated in the OpenAPI document and
    checked by ``gis.domain.geometry``, whose refusal says what and where (``width_m``, ``candidates[1].width_m``)."""
    return Field(None, description=f"Corridor width of a centre line, full width in metres "
                                   f"({CORRIDOR_WIDTH_M.describe()}).",
                 json_schema_extra={"minimum": CORRIDOR_WIDTH_M.ge, "maximum": CORRIDOR_WIDTH_M.le}, **field)
