"""Which parcels still block a project: overlapping its footprint and not cleared.

A parcel that only touches the footprint, or overlaps it by less than the
tolerance (an absolute area and a share of the parcel), is a survey sliver and
not a blocker. With ``as_of`` the stages are replayed from the history, so the
question is answered for any past day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import orjson
import shapely.geometry
from sqlalchemy import Connection, Engine, text

from gis.domain.privacy import mask_name, mask_name_sql
from gis.domain.stages import ALL_STAGES, STAGE_AT_SQL, STAGE_SINCE_AT_SQL, check_stages, end_of_day, today_in
from gis.domain.tolerance import Tolerance, tolerance_sql
from gis.io.export import EXTRA_COLUMNS, PARCEL_COLUMNS, Column, QueryRows, query_rows
from gis.platform.config import DEFAULT_TIMEZONE, SQM_PER_MU
from gis.platform.errors import InvalidInput, ProjectNotFound
from gis.platform.versioned import VersionedKey, region_versions
from gis.records.districts import DISTRICT_REFS_SQL, check_districts
from gis.records.footprints import overlaps_in_force_sql

if TYPE_CHECKING:
    import geopandas as gpd

MAX_LIMIT = 10_000
DEFAULT_PAGE = 100
# An expression, not the field's name: a window's ORDER BY (the JSON page's row_number) sees no output names.
_DAYS_IN_STAGE = "(CAST(:day AS date) - st.stage_since)"
SORT_KEYS = {
    "overlap_m2": "o.overlap_m2",
    "share": "o.share",
    "days_in_stage": _DAYS_IN_STAGE,
    "code": "pa.code",
    "district": "d.name",
    "stage": "array_position(CAST(:stage_order AS text[]), st.stage)",
}


@dataclass(frozen=True)
class BlockerFilter:
    districts: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    kind: str | None = None
    holdout: bool | None = None
    min_overlap_m2: float | None = None
    as_of: date | None = None
    sort: str = "-overlap_m2"
    limit: int | None = None  # a page of DEFAULT_PAGE when None; a download is then the whole list
    offset: int = 0
    with_geometry: bool = False

    @property
    def page_limit(self) -> int:
        return DEFAULT_PAGE if self.limit is None else self.limit

    def validated(self) -> BlockerFilter:
        check_stages(self.stages)
        if "cleared" in self.stages:
            raise InvalidInput("a cleared parcel is not a blocker", "stage")
        if self.kind not in (None, "house", "land"):
            raise InvalidInput("kind must be house or land", "kind")
        if self.sort.lstrip("-") not in SORT_KEYS:
            raise InvalidInput(f"cannot sort by {self.sort!r}; use one of {', '.join(SORT_KEYS)} (prefix - for "
                               "descending)", "sort")
        if self.limit is not None and not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", "limit")
        if self.offset < 0:
            raise InvalidInput("offset must not be negative", "offset")
        return self


# A parcel's district (``d``) named in ``:districts`` by code, name or id: how every district filter reads.
@dataclass
class BlockerPage:
    project: dict[str, Any]
    tolerance: Tolerance
    as_of: date | None
    today: date
    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]] = field(default_factory=list)

    def _facts(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "tolerance": self.tolerance.as_dict(),
            "total": self.total,
            "limit": self.limit,
            "offset": self.offset,
        }

    def as_dict(self) -> dict[str, Any]:
        return self._facts() | {"items": self.items}

    def as_geojson(self) -> dict[str, Any]:
        """RFC 7946 FeatureCollection in WGS 84; paging facts as foreign members."""
        features = [
            {"type": "Feature", "id": item["parcel_id"], "geometry": item.get("geometry"),
             "properties": {k: v for k, v in item.items() if k != "geometry"}}
            for item in self.items
        ]
        return {"type": "FeatureCollection", "features": features} | self._facts()

    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """The page as a GeoDataFrame in WGS 84 (geometry present when the filter asked for it)."""
        import geopandas as gpd  # for notebooks; the service and the CLI do without it

        rows = [{k: v for k, v in item.items() if k != "geometry"} for item in self.items]
        geoms = [shapely.geometry.shape(item["geometry"]) if item.get("geometry") else None for item in self.items]
        return gpd.GeoDataFrame(rows, geometry=geoms, crs=4326)


def _state_columns(as_of: date | None) -> tuple[str, str]:
    """SQL for a parcel's stage and the day it was reached: now, or replayed to the end of ``as_of``."""
    if as_of is None:
        return "pa.stage", "pa.stage_since"
    stage = STAGE_AT_SQL.format(parcel="o.parcel_id", end=":as_of_end")
    since = STAGE_SINCE_AT_SQL.format(parcel="o.parcel_id", end=":as_of_end")
    return stage, f"CAST(timezone(:tz, {since}) AS date)"


