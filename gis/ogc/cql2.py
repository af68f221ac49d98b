"""CQL2 filters (OGC API - Features Part 3) as SQL with bound parameters.

cql2 (cql2-rs, >= 0.6: older versions cut ``'O''Brien'`` to ``'O'``) parses cql2-text and cql2-json
into the canonical cql2-json tree; this module walks that tree. Property names are looked up in the
collection's queryables and replaced by the SQL expression kept there, so a name never reaches the
SQL text; every literal is a bound parameter cast to the queryable's type; geometry literals are
read in the filter CRS and transformed to the column's CRS (the query geometry, never the column).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import cql2
import shapely
import shapely.errors
import shapely.geometry
import shapely.validation

from gis.platform.errors import InvalidInput

COMPARISONS = {"=": "=", "<>": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
SPATIAL = {
    "s_intersects": "ST_Intersects", "s_disjoint": "ST_Disjoint", "s_equals": "ST_Equals",
    "s_touches": "ST_Touches", "s_within": "ST_Within", "s_overlaps": "ST_Overlaps",
    "s_crosses": "ST_Crosses", "s_contains": "ST_Contains",
}
SQL_TYPES = {"string": "text", "integer": "bigint", "number": "double precision", "boolean": "boolean",
             "date": "date", "timestamp": "timestamptz", "srid": "integer"}
MAX_NODES = 2000
MAX_DEPTH = 64  # cql2-rs overflows its stack (and kills the process) on a few thousand nested parentheses


class BadRequest(InvalidInput):
    """A malformed request (OGC APIs answer 400, not 422)."""

    status_code = 400


@dataclass(frozen=True)
class Queryable:
    """A property a filter may name: its SQL expression (from constants) and its type."""

    name: str
    sql: str
    type: str  # string | integer | number | boolean | date | timestamp | geometry
    title: str = ""
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class GeometryInput:
    """How geometry literals are read: their SRID, whether their axis order is north first, the area
    (x0, y0, x1, y1 in that SRID, lon/lat order) outside which they are cut, and the column's SRID."""

    srid: int
    lat_first: bool
    target_srid: int
    clip: tuple[float, float, float, float] | None = None


