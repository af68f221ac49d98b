"""The layers GIS clients read over OGC API - Features: collections, their items, CRSs and filters.

Collections: ``parcels``, ``projects`` (footprints), ``districts`` and one ``blockers-<project code>``
per project (the parcels still blocking it, with the default tolerance). Each collection is a FROM
clause, an id, a geometry and a list of fields, all SQL constants; what a request adds (bbox,
equality filters, a CQL2 filter, paging) is bound. One statement per page (LIMIT + 1 rows tell
whether there is a next page), plus a count only when the caller wants ``numberMatched``.

CRSs (Part 2): CRS84 (lon/lat), EPSG:4326 and 4490 (lat/lon) and the working CRS (EPSG:4549:
northing/easting). Coordinates are in each CRS's own axis order, except CRS84's. Query geometries
(bbox, filter literals) are transformed to the working CRS, never the column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import orjson
from pyproj import CRS as ProjCRS
from sqlalchemy import Connection, text
from sqlalchemy.exc import DataError, InternalError

from gis.analysis.blockers import blocker_from_sql
from gis.domain.privacy import mask_record
from gis.domain.tolerance import Tolerance
from gis.domain.workflow import ALL_STAGES
from gis.ogc.cql2 import BadRequest, GeometryInput, Queryable, SqlFilter, coerce_value, sql_type
from gis.platform.config import Settings
from gis.platform.errors import NotFound

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
GEOGRAPHIC_CRS = (4326, 4490)
BLOCKERS_PREFIX = "blockers-"
_EPSG_FORMS = (
    re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d{4,6})$", re.I),
    re.compile(r"^\[?EPSG:(\d{4,6})\]?$", re.I),
    re.compile(r"^urn:ogc:def:crs:EPSG:[\d.]*:(\d{4,6})$", re.I),
)
_CRS84_FORMS = {CRS84.lower(), "https://www.opengis.net/def/crs/ogc/1.3/crs84", "[ogc:crs84]", "ogc:crs84", "crs84",
                "urn:ogc:def:crs:ogc:1.3:crs84"}


# ---------------------------------------------------------------------------------------------
# CRSs


@dataclass(frozen=True)
class Crs:
    uri: str
    srid: int  # the PostGIS SRID (CRS84 is 4326 with lon/lat order)
    lat_first: bool  # the CRS's first axis is northing/latitude: coordinates are swapped on the wire
    geographic: bool

    @property
    def decimals(self) -> int:
        return 7 if self.geographic else 3  # about 1 cm either way


@lru_cache
def _epsg_crs(srid: int) -> Crs:
    crs = ProjCRS.from_epsg(srid)
    return Crs(EPSG_URI.format(srid), srid, crs.axis_info[0].direction in ("north", "south"), crs.is_geographic)


def crs84() -> Crs:
    """CRS84: WGS 84 in lon/lat order, the OGC API's default."""
    return Crs(CRS84, 4326, False, True)


def supported_crs(storage_srid: int) -> list[Crs]:
    """CRS84 first (the default), then EPSG:4326, 4490 and the working CRS."""
    return [crs84()] + [_epsg_crs(s) for s in dict.fromkeys((*GEOGRAPHIC_CRS, storage_srid))]


def parse_crs(value: str | None, storage_srid: int, where: str = "crs") -> Crs:
    """A CRS from its URI (or EPSG:n, [EPSG:n], urn:ogc:def:crs:EPSG::n); CRS84 when absent; 400 otherwise."""
    if value is None or not value.strip():
        return crs84()
    raw = value.strip()
    if raw.lower() in _CRS84_FORMS:
        return crs84()
    code = next((int(m.group(1)) for p in _EPSG_FORMS if (m := p.match(raw))), None)
    allowed = supported_crs(storage_srid)
    for crs in allowed:
        if code == crs.srid and crs.uri != CRS84:
            return crs
    raise BadRequest(f"{where} {raw!r} is not supported; use one of {', '.join(c.uri for c in allowed)}", where)