def blocker_from_sql(as_of: date | None) -> str:
    """FROM and WHERE of the parcels overlapping a project beyond the tolerance, not cleared (at ``as_of``).

    Aliases: ``o`` the kept overlap, ``pa`` the parcel, ``d`` its district, ``st`` its stage and the day
    it was reached. Parameters: project_id, min_m2, min_share (and as_of_end, as_of_day, tz for ``as_of``, whose
    overlaps are those of the alignment revision in force that day).
    """
    stage, since = _state_columns(as_of)
    overlaps = "project_parcel_overlaps" if as_of is None else overlaps_in_force_sql()
    return f"""
    FROM {overlaps} o
    -- Each parcel fetched by its key (OFFSET 0 keeps it so): a project's few thousand rows, where the planner
    -- would hash the whole parcels table, a scan that grows with the city.
    CROSS JOIN LATERAL (SELECT * FROM parcels p WHERE p.id = o.parcel_id OFFSET 0) pa
    JOIN districts d ON d.id = pa.district_id
    CROSS JOIN LATERAL (SELECT {stage} AS stage, {since} AS stage_since) st
    WHERE o.project_id = :project_id
      AND {tolerance_sql()}
      AND st.stage IS NOT NULL AND st.stage <> 'cleared'
    """


def _filter_sql(f: BlockerFilter) -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    if f.districts:
        clauses.append(DISTRICT_REFS_SQL)
        params["districts"] = list(f.districts)
    if f.stages:
        clauses.append("st.stage = ANY(:stages)")
        params["stages"] = list(f.stages)
    if f.kind:
        clauses.append("pa.kind = :kind")
        params["kind"] = f.kind
    if f.holdout is not None:
        clauses.append("pa.holdout = :holdout")
        params["holdout"] = f.holdout
    if f.min_overlap_m2 is not None:
        clauses.append("o.overlap_m2 >= :min_overlap")
        params["min_overlap"] = f.min_overlap_m2
    return "".join(" AND " + c for c in clauses), params


@dataclass(frozen=True)
class BlockerStatement:
    """The one statement a blockers page runs, and its bound parameters."""

    sql: str
    params: dict[str, Any]


def _page_columns(geometry: bool) -> list[tuple[str, str]]:
    """The page's fields as (SQL, name), in the order the API gives them; the owner's name last (it is masked by
    ``gis.domain.privacy`` for the roles that may not see it)."""
    return [
        ("o.parcel_id", "parcel_id"), ("pa.code", "code"), ("pa.kind", "kind"), ("d.code", "district"),
        ("d.name", "district_name"), ("st.stage", "stage"), ("st.stage_since", "stage_since"),
        (_DAYS_IN_STAGE, "days_in_stage"), ("pa.holdout", "holdout"),
        ("pa.legacy", "legacy"), ("pa.holdout_note", "holdout_note"), ("pa.households", "households"),
        ("pa.floor_area_m2", "floor_area_m2"), ("pa.land_area_mu", "land_area_mu"),
        (_rounded("o.overlap_m2", 3), "overlap_m2"), (_rounded("o.overlap_m2 / :sqm_per_mu", 6), "overlap_mu"),
        (_rounded("o.share", 6), "share"), (_rounded("ST_Area(pa.geom)", 3), "parcel_area_m2"),
        *([("ST_AsGeoJSON(ST_Transform(pa.geom, 4326), 7)", "geometry")] if geometry else []),
        ("pa.owner_name", "owner_name"),
    ]


