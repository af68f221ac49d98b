"""Checking geometries that callers send (GeoJSON) and bringing them into the working CRS.

Every rejection says what is wrong and where, so that a planner who pasted a
line from another tool can fix it: an unknown CRS, latitude and longitude
swapped, a Gauss-Krüger easting without or with an unexpected zone prefix,
a self-intersecting polygon with the place of the self-intersection.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy import Connection, text

from gis.domain.limits import CORRIDOR_WIDTH_M
from gis.platform.errors import InvalidGeometry, InvalidInput, PayloadTooLarge

GEOGRAPHIC = {4326, 4490}
# CGCS2000 Gauss-Krüger: 3-degree zones with the zone prefix (4513-4533) and without (4534-4554).
GAUSS_KRUGER = set(range(4513, 4555))
LINE_TYPES = {"LineString", "MultiLineString"}
AREA_TYPES = {"Polygon", "MultiPolygon"}
MAX_VERTICES = 200_000
MAX_WIDTH_M = float(CORRIDOR_WIDTH_M.le)  # the bounds of projects.corridor_width_m (gis.domain.schema)
MIN_WIDTH_M = float(CORRIDOR_WIDTH_M.ge)
_CRS_PATTERNS = (
    re.compile(r"^(?:EPSG:)?(\d{4,5})$", re.I),
    re.compile(r"^urn:ogc:def:crs:EPSG::(\d{4,5})$", re.I),
    re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d{4,5})$", re.I),
)
_REASON_POINT = re.compile(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)[^\]]*\]")
_CRS84 = {"urn:ogc:def:crs:OGC:1.3:CRS84", "http://www.opengis.net/def/crs/OGC/1.3/CRS84", "OGC:CRS84", "CRS84"}


@dataclass(frozen=True)
class QueryGeometry:
    """A caller's line or polygon in the working CRS, with the footprint it stands for."""

    geometry: BaseGeometry
    footprint: BaseGeometry
    is_line: bool
    width_m: float | None
    source_srid: int


def parse_crs(value: object, working_srid: int, where: str = "crs") -> int:
    """An EPSG code from 4326 (default), 4490, a CGCS2000 Gauss-Krüger zone or the working CRS."""
    if value is None:
        return 4326
    text = str(value).strip()
    if text in _CRS84:
        return 4326
    code = next((int(m.group(1)) for p in _CRS_PATTERNS if (m := p.match(text))), None)
    if code is None:
        raise InvalidInput(f"unrecognised CRS {text!r}: give an EPSG code such as 4326, 4490 or 4549", where)
    if code not in GEOGRAPHIC | GAUSS_KRUGER | {working_srid}:
        raise InvalidInput(
            f"EPSG:{code} is not accepted: use 4326 (WGS 84), 4490 (CGCS2000), a CGCS2000 Gauss-Krüger zone "
            f"(4513-4554) or the working CRS EPSG:{working_srid}",
            where,
        )
    return code


@lru_cache(maxsize=64)
def transformer(source: int, target: int) -> Transformer:
    """A pyproj transformer between two EPSG codes, always x/y (lon/lat) order; cached, they are slow to make."""
    return Transformer.from_crs(source, target, always_xy=True)


def _geometry_dict(obj: Any, where: str) -> tuple[dict, str]:
    if not isinstance(obj, dict):
        raise InvalidInput("expected a GeoJSON geometry or Feature object", where)
    if obj.get("type") == "Feature":
        return _geometry_dict(obj.get("geometry"), f"{where}.geometry")
    if obj.get("type") == "FeatureCollection":
        feats = obj.get("features") or []
        if len(feats) != 1:
            raise InvalidInput("a FeatureCollection must hold exactly one feature here", f"{where}.features")
        return _geometry_dict(feats[0], f"{where}.features[0]")
    return obj, where