@lru_cache
def storage_area(storage_srid: int) -> tuple[float, float, float, float] | None:
    """Where the working CRS is meaningful, in lon/lat degrees, with a 3° margin: geographic query
    geometries are cut to it, since a projection far outside its zone returns nonsense, not an error."""
    area = ProjCRS.from_epsg(storage_srid).area_of_use
    if area is None:
        return None
    west, south, east, north = area.bounds
    return max(west - 3, -180.0), max(south - 3, -90.0), min(east + 3, 180.0), min(north + 3, 90.0)


def geometry_input(crs: Crs, storage_srid: int) -> GeometryInput:
    """How geometry literals in ``crs`` are read into the storage CRS; geographic ones are cut to where the storage
    CRS is valid."""
    return GeometryInput(crs.srid, crs.lat_first, storage_srid, storage_area(storage_srid) if crs.geographic else None)


@dataclass(frozen=True)
class BBox:
    """A bbox in PostGIS axis order (x = easting/longitude) and its SRID."""

    x0: float
    y0: float
    x1: float
    y1: float
    srid: int


def parse_bbox(value: str, crs: Crs) -> BBox:
    """``minx,miny,maxx,maxy`` (or 6 numbers with heights) in ``crs``'s own axis order; 400 when malformed."""
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError as exc:
        raise BadRequest("bbox must be 4 (or 6) comma-separated numbers", "bbox") from exc
    if len(numbers) not in (4, 6) or not all(math.isfinite(n) for n in numbers):
        raise BadRequest("bbox must be 4 (or 6) comma-separated numbers", "bbox")
    a, b, c, d = (numbers[0], numbers[1], numbers[3], numbers[4]) if len(numbers) == 6 else numbers
    if crs.lat_first:
        a, b, c, d = b, a, d, c
    if a > c or b > d:
        raise BadRequest("bbox: the lower corner must come first (boxes across the antimeridian are not "
                         "supported)", "bbox")
    if crs.geographic and not (-180 <= a <= 180 and -180 <= c <= 180 and -90 <= b <= 90 and -90 <= d <= 90):
        raise BadRequest("bbox: longitudes must lie within ±180 and latitudes within ±90 (is the axis order "
                         "right for the bbox-crs?)", "bbox")
    return BBox(a, b, c, d, crs.srid)


def parse_datetime(value: str) -> tuple[date | None, date | None]:
    """``datetime``: an instant or an interval (``a/b``, ``../b``, ``a/..``) as inclusive city dates."""
    parts = value.split("/")
    if len(parts) > 2:
        raise BadRequest("datetime is an instant or start/end", "datetime")

    def one(raw: str) -> date | None:
        raw = raw.strip()
        if raw in ("", ".."):
            return None
        try:
            return date.fromisoformat(raw) if len(raw) == 10 else datetime.fromisoformat(
                raw.replace("Z", "+00:00")).date()
        except ValueError as exc:
            raise BadRequest(f"datetime: {raw!r} is not an RFC 3339 date or date-time", "datetime") from exc

    start, end = one(parts[0]), one(parts[-1])
    if len(parts) == 1 and start is None:
        raise BadRequest("datetime: give a date, a date-time or an interval", "datetime")
    if start and end and start > end:
        raise BadRequest("datetime: the interval ends before it starts", "datetime")
    return start, end


# ---------------------------------------------------------------------------------------------
# Collections


@dataclass(frozen=True)
class Field:
    """A property: ``sql`` filters on it, ``out`` (default ``sql``) is what the feature shows."""

    name: str
    sql: str
    type: str
    title: str
    out: str | None = None
    personal: bool = False
    enum: tuple[str, ...] = ()

    def queryable(self) -> Queryable:
        return Queryable(self.name, self.sql, self.type, self.title, self.enum)