def blocker_statement(project_id: int, query: BlockerFilter, tolerance: Tolerance, *, day: date,
                      tz: str = DEFAULT_TIMEZONE, as_json: bool = False,
                      reveal_personal: bool = False) -> BlockerStatement:
    """The SQL for a page of blockers; the benchmark runs the very same statement in psql.

    Its rows: the project's code, name, kind and the total, then the page's fields from ``parcel_id`` on.
    No row: no such project; one row of NULL fields: the page is empty. One statement, so the total and
    the page come from one snapshot without a transaction around them, in one round trip.

    ``as_json``: one row, the page's items written by PostgreSQL as the text of a JSON array (``items``, NULL for
    an empty page; the geometry left out), the owner's name masked there unless ``reveal_personal``: a page of
    thousands costs Python nothing per item.
    """
    query = query.validated()
    where, params = _filter_sql(query)
    columns = _page_columns(query.with_geometry and not as_json)
    from_where = blocker_from_sql(query.as_of) + where
    order = _order_sql(query)
    if as_json:
        # row_to_json over a row of named fields: 15 % less than json_build_object's per-call type lookups on a
        # list of 3,204, and compact JSON. The items joined in the page's order (row_number over the same order,
        # which the planner sorts once for both).
        named = ", ".join(f"{sql} AS {name}" for sql, name in columns[:-1])
        owner = f"CASE WHEN :reveal_personal THEN pa.owner_name ELSE {mask_name_sql('pa.owner_name')} END"
        item = f"(SELECT CAST(row_to_json(r) AS text) FROM (SELECT {named}, {owner} AS owner_name) r)"
        fields = f"row_number() OVER (ORDER BY {order}) AS n, {item} AS item"
        page = "SELECT max(rows.matched) AS matched, '[' || string_agg(rows.item, ',' ORDER BY rows.n) || ']' " \
               "AS items FROM ({rows}) rows"
        params = params | {"reveal_personal": reveal_personal}
    else:
        fields = ", ".join(f"{sql} AS {name}" for sql, name in columns)
        page = "{rows}"
    # ON true leaves PostgreSQL no join but a nested loop, which hands on the page's rows in its order. The total
    # is counted over the same rows as the page (a window, before the LIMIT); only an empty page, past the end,
    # counts them again (coalesce evaluates its second argument only then).
    rows = f"""
        SELECT count(*) OVER () AS matched, {fields}
        {from_where}
        ORDER BY {order}
        LIMIT :limit OFFSET :offset"""
    sql = f"""
    SELECT pr.code AS project_code, pr.name AS project_name, pr.kind AS project_kind,
           coalesce(page.matched, (SELECT count(*) {from_where})) AS total, page.*
    FROM (SELECT p.code, p.name, p.kind FROM projects p WHERE p.id = :project_id AND p.archived_at IS NULL) pr
    LEFT JOIN LATERAL ({page.format(rows=rows)}) page ON true
    """
    return BlockerStatement(sql, params | _params(project_id, query, tolerance, day, tz, query.page_limit))


def _order_sql(query: BlockerFilter) -> str:
    order = SORT_KEYS[query.sort.lstrip("-")] + (" DESC" if query.sort.startswith("-") else "")
    return f"{order} NULLS LAST, pa.code"


def _params(project_id: int, query: BlockerFilter, tolerance: Tolerance, day: date, tz: str,
            limit: int | None) -> dict[str, Any]:
    params = {"project_id": project_id, **tolerance.params, "day": day, "limit": limit, "offset": query.offset,
              "stage_order": list(ALL_STAGES), "sqm_per_mu": SQM_PER_MU}
    if query.as_of:
        params |= {"as_of_end": end_of_day(query.as_of, tz), "as_of_day": query.as_of, "tz": tz}
    return params