def _check_coordinates(geom: BaseGeometry, srid: int, where: str) -> None:
    coords = shapely.get_coordinates(geom)
    if len(coords) > MAX_VERTICES:
        raise PayloadTooLarge(f"the geometry has {len(coords)} vertices; at most {MAX_VERTICES} are accepted")
    if not all(math.isfinite(v) for v in coords.ravel()):
        raise InvalidInput("coordinates must be finite numbers", f"{where}.coordinates")
    if srid in GEOGRAPHIC:
        bad = next(((i, x, y) for i, (x, y) in enumerate(coords) if not (-180 <= x <= 180 and -90 <= y <= 90)), None)
        if bad:
            i, x, y = bad
            if (np.abs(coords[:, 0]) <= 90).all() and (np.abs(coords[:, 1]) <= 180).all():
                raise InvalidInput(f"coordinate {i} ({x}, {y}) has a latitude beyond ±90: latitude and longitude "
                                   "look swapped; GeoJSON wants [longitude, latitude]", f"{where}.coordinates")
            raise InvalidInput(
                f"coordinate {i} ({x}, {y}) is out of range for EPSG:{srid}: longitude must be within ±180 and "
                "latitude within ±90 (are these projected metres? then declare their CRS)",
                f"{where}.coordinates",
            )


def _to_working(geom: BaseGeometry, srid: int, working_srid: int) -> BaseGeometry:
    if srid == working_srid:
        return geom
    t = transformer(srid, working_srid)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def _check_location(geom: BaseGeometry, src: BaseGeometry, srid: int, working_srid: int,
                    extent: BaseGeometry | None, where: str) -> None:
    """Reject geometries far from the parcels, naming the likely mistake."""
    if extent is None or geom.intersects(extent):
        return
    if srid in GEOGRAPHIC:
        swapped = _to_working(shapely.transform(src, lambda xy: xy[:, ::-1]), srid, working_srid)
        if swapped.intersects(extent):
            raise InvalidInput("the geometry lies far from the parcels but would fit with latitude and longitude "
                               "swapped: GeoJSON wants [longitude, latitude]", f"{where}.coordinates")
    if srid in GAUSS_KRUGER:
        x = shapely.get_coordinates(src)[:, 0]
        prefixed = srid <= 4533
        if prefixed != bool((x > 1_000_000).all()):
            hint = ("has no zone prefix: declare the zone CRS without prefix (4534-4554)" if prefixed
                    else "carries a zone prefix: declare the zone CRS with prefix (4513-4533)")
            raise InvalidInput(f"the easting {hint}", f"{where}.coordinates")
        raise InvalidInput(f"the geometry lies outside the area covered by parcels: is EPSG:{srid} the right zone?",
                           f"{where}.coordinates")
    raise InvalidInput("the geometry lies outside the area covered by parcels", f"{where}.coordinates")


def check_valid(geom: BaseGeometry, where: str) -> None:
    """InvalidGeometry naming GEOS's reason and, when it gives one, the place (``point``, in ``geom``'s CRS)."""
    if geom.is_valid:
        return
    reason = explain_validity(geom)
    found = _REASON_POINT.search(reason)
    point = (float(found.group(1)), float(found.group(2))) if found else None
    raise InvalidGeometry(f"invalid geometry: {reason}", where, point)


def _check_width(width: float | None, is_line: bool, where: str) -> float | None:
    if not is_line:
        if width not in (None, 0):
            raise InvalidInput("a corridor width applies to lines only; a polygon is its own footprint", where)
        return None
    if width is None:
        raise InvalidInput("a line needs a corridor width in metres", where)
    if isinstance(width, bool) or not isinstance(width, int | float):
        raise InvalidInput("the corridor width must be a number of metres", where)
    if not math.isfinite(width) or width < MIN_WIDTH_M:
        raise InvalidInput(f"the corridor width must be a positive number of metres, at least {MIN_WIDTH_M:g} m; "
                           f"got {width}", where)
    if width > MAX_WIDTH_M:
        raise InvalidInput(f"a corridor width of {width} m is implausible (at most {MAX_WIDTH_M:g} m)", where)
    return float(width)


def corridor(line: BaseGeometry, width_m: float) -> BaseGeometry:
    """The full width, half on each side of the centre line: flat at its free ends, round at every joint.

    The one corridor rule, for stored projects, revisions and ad hoc overlaps alike. A centre line comes
    in pieces (OSM ways, survey segments, CAD polylines); buffering each piece with flat ends would leave
    a wedge-shaped notch at every joint and branch, so the result would depend on how the line was cut.
    The pieces are noded and merged first; where parts still meet (branch points, closed loops) a disc
    of the half-width fills the joint, exactly as a round join does inside one line. Only the ends that
    meet nothing are flat.
    """
    radius = width_m / 2.0
    merged = shapely.line_merge(shapely.union_all(line))
    parts = shapely.get_parts(merged)
    ends = np.concatenate([shapely.get_coordinates(shapely.get_point(parts, 0)),
                           shapely.get_coordinates(shapely.get_point(parts, -1))])
    points, counts = np.unique(ends, axis=0, return_counts=True)
    joints = shapely.points(points[counts >= 2])
    body = shapely.buffer(merged, radius, cap_style="flat", join_style="round")
    return shapely.union_all([body, *shapely.buffer(joints, radius)]) if len(joints) else body