@dataclass
class Collection:
    id: str
    title: str
    description: str
    source: str  # FROM ... WHERE ...: more conditions are ANDed to it
    id_sql: str
    geom_sql: str
    geometry_type: str
    fields: tuple[Field, ...]
    params: dict[str, Any] = field(default_factory=dict)
    temporal: tuple[str, str] | None = None  # SQL of the start and end dates a datetime filter selects on
    keywords: tuple[str, ...] = ()

    def queryables(self, reveal_personal: bool) -> dict[str, Queryable]:
        """Filterable properties; personal ones only for callers who may see them (no probing by filter)."""
        out = {f.name: f.queryable() for f in self.fields if reveal_personal or not f.personal}
        out["geometry"] = Queryable("geometry", self.geom_sql, "geometry", "几何", ())
        return out

    @property
    def has_personal(self) -> bool:
        return any(f.personal for f in self.fields)


def _date_out(sql: str) -> str:
    return f"CAST({sql} AS text)"


def _rounded(sql: str, digits: int) -> str:
    return f"CAST(round(CAST({sql} AS numeric), {digits}) AS double precision)"


def _zero_where_not_applicable(sql: str, not_applicable: str) -> str:
    """The measure, 0 where it does not apply (a land parcel's floor area, a house's land area in mu, a zone's
    corridor width): what the reports' sums count there. GIS clients (QGIS 3.22, GDAL) guess a field's type
    from the first page only, and a field null throughout it becomes text; with the measures that cannot apply
    given as 0, a page of land parcels still types the floor area as a number. An unknown value stays null."""
    return f"CASE WHEN {not_applicable} THEN coalesce({sql}, 0) ELSE {sql} END"


_PARCEL_FIELDS = (
    Field("code", "pa.code", "string", "地块编号"),
    Field("kind", "pa.kind", "string", "类型", enum=("house", "land")),
    Field("district", "d.code", "string", "片区代码"),
    Field("district_name", "d.name", "string", "片区"),
    Field("stage", "pa.stage", "string", "阶段", enum=ALL_STAGES),
    Field("stage_since", "pa.stage_since", "date", "进入本阶段日期", out=_date_out("pa.stage_since")),
    Field("holdout", "pa.holdout", "boolean", "重点户"),
    Field("legacy", "pa.legacy", "boolean", "历史遗留"),
    Field("households", "pa.households", "integer", "户数"),
    Field("floor_area_m2", _zero_where_not_applicable("pa.floor_area_m2", "pa.kind = 'land'"), "number",
          "房屋面积(m²)"),
    Field("land_area_mu", _zero_where_not_applicable("pa.land_area_mu", "pa.kind = 'house'"), "number",
          "土地面积(亩)"),
    Field("area_m2", "ST_Area(pa.geom)", "number", "地块面积(m²)", out=_rounded("ST_Area(pa.geom)", 2)),
    Field("owner_name", "pa.owner_name", "string", "权利人", personal=True),
    Field("owner_id_number", "pa.owner_id_number", "string", "证件号码", personal=True),
    Field("owner_phone", "pa.owner_phone", "string", "联系电话", personal=True),
)
_BLOCKER_FIELDS = tuple(
    Field(f.name, "st." + f.name, f.type, f.title, out=f.out and f.out.replace("pa.", "st."), enum=f.enum)
    if f.name in ("stage", "stage_since") else f for f in _PARCEL_FIELDS
) + (
    Field("overlap_m2", "o.overlap_m2", "number", "压占面积(m²)", out=_rounded("o.overlap_m2", 3)),
    Field("share", "o.share", "number", "压占比例", out=_rounded("o.share", 6)),
)
_PROJECT_FIELDS = (
    Field("code", "p.code", "string", "项目代码"),
    Field("name", "p.name", "string", "项目名称"),
    Field("kind", "p.kind", "string", "类型", enum=("rail", "road", "zone")),
    Field("corridor_width_m", _zero_where_not_applicable("p.corridor_width_m", "p.kind = 'zone'"), "number",
          "廊道宽度(m)"),
    Field("freeze_date", "p.freeze_date", "date", "冻结日期", out=_date_out("p.freeze_date")),
    Field("deadline", "p.deadline", "date", "交地期限", out=_date_out("p.deadline")),
    Field("footprint_m2", "ST_Area(p.footprint)", "number", "红线面积(m²)", out=_rounded("ST_Area(p.footprint)", 2)),
)
_DISTRICT_FIELDS = (
    Field("code", "d.code", "string", "片区代码"),
    Field("name", "d.name", "string", "片区名称"),
    Field("area_m2", "ST_Area(d.geom)", "number", "面积(m²)", out=_rounded("ST_Area(d.geom)", 2)),
)