_PARCEL = {c.key: c for c in PARCEL_COLUMNS}
# A download's columns, in the order a planner reads them: the parcel, where it stands, what the project takes.
BLOCKER_EXPORT_COLUMNS: tuple[Column, ...] = (
    *(_PARCEL[k] for k in ("code", "kind", "district_code", "district_name", "owner_name", "households",
                           "floor_area_m2", "land_area_mu", "stage", "stage_since")),
    EXTRA_COLUMNS["days_in_stage"],
    *(_PARCEL[k] for k in ("holdout", "legacy", "holdout_note")),
    *(EXTRA_COLUMNS[k] for k in ("overlap_m2", "overlap_mu", "share")),
    _PARCEL["area_m2"], _PARCEL["area_mu"],
)


def blocker_download(engine: Engine, project_id: int, query: BlockerFilter, tolerance: Tolerance, *, today: date,
                     tz: str = DEFAULT_TIMEZONE) -> tuple[str, QueryRows]:
    """The project's name and its blockers' rows for a download, read in batches from a server-side cursor on a
    connection of their own (memory stays flat for any length of list)."""
    with engine.connect() as conn:
        check_districts(conn, query.districts)
        name = conn.execute(text("SELECT name FROM projects WHERE id = :id AND archived_at IS NULL"),
                            {"id": project_id}).scalar_one_or_none()
    if name is None:
        raise ProjectNotFound(project_id)
    sql, params = blocker_rows_statement(project_id, query, tolerance, day=query.as_of or today, tz=tz)
    return name, query_rows(engine, text(sql), params)


def blocker_rows_statement(project_id: int, query: BlockerFilter, tolerance: Tolerance, *, day: date,
                           tz: str = DEFAULT_TIMEZONE) -> tuple[str, dict[str, Any]]:
    """The blockers as rows for a download (``BLOCKER_EXPORT_COLUMNS`` and the geometry as WKB): the whole list in
    the filter's order, or ``query.limit`` of them when it is given."""
    query = query.validated()
    where, params = _filter_sql(query)
    sql = f"""
    SELECT pa.code, pa.kind, d.code AS district_code, d.name AS district_name, pa.owner_name, pa.households,
           pa.floor_area_m2, pa.land_area_mu, st.stage, st.stage_since,
           {_DAYS_IN_STAGE} AS days_in_stage, pa.holdout, pa.legacy, pa.holdout_note,
           o.overlap_m2, o.overlap_m2 / :sqm_per_mu AS overlap_mu, o.share,
           ST_Area(pa.geom) AS area_m2, ST_Area(pa.geom) / :sqm_per_mu AS area_mu, ST_AsBinary(pa.geom) AS geom
    {blocker_from_sql(query.as_of)}{where}
    ORDER BY {_order_sql(query)}
    LIMIT :limit OFFSET :offset
    """
    return sql, params | _params(project_id, query, tolerance, day, tz, query.limit)


def _run_page(conn: Connection, project_id: int, query: BlockerFilter, tolerance: Tolerance, tz: str,
              today: date | None, *, as_json: bool = False,
              reveal_personal: bool = False) -> tuple[BlockerPage, list[str], list[Any]]:
    """The page's statement run: the page without its items, the field names and the rows of the page (as_json:
    ``items``, and one row holding the items' JSON array or NULL)."""
    today = today or today_in(tz)
    check_districts(conn, query.districts)
    st = blocker_statement(project_id, query, tolerance, day=query.as_of or today, tz=tz, as_json=as_json,
                           reveal_personal=reveal_personal)
    result = conn.execute(text(st.sql), st.params)
    names, rows = list(result.keys()), result.all()
    if not rows:
        raise ProjectNotFound(project_id)
    head = rows[0]
    project = {"id": project_id, "code": head.project_code, "name": head.project_name, "kind": head.project_kind}
    n = names.index("items" if as_json else "parcel_id")
    page = BlockerPage(project=project, tolerance=tolerance, as_of=query.as_of, today=today, total=head.total,
                       limit=query.page_limit, offset=query.offset)
    return page, names[n:], [row[n:] for row in rows if row[n] is not None]