def _numbers_only(coordinates: Any) -> bool:
    """Nested lists holding only numbers: shapely would read ``"118.9"`` and ``true`` as coordinates."""
    stack = [coordinates]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, bool) or not isinstance(item, int | float):
            return False
    return True


def parse_geometry(
    obj: Any,
    *,
    crs: object = None,
    width_m: float | None = None,
    working_srid: int,
    extent: BaseGeometry | None = None,
    where: str = "geometry",
    width_where: str = "width_m",
    needs_footprint: bool = True,
) -> QueryGeometry:
    """Validate a GeoJSON line or polygon and return it with its footprint in the working CRS.

    With ``needs_footprint`` False (distance bands measure from the line itself) no width is asked for.
    """
    gj, where = _geometry_dict(obj, where)
    gtype = gj.get("type")
    if gtype not in LINE_TYPES | AREA_TYPES:
        raise InvalidInput(f"geometry type {gtype!r} is not accepted: give a LineString, MultiLineString, "
                           "Polygon or MultiPolygon", f"{where}.type")
    if gj.get("crs") is not None and crs is None:
        crs = (gj["crs"].get("properties") or {}).get("name") if isinstance(gj["crs"], dict) else gj["crs"]
    srid = parse_crs(crs, working_srid)
    if gj.get("coordinates") is not None and not _numbers_only(gj["coordinates"]):
        raise InvalidInput("coordinates must be JSON numbers (not text, not true/false)", f"{where}.coordinates")
    try:
        src = shape(gj)
    except Exception as exc:  # shapely raises several types for malformed coordinate arrays
        raise InvalidInput(f"malformed {gtype} coordinates: {exc}", f"{where}.coordinates") from None
    if src.is_empty:
        raise InvalidInput("the geometry is empty", f"{where}.coordinates")
    _check_coordinates(src, srid, where)
    check_valid(src, f"{where}.coordinates")
    is_line = gtype in LINE_TYPES
    width = _check_width(width_m, is_line, width_where) if needs_footprint else None
    try:
        geom = _to_working(src, srid, working_srid)
    except CRSError as exc:
        raise InvalidInput(f"cannot transform from EPSG:{srid}: {exc}", "crs") from None
    _check_location(geom, src, srid, working_srid, extent, where)
    footprint = corridor(geom, width) if is_line and width else geom
    return QueryGeometry(geometry=geom, footprint=footprint, is_line=is_line, width_m=width, source_srid=srid)


def alignment_of(geom: BaseGeometry, width_m: float | None, *, source_srid: int,
                 width_where: str = "width_m") -> QueryGeometry:
    """A line with its corridor width, or a polygon, already in the working CRS (read from a file)."""
    is_line = geom.geom_type in LINE_TYPES
    if not is_line and geom.geom_type not in AREA_TYPES:
        raise InvalidInput(f"a {geom.geom_type} is neither a line nor a polygon", "geometry")
    if geom.is_empty:
        raise InvalidInput("the geometry is empty", "geometry")
    check_valid(geom, "geometry")
    width = _check_width(width_m, is_line, width_where)
    footprint = corridor(geom, width) if is_line else geom
    return QueryGeometry(geometry=geom, footprint=footprint, is_line=is_line, width_m=width, source_srid=source_srid)


_EXTENT_SQL = """
SELECT ST_AsBinary(ST_Expand(ST_Envelope(coalesce(
    (SELECT ST_Extent(geom) FROM districts)::geometry, (SELECT ST_Extent(geom) FROM parcels)::geometry)), :margin))
"""


def city_extent(conn: Connection, margin_m: float = 20_000) -> BaseGeometry | None:
    """The area with districts or parcels, widened by ``margin_m``: query geometries far outside it are mistakes."""
    wkb = conn.execute(text(_EXTENT_SQL), {"margin": margin_m}).scalar_one()
    return shapely.from_wkb(bytes(wkb)) if wkb is not None else None