_STATIC = {
    "parcels": Collection(
        "parcels", "地块", "Every parcel (房屋 houses and 土地 land) with its stage in the expropriation workflow. "
        "Owner fields are masked unless the token may see personal data.",
        "FROM parcels pa JOIN districts d ON d.id = pa.district_id WHERE TRUE", "pa.id", "pa.geom", "MultiPolygon",
        _PARCEL_FIELDS, temporal=("pa.stage_since", "pa.stage_since"), keywords=("地块", "征收", "parcels")),
    "projects": Collection(
        "projects", "项目红线", "The projects' footprints: a line project's corridor or a zone's boundary.",
        "FROM projects p WHERE p.archived_at IS NULL", "p.id", "p.footprint", "MultiPolygon", _PROJECT_FIELDS,
        temporal=("p.freeze_date", "p.deadline"), keywords=("项目", "红线", "projects")),
    "districts": Collection(
        "districts", "片区", "The districts responsible for the parcels.",
        "FROM districts d WHERE TRUE", "d.id", "d.geom", "MultiPolygon", _DISTRICT_FIELDS,
        keywords=("片区", "districts")),
}


def _blockers(project: Any, tolerance: Tolerance) -> Collection:
    return Collection(
        BLOCKERS_PREFIX + project.code, f"阻碍地块 · {project.name}",
        f"Parcels still blocking project {project.code} ({project.name}): overlapping its footprint by at least "
        f"{tolerance.min_overlap_m2:g} m² and {tolerance.min_share:.1%} of the parcel, and not cleared. "
        "Feature ids are parcel ids.",
        blocker_from_sql(None),
        "pa.id", "pa.geom", "MultiPolygon", _BLOCKER_FIELDS,
        params={"project_id": project.id, **tolerance.params},
        temporal=("st.stage_since", "st.stage_since"), keywords=("阻碍地块", "blockers", project.code),
    )


def list_collections(conn: Connection, settings: Settings) -> list[Collection]:
    """The collections: parcels, projects, districts, and, at the configured tolerance, the blockers of each project
    not archived."""
    projects = conn.execute(text("SELECT id, code, name FROM projects WHERE archived_at IS NULL ORDER BY id")).all()
    tolerance = Tolerance.from_settings(settings)
    return [*_STATIC.values(), *(_blockers(p, tolerance) for p in projects)]


def get_collection(conn: Connection, settings: Settings, collection_id: str) -> Collection:
    """The collection with this id (``blockers-<code>`` for a project not archived); NotFound otherwise."""
    if collection_id in _STATIC:
        return _STATIC[collection_id]
    if collection_id.startswith(BLOCKERS_PREFIX):
        project = conn.execute(text("SELECT id, code, name FROM projects WHERE code = :code AND archived_at IS NULL"),
                               {"code": collection_id[len(BLOCKERS_PREFIX):]}).first()
        if project is not None:
            return _blockers(project, Tolerance.from_settings(settings))
    raise NotFound(f"no collection {collection_id!r}; see /ogc/collections")