def find_blockers(
    conn: Connection,
    project_id: int,
    query: BlockerFilter,
    tolerance: Tolerance,
    *,
    tz: str = DEFAULT_TIMEZONE,
    today: date | None = None,
    reveal_personal: bool = False,
) -> BlockerPage:
    """A page of the parcels blocking ``project_id`` (at ``query.as_of`` when given)."""
    page, names, rows = _run_page(conn, project_id, query, tolerance, tz, today)
    page.items = _items(names, rows, reveal_personal)
    return page


def blockers_json(
    conn: Connection,
    project_id: int,
    query: BlockerFilter,
    tolerance: Tolerance,
    *,
    tz: str = DEFAULT_TIMEZONE,
    today: date | None = None,
    reveal_personal: bool = False,
) -> bytes:
    """``find_blockers(...).as_dict()`` as JSON bytes, the items written by PostgreSQL (without the geometry)."""
    page, _, rows = _run_page(conn, project_id, query, tolerance, tz, today, as_json=True,
                              reveal_personal=reveal_personal)
    return orjson.dumps(page.as_dict() | {"items": orjson.Fragment(rows[0][0] if rows else "[]")})


# The tables a page of today's blockers reads, with the edit triggers (gis.platform.versioned). Parcels by the
# edits meeting the footprint's box: a blocker lies in it, and a parcel moving in or out logs an extent meeting
# it. That holds only because every statement writing parcels logs its rows, whichever columns it sets (a page
# lists owners and stages, which no map draws). Projects and districts everywhere: a deleted project leaves no
# box to meet its own deletion, and a district's outline need not hold all its parcels, whose district names are
# listed; both are written by administrators a few times a month. The kept overlaps are written only in
# transactions that write parcels or projects (gis.records.footprints' callers), so they need no version.
BLOCKER_SOURCES = ("parcels", "projects", "districts")
_CITY_WIDE_SOURCES = ("projects", "districts")
_FOOTPRINT_BOUNDS = "WITH bounds AS (SELECT p.footprint AS query FROM projects p WHERE p.id = :project_id)"

@dataclass(frozen=True)
class BlockersKey(VersionedKey):
    """A page of ``blockers_json`` as built from these data versions (``gis.platform.versioned``)."""

    project_id: int
    query: BlockerFilter
    tolerance: Tolerance
    today: date
    tz: str
    reveal_personal: bool
    versions: tuple[int, ...]


def blockers_key(conn: Connection, project_id: int, query: BlockerFilter, tolerance: Tolerance, *, tz: str,
                 today: date, reveal_personal: bool) -> BlockersKey | None:
    """The key of today's page with the current data versions (one small query); None for a past day's page
    (``as_of``), which replays the history and is built each time."""
    if query.as_of is not None:
        return None
    query = query.validated()
    versions = region_versions(conn, _FOOTPRINT_BOUNDS, {"project_id": project_id}, BLOCKER_SOURCES,
                               everywhere=_CITY_WIDE_SOURCES)
    return BlockersKey(project_id, query, tolerance, today, tz, reveal_personal, versions)


def _rounded(expression: str, digits: int) -> str:
    """Rounded in floating point: through numeric, PostgreSQL would spend microseconds on every overlapping
    row before the sort and LIMIT, more than the rest of the page."""
    scale = f"CAST({10 ** digits} AS double precision)"
    return f"round({expression} * {scale}) / {scale}"


def _items(names: Any, rows: list[Any], reveal_personal: bool) -> list[dict[str, Any]]:
    # The SELECT names and rounds the fields as the API gives them; building them one by one from
    # row mappings took 0.5 ms for a page of 100.
    items = [dict(zip(names, row)) for row in rows]
    for item in items:
        item["stage_since"] = item["stage_since"].isoformat() if item["stage_since"] else None
        if not reveal_personal:
            item["owner_name"] = mask_name(item["owner_name"])
        if "geometry" in item:
            item["geometry"] = json.loads(item["geometry"])
    return items