@dataclass
class SqlFilter:
    """A WHERE fragment and its parameters (names prefixed so several filters can be combined)."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


def parse(filter_text: str, lang: str | None) -> dict | bool:
    """cql2-text or cql2-json → the canonical cql2-json tree; 400 for a syntax error."""
    lang = (lang or "cql2-text").lower()
    if lang == "cql2-text" and _parenthesis_depth(filter_text) > MAX_DEPTH:
        raise BadRequest(f"the filter nests more than {MAX_DEPTH} levels of parentheses", "filter")
    try:
        if lang == "cql2-text":
            expr = cql2.parse_text(filter_text)
        elif lang == "cql2-json":
            expr = cql2.parse_json(filter_text)
        else:
            raise BadRequest("filter-lang must be cql2-text or cql2-json", "filter-lang")
        return expr.to_json()
    except BadRequest:
        raise
    except Exception as exc:  # noqa: BLE001 - cql2 raises ParseError, ValueError or a bare Exception
        first = str(exc).strip().splitlines()
        raise BadRequest(f"the filter is not valid {lang}: {' '.join(s.strip() for s in first)[:400]}",
                         "filter") from exc


def _parenthesis_depth(filter_text: str) -> int:
    """The deepest nesting of parentheses outside quoted strings and identifiers."""
    depth = deepest = 0
    quote = None
    for ch in filter_text:
        if quote:
            quote = None if ch == quote else quote  # a doubled quote closes and reopens: same result
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def to_sql(tree: dict | bool, queryables: Mapping[str, Queryable], geometry: GeometryInput,
           prefix: str = "q") -> SqlFilter:
    """The SQL for a parsed filter; a property that is not queryable → 422, anything unsupported → 400."""
    return _Translator(queryables, geometry, prefix).run(tree)


class _Translator:
    def __init__(self, queryables: Mapping[str, Queryable], geometry: GeometryInput, prefix: str) -> None:
        self.queryables = queryables
        self.geometry = geometry
        self.prefix = prefix
        self.params: dict[str, Any] = {}
        self.nodes = 0
        self.depth = 0

    def run(self, tree: Any) -> SqlFilter:
        return SqlFilter(self.predicate(tree), self.params)

    # -- parameters --------------------------------------------------------------------------

    def bind(self, value: Any, sql_type: str) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f"CAST(:{name} AS {SQL_TYPES[sql_type]})"

    # -- predicates ----------------------------------------------------------------------------

    def predicate(self, node: Any) -> str:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise BadRequest(f"the filter is too large (more than {MAX_NODES} nodes)", "filter")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise BadRequest(f"the filter nests more than {MAX_DEPTH} levels", "filter")
            return self._predicate(node)
        finally:
            self.depth -= 1

    def _predicate(self, node: Any) -> str:
        if isinstance(node, bool):
            return "TRUE" if node else "FALSE"
        if isinstance(node, dict) and "property" in node:  # a boolean property used as a predicate
            q = self.queryable(node)
            if q.type != "boolean":
                raise BadRequest(f"{q.name!r} is not a boolean and cannot stand alone as a condition", "filter")
            return q.sql
        if not isinstance(node, dict) or "op" not in node:
            raise BadRequest("expected a condition in the filter", "filter")
        op = str(node["op"]).lower()
        args = node.get("args")
        if not isinstance(args, list):
            raise BadRequest(f"{op}: args must be a list", "filter")
        handler = self._PREDICATES.get(op)
        if handler is not None:
            return handler(self, args)
        if op in COMPARISONS:
            return self.comparison(COMPARISONS[op], args)
        if op in SPATIAL:
            return self.spatial(SPATIAL[op], args)
        raise BadRequest(f"the operator {op!r} is not supported here; see /ogc/conformance for what is", "filter")

    def junction(self, joiner: str, args: list) -> str:
        if len(args) < 2:
            raise BadRequest(f"{joiner.lower()} needs at least two conditions", "filter")
        return "(" + f" {joiner} ".join(self.predicate(a) for a in args) + ")"

    def op_and(self, args: list) -> str:
        return self.junction("AND", args)

    def op_or(self, args: list) -> str:
        return self.junction("OR", args)

    def op_not(self, args: list) -> str:
        self.arity("not", args, 1)
        return f"(NOT {self.predicate(args[0])})"

    def op_isnull(self, args: list) -> str:
        self.arity("isNull", args, 1)
        sql, _ = self.scalar(args[0], None)
        return f"({sql} IS NULL)"

    def op_like(self, args: list) -> str:
        self.arity("like", args, 2)
        lhs, kind = self.scalar(args[0], None)
        if kind not in ("string", None):
            raise BadRequest("like compares text only", "filter")
        rhs, _ = self.scalar(args[1], "string")
        return f"({lhs} LIKE {rhs})"  # CQL2 wildcards are SQL's: % and _, escaped with a backslash

    def op_between(self, args: list) -> str:
        self.arity("between", args, 3)
        lhs, kind = self.scalar(args[0], None)
        low, _ = self.scalar(args[1], kind)
        high, _ = self.scalar(args[2], kind)
        return f"({lhs} BETWEEN {low} AND {high})"

    def op_in(self, args: list) -> str:
        self.arity("in", args, 2)
        lhs, kind = self.scalar(args[0], None)
        if not isinstance(args[1], list) or not args[1]:
            raise BadRequest("in needs a non-empty list of values", "filter")
        values = [self.scalar(v, kind)[0] for v in args[1]]
        return f"({lhs} IN ({', '.join(values)}))"

    _PREDICATES: dict[str, Callable[[_Translator, list], str]] = {
        "and": op_and, "or": op_or, "not": op_not, "isnull": op_isnull, "like": op_like,
        "between": op_between, "in": op_in,
    }

    def comparison(self, sql_op: str, args: list) -> str:
        self.arity(sql_op, args, 2)
        # The side naming a property decides the type the other side is read as.
        left_kind = self.kind_of(args[0])
        right_kind = self.kind_of(args[1])
        lhs, kind = self.scalar(args[0], right_kind)
        rhs, _ = self.scalar(args[1], left_kind or kind)
        return f"({lhs} {sql_op} {rhs})"

    def spatial(self, function: str, args: list) -> str:
        self.arity(function, args, 2)
        return f"{function}({self.geometry_arg(args[0])}, {self.geometry_arg(args[1])})"

    @staticmethod
    def arity(op: str, args: list, n: int) -> None:
        if len(args) != n:
            raise BadRequest(f"{op} takes {n} argument{'s' if n > 1 else ''}", "filter")

    # -- values ----------------------------------------------------------------------------------

    def queryable(self, node: dict) -> Queryable:
        name = node.get("property")
        q = self.queryables.get(name) if isinstance(name, str) else None
        if q is None:
            allowed = ", ".join(n for n, x in self.queryables.items() if x.type != "geometry")
            raise InvalidInput(f"{name!r} is not a queryable property of this collection; queryables: {allowed}",
                               "filter")
        return q

    def kind_of(self, node: Any) -> str | None:
        if isinstance(node, dict) and "property" in node:
            return self.queryable(node).type
        if isinstance(node, dict) and str(node.get("op", "")).lower() == "casei":
            return "string"
        return None

    def scalar(self, node: Any, kind: str | None) -> tuple[str, str | None]:
        """SQL for a property, a function of one, or a literal (read as ``kind`` when known)."""
        if isinstance(node, dict) and "property" in node:
            q = self.queryable(node)
            if q.type == "geometry":
                raise BadRequest(f"{q.name!r} is a geometry: compare it with a spatial operator (S_INTERSECTS...)",
                                 "filter")
            return q.sql, q.type
        if isinstance(node, dict) and str(node.get("op", "")).lower() == "casei":
            args = node.get("args")
            if not isinstance(args, list) or len(args) != 1:
                raise BadRequest("casei takes one argument", "filter")
            inner, _ = self.scalar(args[0], "string")
            return f"lower({inner})", "string"
        if isinstance(node, dict) and "op" in node:
            raise BadRequest(f"the function {node['op']!r} is not supported here", "filter")
        if isinstance(node, dict) and ("date" in node or "timestamp" in node):
            return self.temporal_literal(node, kind)
        if isinstance(node, dict) or isinstance(node, list):
            raise BadRequest("expected a property or a value in the filter", "filter")
        if node is None:
            return "NULL", kind
        return self.literal(node, kind)

    def literal(self, value: Any, kind: str | None) -> tuple[str, str]:
        kind = kind or _kind_of_value(value)
        try:
            coerced = _coerce(value, kind)
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"{value!r} is not a valid {kind} value", "filter") from exc
        sql_kind = "number" if kind == "integer" and isinstance(coerced, float) else kind
        return self.bind(coerced, sql_kind), kind

    def temporal_literal(self, node: dict, kind: str | None) -> tuple[str, str]:
        raw = node.get("date", node.get("timestamp"))
        target = "date" if "date" in node else "timestamp"
        try:
            value = date.fromisoformat(raw) if target == "date" else datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except (TypeError, ValueError, AttributeError) as exc:
            raise BadRequest(f"{raw!r} is not a valid {target}", "filter") from exc
        if kind not in (None, "date", "timestamp"):
            raise BadRequest(f"a {target} cannot be compared with a {kind} property", "filter")
        return self.bind(value, target), target

    def geometry_arg(self, node: Any) -> str:
        if isinstance(node, dict) and "property" in node:
            q = self.queryable(node)
            if q.type != "geometry":
                raise BadRequest(f"{q.name!r} is not a geometry", "filter")
            return q.sql
        if isinstance(node, dict) and "bbox" in node:
            box = node["bbox"]
            if not isinstance(box, list) or len(box) not in (4, 6):
                raise BadRequest("a bbox has 4 (or 6) numbers", "filter")
            x0, y0, x1, y1 = (box[0], box[1], box[3], box[4]) if len(box) == 6 else box
            ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
            return self.geometry_literal({"type": "Polygon", "coordinates": [ring]})  # valid by construction
        if isinstance(node, dict) and "type" in node and ("coordinates" in node or "geometries" in node):
            problem = _geometry_problem(node)
            if problem:
                raise BadRequest(f"the filter's geometry is invalid: {problem}", "filter")
            return self.geometry_literal(node)
        raise BadRequest("a spatial operator takes a geometry property and a geometry (WKT, GeoJSON or BBOX)",
                         "filter")

    def geometry_literal(self, geojson: dict) -> str:
        if not _finite_coordinates(geojson):
            raise BadRequest("geometry coordinates must be finite numbers", "filter")
        g = self.geometry
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = json.dumps(geojson)
        sql = f"ST_MakeValid(ST_GeomFromGeoJSON(CAST(:{name} AS text)))"
        if g.lat_first:
            sql = f"ST_FlipCoordinates({sql})"
        srid = self.bind(g.srid, "srid")
        sql = f"ST_SetSRID({sql}, {srid})"
        if g.clip is not None:  # far outside the working CRS's area a projection returns nonsense, not an error
            x0, y0, x1, y1 = (self.bind(v, "number") for v in g.clip)
            sql = f"ST_Intersection({sql}, ST_MakeEnvelope({x0}, {y0}, {x1}, {y1}, {srid}))"
        if g.srid != g.target_srid:
            sql = f"ST_Transform({sql}, {self.bind(g.target_srid, 'srid')})"
        return sql


def _kind_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _coerce(value: Any, kind: str) -> Any:
    """A literal as the Python value of ``kind`` (cql2 hands every number over as a float)."""
    if kind == "string":
        if isinstance(value, (bool, dict, list)):
            raise TypeError(kind)
        return value if isinstance(value, str) else _number_text(value)
    if kind in ("integer", "number"):
        if isinstance(value, bool):
            raise TypeError(kind)
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(kind)
        return int(number) if kind == "integer" and number.is_integer() else number
    if kind == "boolean":
        # GDAL's OGR SQL writes a boolean field as 1/0 (`-where "holdout = 1"`), as do many desktop GIS forms.
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in _BOOLEAN_TEXT:
            return _BOOLEAN_TEXT[value.lower()]
        raise TypeError(kind)
    if kind == "date":
        return date.fromisoformat(str(value)[:10])
    if kind == "timestamp":
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    raise TypeError(kind)


_BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False}


def _number_text(value: float | int) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


_MIN_POSITIONS = {"LineString": 2, "MultiLineString": 2, "Polygon": 4, "MultiPolygon": 4}


def _geometry_problem(geojson: dict) -> str | None:
    """Why a filter's geometry (WKT or GeoJSON, as cql2 hands it over) is no geometry to filter by: a ring that
    is not closed or has fewer than 4 positions, a line of one point, a ring crossing itself; None when sound.
    Repairing it would answer a question nobody asked."""
    kind, coordinates = geojson.get("type"), geojson.get("coordinates")
    if kind == "GeometryCollection":
        return next(filter(None, (_geometry_problem(g) for g in geojson.get("geometries") or [])), None)
    if kind not in _MIN_POSITIONS or not isinstance(coordinates, list):
        parts: list = []  # points: nothing to close or count; shapely says if malformed
    elif kind == "LineString":
        parts = [coordinates]
    elif kind == "MultiPolygon":
        parts = [ring for polygon in coordinates if isinstance(polygon, list) for ring in polygon]
    else:
        parts = coordinates
    for part in parts:
        if not isinstance(part, list):
            return "malformed coordinates"
        if len(part) < _MIN_POSITIONS[kind]:
            each = "ring" if "Polygon" in kind else "line"
            return f"a {kind} needs at least {_MIN_POSITIONS[kind]} positions in each {each}"
        if "Polygon" in kind and part[0] != part[-1]:
            return "a ring must end where it starts"
    try:
        geometry = shapely.geometry.shape(geojson)
    except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
        return f"malformed coordinates ({exc})"
    return None if geometry.is_valid else shapely.validation.explain_validity(geometry)


def _finite_coordinates(node: Any) -> bool:
    if isinstance(node, dict):
        return all(_finite_coordinates(v) for k, v in node.items() if k in ("coordinates", "geometries"))
    if isinstance(node, list):
        return all(_finite_coordinates(v) for v in node)
    if isinstance(node, bool):
        return False
    return isinstance(node, (int, float)) and math.isfinite(node)


def coerce_value(raw: str, q: Queryable) -> Any:
    """A query-string value (``?stage=paid``) as the queryable's type; 400 when it does not parse."""
    try:
        return _coerce(raw, q.type)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{q.name}={raw!r} is not a valid {q.type}", q.name) from exc


def sql_type(q: Queryable) -> str:
    """The SQL type a queryable's literals are cast to."""
    return SQL_TYPES[q.type]