def collection_extent(conn: Connection, c: Collection, storage_srid: int) -> dict[str, Any] | None:
    """The spatial extent in CRS84 (the transformed box densified, so its edges' bulge is inside), and
    the temporal extent when the collection has one."""
    temporal = (f"min({c.temporal[0]}) AS tmin, max({c.temporal[1]}) AS tmax" if c.temporal
                else "NULL AS tmin, NULL AS tmax")
    row = conn.execute(text(f"""
        WITH e AS (SELECT ST_SetSRID(CAST(ST_Extent({c.geom_sql}) AS geometry), :srid) AS g, {temporal}
                   {c.source})
        SELECT ST_XMin(t), ST_YMin(t), ST_XMax(t), ST_YMax(t), e.tmin, e.tmax
        FROM e CROSS JOIN LATERAL (SELECT CAST(ST_Transform(ST_Segmentize(
            g, greatest(ST_XMax(g) - ST_XMin(g), ST_YMax(g) - ST_YMin(g), 1) / 32), 4326) AS box2d) AS t) x
    """), {**c.params, "srid": storage_srid}).first()
    if row is None or row[0] is None:
        return None
    extent: dict[str, Any] = {"spatial": {"bbox": [[round(v, 7) for v in row[:4]]], "crs": CRS84}}
    if c.temporal:
        extent["temporal"] = {"interval": [[_iso(row[4]), _iso(row[5])]],
                              "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return extent


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


# ---------------------------------------------------------------------------------------------
# Items


@dataclass
class ItemsQuery:
    crs: Crs
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: BBox | None = None
    filter: SqlFilter | None = None
    equals: dict[str, list[str]] = field(default_factory=dict)  # queryable name → values (OR-ed)
    datetime: tuple[date | None, date | None] | None = None
    count: bool = True


@dataclass
class ItemsPage:
    features: list[dict[str, Any]]
    number_matched: int | None
    has_next: bool


def _page_sql(c: Collection, crs: Crs, storage_srid: int, where: str, tail: str) -> tuple[str, dict[str, Any]]:
    """The page's rows are chosen first (ids, plain columns), then only they are transformed and written as
    GeoJSON: with an offset, the rows skipped are never transformed."""
    geom = "s.g" if crs.srid == storage_srid else "ST_Transform(s.g, CAST(:out_srid AS integer))"
    if crs.lat_first:
        geom = f"ST_FlipCoordinates({geom})"
    inner = ", ".join([f"{c.id_sql} AS fid", f"{c.geom_sql} AS g"] + [f"{f.out or f.sql} AS f{i}"
                                                                      for i, f in enumerate(c.fields)])
    outer = ", ".join(["s.fid", f"ST_AsGeoJSON({geom}, CAST(:digits AS integer), 0)"]
                      + [f"s.f{i}" for i in range(len(c.fields))])
    sql = f"SELECT {outer} FROM (SELECT {inner} {c.source} AND {where} {tail}) s ORDER BY s.fid"
    return sql, {"out_srid": crs.srid, "digits": crs.decimals}


def _where(c: Collection, q: ItemsQuery, storage_srid: int, reveal_personal: bool) -> tuple[str, dict[str, Any]]:
    clauses, params = [], dict(c.params)
    if q.bbox is not None:
        b = q.bbox
        box = "ST_MakeEnvelope(CAST(:bx0 AS float8), CAST(:by0 AS float8), CAST(:bx1 AS float8), " \
              "CAST(:by1 AS float8), CAST(:bsrid AS integer))"
        x0, y0, x1, y1 = b.x0, b.y0, b.x1, b.y1
        if b.srid != storage_srid:
            area = storage_area(storage_srid)
            if area is not None:  # keep the box where the projection is meaningful
                x0, y0, x1, y1 = max(x0, area[0]), max(y0, area[1]), min(x1, area[2]), min(y1, area[3])
            # densified, so that the box's edges stay where they were after the transformation
            box = f"ST_Transform(ST_Segmentize({box}, CAST(:bseg AS float8)), CAST(:ssrid AS integer))"
            params |= {"bseg": max(x1 - x0, y1 - y0, 1e-9) / 16, "ssrid": storage_srid}
        if x0 > x1 or y0 > y1:
            clauses.append("FALSE")
        else:
            clauses.append(f"ST_Intersects({c.geom_sql}, {box})")
            params |= {"bx0": x0, "by0": y0, "bx1": x1, "by1": y1, "bsrid": b.srid}
    queryables = c.queryables(reveal_personal)
    for i, (name, values) in enumerate(q.equals.items()):
        qb = queryables[name]
        names = [f"e{i}_{k}" for k in range(len(values))]
        params |= {n: coerce_value(v, qb) for n, v in zip(names, values)}
        # households=2.5 compares as a number (an integer cast would round it to 2)
        casts = [("double precision" if isinstance(params[n], float) else sql_type(qb)) for n in names]
        clauses.append(f"{qb.sql} IN ({', '.join(f'CAST(:{n} AS {t})' for n, t in zip(names, casts))})")
    if q.datetime is not None and c.temporal is not None:
        start, end = q.datetime
        if end is not None:
            clauses.append(f"{c.temporal[0]} <= :dt_end")
            params["dt_end"] = end
        if start is not None:
            clauses.append(f"{c.temporal[1]} >= :dt_start")
            params["dt_start"] = start
    if q.filter is not None:
        clauses.append(q.filter.sql)
        params |= q.filter.params
    return " AND ".join(clauses) or "TRUE", params


def query_items(conn: Connection, c: Collection, q: ItemsQuery, *, storage_srid: int,
                reveal_personal: bool = False) -> ItemsPage:
    """A page of features (ordered by id) and, when asked, how many match in all."""
    where, params = _where(c, q, storage_srid, reveal_personal)
    sql, select_params = _page_sql(c, q.crs, storage_srid, where, f"ORDER BY {c.id_sql} LIMIT :limit OFFSET :offset")
    params |= select_params | {"limit": q.limit + 1, "offset": q.offset}
    try:
        rows = conn.execute(text(sql), params).all()
        matched = None
        if q.count:
            matched = conn.execute(text(f"SELECT count(*) {c.source} AND {where}"), params).scalar_one()
    except (DataError, InternalError) as exc:  # a filter geometry GEOS/PROJ cannot use (after every check above)
        raise BadRequest("the filter could not be evaluated: " + str(exc.orig).splitlines()[0][:200],
                         "filter") from exc
    names = tuple(f.name for f in c.fields)
    features = [_feature(c, names, row, reveal_personal) for row in rows[: q.limit]]
    return ItemsPage(features, matched, len(rows) > q.limit)


def get_item(conn: Connection, c: Collection, fid: str, crs: Crs, *, storage_srid: int,
             reveal_personal: bool = False) -> dict[str, Any]:
    """One feature as GeoJSON in ``crs``, owner fields masked unless ``reveal_personal``; NotFound for an id that is
    not an integer or not there."""
    if not re.fullmatch(r"-?\d{1,18}", fid):
        raise NotFound(f"no feature {fid!r} in {c.id}")
    sql, params = _page_sql(c, crs, storage_srid, f"{c.id_sql} = :fid", "")
    row = conn.execute(text(sql), {**c.params, **params, "fid": int(fid)}).first()
    if row is None:
        raise NotFound(f"no feature {fid} in {c.id}")
    return _feature(c, tuple(f.name for f in c.fields), row, reveal_personal)


def _feature(c: Collection, names: tuple[str, ...], row: Any, reveal_personal: bool) -> dict[str, Any]:
    properties = dict(zip(names, row[2:]))
    if c.has_personal and not reveal_personal:
        properties = mask_record(properties)
    # The geometry is PostGIS's own GeoJSON text, passed through orjson untouched.
    return {"type": "Feature", "id": row[0], "geometry": orjson.Fragment(row[1]) if row[1] else None,
            "properties": properties}

