"""Importing parcel files: every row checked, then all of them upserted by parcel code, or none.

The file is read in batches. Each batch is checked in Python (values, geometry type, CRS,
location, validity, the district each parcel lies in) and streamed into a temporary table by one
COPY; the checks that need the whole file or the database (duplicate codes, what a new parcel must
have, which stage moves the workflow allows, the districts an editor may touch) then run in SQL.
One rejected row and nothing is written: the report lists every rejected row with its number,
code and reason. Otherwise, in the same transaction, new parcels are inserted, changed ones
updated, and each gets its history events (created / attributes / flags / geometry / stage,
actor = the importer), like an edit by hand.
An import that at least doubles the parcels (a first load), on a login that owns the tables (the
command line's), sets their indexes and foreign keys aside meanwhile and builds them again at the
end, in the same transaction (gis.platform.bulk.deferred_indexes): a million new parcels are written 3× faster.

How invalid geometry is repaired: GEOS MakeValid with the 'structure' method (shapely.make_valid),
which rebuilds the area from the rings (a bow-tie becomes its two triangles, a ring that doubles
back loses the spike); pieces that are not areas are dropped. A geometry with nothing left, or no
area, is rejected. Each repair is reported with the reason GEOS gave and the area before and after.

Blank cells never overwrite: a column with a blank cell leaves that field of an existing parcel as
it is (the spreadsheets district offices send are often partial). Columns a file lacks are left alone.
Personal values that arrive masked (张*明, from an export without reveal) are ignored, not stored.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from queue import Queue
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import shapely
from psycopg import sql as psql
from sqlalchemy import Connection, text

from gis.domain import workflow
from gis.domain.geometry import GEOGRAPHIC, transformer
from gis.domain.limits import Limit, limits_of
from gis.domain.schema import PARCEL_ATTRIBUTES, PARCEL_FLAGS, metadata
from gis.domain.stages import today_in
from gis.io import crs as crs_mod
from gis.io.fields import (
    FIELDS,
    GEOMETRY_ROLES,
    IGNORE,
    Field,
    auto_mapping,
    convert,
    describe_value,
    is_blank,
    is_total_row,
    normalise,
    value_problem,
)
from gis.io.profiles import Profile, check_profile, get_profile
from gis.io.readers import (
    Batch,
    Source,
    file_fingerprint,
    group_vertices,
    open_source,
    polygons_from_rings,
    wkt_geometries,
)
from gis.platform.bulk import deferred_indexes, may_defer_indexes
from gis.platform.config import Settings, get_settings
from gis.platform.db import working_srid
from gis.platform.errors import Forbidden, InvalidInput
from gis.records import history, surveys
from gis.records.footprints import refresh_parcels, refresh_projects

BATCH_ROWS = 20_000
MAX_LISTED_ISSUES = 10_000
MAX_HINTS = 200  # misplaced rows that get a computed hint; the rest share the file-level hint
GEOMETRY_TOLERANCE_M = 0.001  # a geometry within 1 mm (Hausdorff) of the stored one is unchanged
MIN_AREA_M2 = 0.01
REFRESH_ALL_ABOVE = 20_000  # more changed geometries than this: recompute all project overlaps at once
GRID_MIN_ROWS = 2_000  # rows of a batch from which the district grid (_DistrictGrid) is worth building
BULK_MIN_ROWS = 20_000  # new parcels from which an import that doubles the table rebuilds its indexes (_bulk)
BULK_TABLES = ("parcels", "parcel_events")

ERROR, WARNING = "error", "warning"
_ARROW_TYPES = {"integer": pa.int64(), "double precision": pa.float64(), "date": pa.date32(), "boolean": pa.bool_(),
                "text": pa.string()}
SQL_TYPES = {"text": "text", "kind": "text", "stage": "text", "int": "integer", "float": "double precision",
             "date": "date", "bool": "boolean"}
FLAG_COLUMNS = ("holdout", "legacy", "holdout_note")
PARCEL_LIMITS = limits_of(metadata(4326), "parcels")  # the bounds PATCH and the database keep (gis.domain.schema)

ProgressFn = Callable[[str, int, int | None], None]  # (phase, rows just done, total rows or None)


@dataclass
class Issue:
    row: int | None
    code: str | None
    severity: str  # error (the row is rejected) | warning
    kind: str  # missing | bad_value | duplicate_code | unknown_district | no_district | outside_city |
    # geometry_type | invalid_geometry | repaired_geometry | stage_move | district_mismatch
    field: str | None
    message: str


@dataclass
class ImportReport:
    file: str
    format: str
    dry_run: bool
    working_srid: int
    layer: str | None = None
    encoding: str | None = None
    crs: int | None = None  # the CRS the coordinates were read in
    profile: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)  # column → field used
    unused_columns: list[str] = field(default_factory=list)
    rows: int = 0  # parcels read (a vertex table's rows count once per parcel)
    skipped_rows: int = 0  # blank and totals rows
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    changes: dict[str, int] = field(default_factory=dict)  # history events written (or, dry run, due) by kind
    rejected: int = 0  # rows with at least one error
    warnings: int = 0
    issue_counts: dict[str, int] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    issues_not_listed: int = 0
    notes: list[str] = field(default_factory=list)
    committed: bool = False

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


class _Issues:
    """Collects issues; rows with an error are the rejected rows."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.rejected_rows: set[int] = set()
        self.counts: Counter[str] = Counter()
        self.masked: Counter[str] = Counter()  # field → masked values ignored
        self.hints: Counter[str] = Counter()  # what misplaced rows would fit

    def add(self, row: int | None, code: str | None, severity: str, kind: str, message: str,
            field_name: str | None = None) -> None:
        self.counts[kind] += 1
        if severity == ERROR and row is not None:
            self.rejected_rows.add(int(row))
        elif severity == WARNING:
            self.report.warnings += 1
        if len(self.report.issues) < MAX_LISTED_ISSUES:
            self.report.issues.append(Issue(None if row is None else int(row), code, severity, kind, field_name,
                                            message))
        else:
            self.report.issues_not_listed += 1

    def finish(self) -> None:
        for name, count in self.masked.items():
            self.report.notes.append(f"{name}: {count} masked values (with *) ignored; export with personal data "
                                     "revealed to re-import them")
        if self.hints:
            hint, count = self.hints.most_common(1)[0]
            self.report.notes.append(f"{self.counts['outside_city']} parcels lie far outside the city; for {count} "
                                     f"of those checked, {hint}")
        self.report.rejected = len(self.rejected_rows)
        self.report.issue_counts = dict(self.counts)
        self.report.issues.sort(key=lambda i: (i.row is None, i.row or 0, i.severity != ERROR))


@dataclass
class _Plan:
    """What the file provides and how to read it, settled before the first row."""

    fields: dict[str, str]  # field name → column
    roles: dict[str, str]  # geometry role → column (spreadsheets)
    defaults: dict[str, Any]
    source_srid: int | None
    columns: tuple[str, ...]  # parcel columns (DB names) the import writes
    today: date  # in the city: no day a parcel reached can be after it

    @property
    def district_given(self) -> bool:
        return "district" in self.fields or "district" in self.defaults


@dataclass
class _City:
    srid: int
    extent: crs_mod.Extent
    districts: dict[str, int]  # normalised code or name → id
    names: list[str]
    parcel_columns: set[str]
    ids: np.ndarray  # district ids, in the order of ``tree``'s geometries
    labels: list[str]  # their names, same order
    tree: shapely.STRtree  # the district polygons

    @cached_property
    def grid(self) -> _DistrictGrid:
        return _DistrictGrid.over(self.tree)


@dataclass
class _DistrictGrid:
    """A grid over the districts, each cell labelled with the district (index in the tree) that covers
    it and meets no other, -1 where there is none.

    A parcel whose bounding box lies within at most 2 × 2 cells of one label lies inside that district
    and meets no other, so the district holding its point on surface is that one: the grid gives the
    same answer without computing the point (the costliest step of placing a million parcels).
    """

    x0: float
    y0: float
    dx: float
    dy: float
    labels: np.ndarray  # (SIZE, SIZE), by column then row

    SIZE = 128  # cells a side: built in a tenth of a second, and places 95 % of the demo city's parcels

    @classmethod
    def over(cls, tree: shapely.STRtree) -> _DistrictGrid:
        n = cls.SIZE
        x0, y0, x1, y1 = shapely.total_bounds(tree.geometries)
        dx, dy = (x1 - x0) / n or 1.0, (y1 - y0) / n or 1.0
        i, j = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
        cells = shapely.box(x0 + i * dx, y0 + j * dy, x0 + (i + 1) * dx, y0 + (j + 1) * dy)
        labels = np.full(n * n, -1, dtype=np.int64)
        covered, district = tree.query(cells, predicate="covered_by")
        labels[covered] = district
        met, _ = tree.query(cells, predicate="intersects")
        labels[np.bincount(met, minlength=n * n) != 1] = -1
        return cls(float(x0), float(y0), float(dx), float(dy), labels.reshape(n, n))

    def districts(self, geoms: np.ndarray) -> np.ndarray:
        """Per geometry, the index of the district it lies in alone by the grid, or -1 (not known so)."""
        n = self.SIZE
        bounds = shapely.bounds(geoms)
        # A hair of margin, so that a box ending on a cell's edge is taken to reach into the next cell.
        i = np.floor((bounds[:, [0, 2]] - self.x0) / self.dx + [-1e-9, 1e-9])
        j = np.floor((bounds[:, [1, 3]] - self.y0) / self.dy + [-1e-9, 1e-9])
        small = ((i[:, 0] >= 0) & (j[:, 0] >= 0) & (i[:, 1] < n) & (j[:, 1] < n)
                 & (i[:, 1] - i[:, 0] <= 1) & (j[:, 1] - j[:, 0] <= 1))
        found = np.full(len(geoms), -1, dtype=np.int64)
        k = np.flatnonzero(small)
        i, j = i[k].astype(np.int64), j[k].astype(np.int64)
        corners = np.stack([self.labels[i[:, a], j[:, b]] for a in (0, 1) for b in (0, 1)])
        alone = (corners[0] >= 0) & (corners == corners[0]).all(axis=0)
        found[k[alone]] = corners[0][alone]
        return found


def import_file(
    conn: Connection,
    path: Path | str,
    *,
    profile: str | Profile | None = None,
    mapping: dict[str, str] | None = None,
    defaults: dict[str, Any] | None = None,
    crs: int | None = None,
    dry_run: bool = False,
    actor: str = "import",
    file_name: str | None = None,
    settings: Settings | None = None,
    allowed_districts: set[int] | None = None,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import a parcel file on ``conn`` (in the caller's transaction) and report on every row.

    ``profile`` names a saved profile (or is one); ``mapping`` (column → field), ``defaults`` and
    ``crs`` add to or override it. Problems with the whole file (unreadable, no code column, a CRS
    not accepted) raise InvalidInput; problems with rows are in the report, and if there is any,
    nothing is written (``report.ok`` is False). With ``allowed_districts`` (a district editor's), rows
    of parcels in other districts, or moving a parcel there, are rejected.
    """
    settings = settings or get_settings()
    path = Path(path)
    base = get_profile(conn, profile) if isinstance(profile, str) else (profile or Profile())
    prof = check_profile(base.merged(mapping, defaults, crs))
    if prof.crs is not None:
        crs_mod.check(prof.crs, working_srid(conn))
    city = _load_city(conn, settings)
    report = ImportReport(file=file_name or path.name, format="", dry_run=dry_run, working_srid=city.srid,
                          profile=prof.name)
    issues = _Issues(report)
    with open_source(path, layer=prof.options.get("layer"), sheet=prof.options.get("sheet"),
                     encoding=prof.options.get("encoding")) as source:
        report.format, report.layer, report.encoding = source.format, source.layer, source.encoding
        report.notes.extend(source.notes)
        plan = _plan(source, prof, city, report, today_in(settings.city_timezone))
        _create_staging(conn, plan, city.srid)
        with _staging_copy(conn, plan) as stage:
            for batch in _batches(source, plan, report, issues):
                stage(*_check_batch(batch, plan, city, report, issues))
                report.rows += len(batch.rows)
                if progress:
                    progress("read", len(batch.rows), None if "lon" in plan.roles else source.count)
    report.crs = plan.source_srid
    conn.execute(text("ANALYZE import_rows (row_no, code, district_id)"))  # temporary tables get no statistics
    _check_in_database(conn, plan, city, issues, today_in(settings.city_timezone), allowed_districts)
    issues.finish()
    if not report.ok:
        return report
    if not dry_run:
        conn.execute(text("LOCK TABLE parcels IN SHARE ROW EXCLUSIVE MODE"))
    _diff(conn, plan, report)
    if dry_run:
        return report
    _write(conn, plan, city, report, actor, f"导入文件 {file_fingerprint(path)}", today_in(settings.city_timezone),
           _bulk(conn, report.created))
    report.committed = True
    if (note := surveys.import_with_parcels(conn, path, actor)) is not None:  # its survey columns (调查登记)
        report.notes.append(note)
    if progress:
        progress("write", report.rows, report.rows)
    return report


# ---------------------------------------------------------------------------------------------
# Before the first row


def _load_city(conn: Connection, settings: Settings) -> _City:
    srid = working_srid(conn)
    rows = conn.execute(text("SELECT id, code, name, ST_AsBinary(geom) FROM districts ORDER BY id")).all()
    if not rows:
        raise InvalidInput("there are no districts yet: parcels need one each; load the districts first "
                           "(gis districts import FILE, or POST /districts/imports)", "districts")
    box = conn.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM districts) x"
    )).one()
    lookup: dict[str, int] = {}
    for did, code, name, _geom in rows:
        lookup.setdefault(normalise(code), did)
        lookup.setdefault(normalise(name), did)
    columns = set(conn.execute(text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'parcels' "
        "AND is_generated = 'NEVER'"  # a generated column is the database's to write
    )).scalars())
    polygons = shapely.from_wkb([bytes(r[3]) for r in rows])
    shapely.prepare(polygons)
    return _City(srid, crs_mod.Extent(tuple(float(v) for v in box), settings.import_max_offset_m), lookup,
                 [f"{name} ({code})" for _id, code, name, _g in rows], columns,
                 np.array([r[0] for r in rows], dtype=np.int64), [r[2] for r in rows], shapely.STRtree(polygons))


def _plan(source: Source, prof: Profile, city: _City, report: ImportReport, today: date) -> _Plan:
    explicit = {c: t for c, t in prof.mapping.items()}
    missing = [c for c in explicit if c not in source.columns]
    for column in missing:
        report.notes.append(f"the profile maps column {column!r}, which this file does not have")
        explicit.pop(column)
    chosen: dict[str, str] = {}
    for column, target in explicit.items():
        if target in IGNORE:
            continue
        if target in chosen.values():
            other = next(c for c, t in chosen.items() if t == target)
            raise InvalidInput(f"columns {other!r} and {column!r} both map to {target}", f"mapping.{column}")
        chosen[column] = target
    if prof.options.get("auto", True):
        rest = [c for c in source.columns if c not in explicit]
        for column, target in auto_mapping(rest, with_geometry_roles=source.is_table).items():
            if target not in chosen.values():
                chosen[column] = target
    if not source.is_table:
        chosen = {c: t for c, t in chosen.items() if t in FIELDS}
    fields = {t: c for c, t in chosen.items() if t in FIELDS}
    roles = {t: c for c, t in chosen.items() if t in GEOMETRY_ROLES}
    if "land_area_m2" in fields and "land_area_mu" in fields:
        explicit_m2, explicit_mu = fields["land_area_m2"] in explicit, fields["land_area_mu"] in explicit
        if explicit_m2 and explicit_mu:
            raise InvalidInput("land_area_m2 and land_area_mu both fill the land area: map only one", "mapping")
        chosen.pop(fields.pop("land_area_mu" if explicit_m2 else "land_area_m2"))
    if "code" not in fields:
        raise InvalidInput(
            f"no column gives the parcel code; columns: {', '.join(source.columns)}; map one, e.g. --map 宗地代码=code",
            "mapping",
        )
    if source.is_table and "wkt" not in roles and not {"lon", "lat"} <= roles.keys():
        if roles.keys() & {"lon", "lat"}:
            raise InvalidInput("a boundary-point table needs both coordinate columns (lon/lat, 经度/纬度, x/y)",
                               "mapping")
        report.notes.append("no geometry columns: attributes only (new parcels need a geometry)")
    defaults = {}
    for name, value in prof.defaults.items():
        conv = convert(FIELDS[name], pd.Series([value], dtype=object))
        if conv.bad[0]:
            raise InvalidInput(f"default {value_problem(FIELDS[name])}", f"defaults.{name}")
        limit = PARCEL_LIMITS.get(FIELDS[name].column)
        problem = limit.problem(conv.values.iloc[0], today) if limit is not None else None
        if problem:
            raise InvalidInput(f"default {FIELDS[name].column} {problem}", f"defaults.{name}")
        defaults[name] = conv.values.iloc[0]
    targets = {FIELDS[f].column for f in fields if f != "code"} | {FIELDS[f].column for f in defaults}
    targets = {"district_id" if t == "district" else t for t in targets} | {"district_id"}
    unknown_columns = {t for t in targets if t != "district_id" and t not in city.parcel_columns}
    if unknown_columns:
        raise InvalidInput(f"the database has no parcel column {', '.join(sorted(unknown_columns))}", "mapping")
    ordered = tuple(c for c in _PARCEL_ORDER if c in targets)
    source_srid = prof.crs
    if source.crs_text:
        file_srid = crs_mod.epsg_of(source.crs_text)
        if source_srid is None:
            source_srid = file_srid
        elif file_srid != source_srid:
            report.notes.append(f"the file says {crs_mod.describe(file_srid)}; the declared "
                                f"{crs_mod.describe(source_srid)} is used")
    if source_srid is not None:
        crs_mod.check(source_srid, city.srid)
    report.mapping = dict(chosen)
    report.unused_columns = [c for c in source.columns if c not in chosen]
    return _Plan(fields, roles, defaults, source_srid, ordered, today)


_PARCEL_ORDER = (*PARCEL_ATTRIBUTES, "stage", "stage_since", *PARCEL_FLAGS, *workflow.DATE_COLUMNS.values())


def _sql_type(column: str) -> str:
    if column == "district_id":
        return "integer"
    return SQL_TYPES.get(FIELDS[column].type, "text")


def _create_staging(conn: Connection, plan: _Plan, srid: int) -> None:
    columns = ", ".join(f"{c} {_sql_type(c)}" for c in plan.columns)  # names from the constants above
    conn.execute(text("DROP TABLE IF EXISTS import_rows, import_diff"))  # an earlier import in this transaction
    # The geometries arrive as plain WKB; the column's SRID (the working one, an integer read from the
    # schema: a type modifier cannot be a bound parameter) is given to each as it is stored.
    conn.execute(text(f"""
        CREATE TEMP TABLE import_rows (
            row_no integer PRIMARY KEY, ok boolean NOT NULL, code text, district_spatial boolean NOT NULL,
            {columns}, geom geometry(Geometry, {int(srid)}), stage_move boolean NOT NULL DEFAULT false, stage_on date
        ) ON COMMIT DROP
    """))


@contextmanager
def _staging_copy(conn: Connection, plan: _Plan) -> Iterator[Callable[[dict[str, Any], pa.Array], None]]:
    """One COPY into import_rows for the whole file, fed batch by batch (CSV written by Arrow):
    ``write(values, geom)``, the rows' values by column (NULL for the columns left out) and their
    geometries as hex WKB.

    The server stores a batch while the next one is being checked here, so the two cores share the work:
    a thread sends the batches, so the checks never wait on the socket, and at most two wait their turn,
    so memory stays flat when the server is the slower.
    """
    columns = ("row_no", "ok", "code", "district_spatial", *plan.columns)
    types = {"row_no": "integer", "ok": "boolean", "code": "text", "district_spatial": "boolean"}
    arrow_types = [_ARROW_TYPES[types.get(c) or _sql_type(c)] for c in columns]
    statement = psql.SQL("COPY import_rows ({}) FROM STDIN WITH (FORMAT csv)").format(
        psql.SQL(", ").join(map(psql.Identifier, (*columns, "geom"))))
    pending: Queue[memoryview | None] = Queue(maxsize=2)
    failed: list[BaseException] = []
    with conn.connection.driver_connection.cursor() as cur, cur.copy(statement) as copy:

        def send() -> None:
            while (data := pending.get()) is not None:
                if not failed:
                    try:
                        copy.write(data)
                    except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                        failed.append(exc)

        def write(values: dict[str, Any], geom: pa.Array) -> None:
            if failed:
                raise failed[0]
            table = pa.table([*(pa.array(values[c], type=t, from_pandas=True) if c in values else pa.nulls(len(geom), t)
                                for c, t in zip(columns, arrow_types, strict=True)), geom],
                             names=[*columns, "geom"])
            buf = io.BytesIO()
            pa_csv.write_csv(table, buf, pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
            pending.put(buf.getbuffer())

        sender = threading.Thread(target=send, name="import-copy", daemon=True)
        sender.start()
        try:
            yield write
        finally:
            pending.put(None)
            sender.join()
        if failed:
            raise failed[0]


# ---------------------------------------------------------------------------------------------
# Reading and checking rows


def _batches(source: Source, plan: _Plan, report: ImportReport, issues: _Issues):
    if not source.is_table:
        yield from source.batches(BATCH_ROWS)
        return
    table, rows = source.table, source.rows
    code_col = plan.fields["code"]
    # A totals row (合计 …) has the label where the code goes, or no code and the label elsewhere.
    labelled = table[code_col].map(lambda v: isinstance(v, str) and is_total_row({0: v})).to_numpy(dtype=bool)
    totals = is_blank(table[code_col]) | labelled
    totals[totals] = [is_total_row(r) for r in table[totals].to_dict("records")]
    report.skipped_rows += int(totals.sum())
    table, rows = table[~totals].reset_index(drop=True), rows[~totals]
    if "wkt" in plan.roles:
        geoms, bad, srids = wkt_geometries(table[plan.roles["wkt"]])
        for r in rows[bad]:
            issues.add(int(r), None, ERROR, "bad_value", f"column {plan.roles['wkt']!r} is not readable WKT", "wkt")
        if plan.source_srid is None and len(srids) == 1:
            plan.source_srid = crs_mod.check(srids.pop(), report.working_srid)
        batch = Batch(rows, table, geoms)
    elif "lon" in plan.roles:
        batch = _vertex_batch(table, rows, plan, report, issues)
    else:
        batch = Batch(rows, table, None)
    for start in range(0, len(batch.rows), BATCH_ROWS):
        part = slice(start, start + BATCH_ROWS)
        yield Batch(batch.rows[part], batch.attrs.iloc[part].reset_index(drop=True),
                    None if batch.geoms is None else batch.geoms[part])


def _vertex_batch(table: pd.DataFrame, rows: np.ndarray, plan: _Plan, report: ImportReport,
                  issues: _Issues) -> Batch:
    """A boundary-point table (one row per vertex) as one row per parcel, the polygon built from its points."""
    coords = []
    for role in ("lon", "lat"):
        conv = convert(Field(role, role, "float", ()), table[plan.roles[role]])
        for r in rows[conv.bad | is_blank(table[plan.roles[role]])]:
            issues.add(int(r), None, ERROR, "bad_value", f"coordinate column {plan.roles[role]!r} needs a number",
                       role)
        coords.append(pd.to_numeric(conv.values, errors="coerce").to_numpy(dtype=float))
    xy = np.column_stack(coords)
    finite = np.isfinite(xy).all(axis=1)
    if plan.source_srid is None:
        plan.source_srid = crs_mod.guess(xy[finite])
        if plan.source_srid is not None:
            report.notes.append(f"the file states no CRS: {crs_mod.describe(plan.source_srid)} assumed from the "
                                "coordinates")
    if plan.source_srid is not None and crs_mod.looks_like_northing_first(xy[finite], plan.source_srid):
        xy = xy[:, ::-1]
        report.notes.append(f"columns {plan.roles['lon']!r}/{plan.roles['lat']!r} follow the survey convention "
                            "(X = northing, Y = easting) and were read that way")
    point_no = table[plan.roles["point_no"]] if "point_no" in plan.roles else None
    ring_no = table[plan.roles["ring_no"]] if "ring_no" in plan.roles else None
    codes = table[plan.fields["code"]].map(lambda v: None if v is None or pd.isna(v) else str(v).strip())
    grouped = group_vertices(codes, xy, rows, point_no, ring_no)
    parcel_of_row = grouped.parcel_of_row
    attrs = table.groupby(parcel_of_row, sort=True).first().reset_index(drop=True)
    parcel_rows = rows[grouped.first_index]
    for parcel, where in grouped.scattered.items():
        issues.add(int(parcel_rows[parcel]), str(codes.iloc[grouped.first_index[parcel]]), ERROR, "duplicate_code",
                   f"the rows of this code are not together (rows {', '.join(map(str, where))}): two parcels with "
                   "one code?", "code")
    for parcel in np.flatnonzero(grouped.too_few):
        issues.add(int(parcel_rows[parcel]), str(codes.iloc[grouped.first_index[parcel]]), ERROR,
                   "invalid_geometry", "a ring has fewer than 3 distinct points (one row per boundary point)",
                   "geometry")
    polygons = polygons_from_rings(grouped.rings, grouped.too_few)
    polygons[np.unique(parcel_of_row[~finite])] = None
    report.notes.append(f"boundary-point table: {len(rows)} rows make {len(parcel_rows)} parcels")
    return Batch(parcel_rows, attrs, polygons)


def _check_batch(batch: Batch, plan: _Plan, city: _City, report: ImportReport,
                 issues: _Issues) -> tuple[dict[str, Any], pa.Array]:
    """One staging row per file row: converted values, the district id, ok (column → values; a column
    the file does not fill is left out); and its geometry (hex WKB)."""
    rows = batch.rows
    out: dict[str, Any] = {"row_no": rows}  # columns; a DataFrame would cost more than the checks here
    codes = convert(FIELDS["code"], batch.attrs[plan.fields["code"]]).values
    code_list = codes.to_numpy(dtype=object, na_value=None).tolist()
    for i in np.flatnonzero(codes.isna().to_numpy()):
        issues.add(int(rows[i]), None, ERROR, "missing", "no parcel code", "code")
    out["code"] = _check_bounds(codes, FIELDS["code"], rows, code_list, plan.today, issues)

    for name, column in plan.fields.items():
        if name == "code":
            continue
        fld = FIELDS[name]
        conv = convert(fld, batch.attrs[column])
        if conv.bad.any():
            raw = batch.attrs[column].to_numpy()
            for i in np.flatnonzero(conv.bad):
                issues.add(int(rows[i]), code_list[i], ERROR, "bad_value",
                           f"{value_problem(fld)}; got {describe_value(fld, raw[i])} in column {column!r}", name)
        if conv.masked is not None and conv.masked.any():
            issues.masked[name] += int(conv.masked.sum())
        out[fld.column] = _check_bounds(conv.values, fld, rows, code_list, plan.today, issues)
    for name, value in plan.defaults.items():
        col = FIELDS[name].column
        out[col] = out[col].where(out[col].notna(), value) if col in out else pd.Series([value] * len(rows))

    given = _district_ids(out.pop("district") if "district" in out else None, rows, code_list, city, issues)
    geoms, as_in_file = _check_geometries(batch, plan, city, report, issues, code_list)
    out["district_id"], out["district_spatial"] = _place_in_districts(geoms, given, rows, code_list, city, issues)
    out["ok"] = ~np.isin(rows, list(issues.rejected_rows)) if issues.rejected_rows else np.ones(len(rows), bool)
    return out, _wkb_hex(geoms, batch.wkb, as_in_file)


def _check_bounds(values: pd.Series, fld: Field, rows: np.ndarray, codes: list, today: date,
                  issues: _Issues) -> pd.Series:
    """Reject the rows whose value of ``fld`` is outside the bounds its column declares (``gis.domain.schema``): the
    same bounds PATCH and the database keep. Messages name the field, never a personal value. The values come
    back with the refused ones blanked: the staging table cannot hold them (text with NUL), and the rows are
    rejected anyway."""
    limit = PARCEL_LIMITS.get(fld.column)
    if limit is None:
        return values
    outside = _outside(values, limit, today)
    for i in np.flatnonzero(outside):
        value = values.iloc[i]
        problem = limit.problem(value.date() if isinstance(value, pd.Timestamp) else value, today)
        via = f" (read from {fld.name})" if fld.stored_as else ""
        issues.add(int(rows[i]), codes[i], ERROR, "bad_value", f"{fld.column}{via} {problem}", fld.name)
    return values.where(~outside) if outside.any() else values


def _outside(values: pd.Series, limit: Limit, today: date) -> np.ndarray:
    """True where a value is outside ``limit``: whole columns at once for text and numbers, each distinct
    value once for days (a file has few)."""
    if limit.max_length is not None:
        text = values if isinstance(values.dtype, pd.StringDtype) else values.astype("string")
        bad = (text.str.len() > limit.max_length) | text.str.contains("\x00", regex=False)
        return bad.fillna(False).to_numpy(dtype=bool)
    if isinstance(limit.ge, date):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        outside = [limit.problem(u.date() if isinstance(u, pd.Timestamp) else u, today) is not None
                   for u in uniques]
        return np.array([*outside, False], dtype=bool)[codes]
    numbers = pd.to_numeric(values, errors="coerce").astype("Float64")
    bad = pd.Series(False, index=values.index, dtype="boolean")
    for op, bound in (("lt", limit.ge), ("le", limit.gt), ("gt", limit.le)):
        if bound is not None:
            bad |= getattr(numbers, op)(float(bound))
    return bad.fillna(False).to_numpy(dtype=bool)


def _district_ids(labels: pd.Series | None, rows: np.ndarray, codes: list, city: _City,
                  issues: _Issues) -> pd.Series:
    """District ids from codes or names (None where the file gives none; unknown ones are rejected)."""
    if labels is None:
        return pd.Series(pd.array([None] * len(rows), dtype="Int64"))
    index, uniques = pd.factorize(labels.astype(object), use_na_sentinel=True)
    lookup = [city.districts.get(normalise(u)) for u in uniques]
    known = np.array([v is not None for v in lookup] + [False], dtype=bool)[index]
    for i in np.flatnonzero(~known & (index >= 0)):
        issues.add(int(rows[i]), codes[i], ERROR, "unknown_district",
                   f"unknown district {labels.iloc[i]!r}; districts: {', '.join(city.names)}", "district")
    ids = pd.array(np.array([v or 0 for v in lookup] + [0], dtype=np.int64)[index], dtype="Int64")
    ids[~known] = pd.NA
    return pd.Series(ids)


def _check_geometries(batch: Batch, plan: _Plan, city: _City, report: ImportReport, issues: _Issues,
                      codes: list) -> tuple[np.ndarray, np.ndarray]:
    """Each row's geometry as a MultiPolygon in the working CRS (None when missing or rejected), and
    where it is the file's own WKB unchanged (a 2D MultiPolygon in the working CRS, valid)."""
    n = len(batch.rows)
    if batch.geoms is None:
        return np.full(n, None, dtype=object), np.zeros(n, dtype=bool)
    rows = batch.rows
    src = np.asarray(batch.geoms, dtype=object)
    types = shapely.get_type_id(src)
    present = (types >= 0) & ~shapely.is_empty(src)
    if plan.source_srid is None:
        sample = shapely.get_coordinates(src[present][:1000])
        plan.source_srid = crs_mod.guess(sample)
        if plan.source_srid is None:
            raise InvalidInput("the file states no CRS and its coordinates do not show it: declare it (--crs)", "crs")
        report.notes.append(f"the file states no CRS: {crs_mod.describe(plan.source_srid)} assumed from the "
                            "coordinates")
    geoms = _as_multipolygons(src, types, present, rows, codes, issues)
    keep = ~shapely.is_missing(geoms)
    if shapely.has_z(geoms).any():
        geoms = shapely.force_2d(geoms)
    source_srid = plan.source_srid
    as_in_file = _plain_multipolygons(batch.wkb) if batch.wkb is not None and source_srid == city.srid \
        else np.zeros(n, dtype=bool)
    if source_srid != city.srid:
        t = transformer(source_srid, city.srid)
        with np.errstate(invalid="ignore"):
            geoms = shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
    _check_location(src, geoms, keep, rows, codes, source_srid, city, report, issues)
    keep &= ~shapely.is_missing(geoms)
    as_in_file[_repair(geoms, keep, rows, codes, issues)] = False
    keep &= ~shapely.is_missing(geoms)
    area = shapely.area(geoms)
    for i in np.flatnonzero(keep & ~(area >= MIN_AREA_M2)):
        issues.add(int(rows[i]), codes[i], ERROR, "invalid_geometry", f"the geometry has no area ({area[i]:.4f} m²)",
                   "geometry")
        geoms[i] = None
    return geoms, as_in_file & ~shapely.is_missing(geoms)


def _plain_multipolygons(wkb: pa.BinaryArray) -> np.ndarray:
    """Where the WKB is a little-endian 2D MultiPolygon: byte order 1, type 6 (no Z, M or SRID flags)."""
    offsets = np.frombuffer(wkb.buffers()[1], dtype=np.int32)[wkb.offset:wkb.offset + len(wkb) + 1]
    data = wkb.buffers()[2]
    start = offsets[:-1].astype(np.int64)
    long_enough = ((offsets[1:] - offsets[:-1]) >= 9) & ~wkb.is_null().to_numpy(zero_copy_only=False)
    if data is None or not long_enough.any():
        return long_enough
    head = np.frombuffer(data, dtype=np.uint8)[start[long_enough, None] + np.arange(5)]
    plain = np.zeros(len(wkb), dtype=bool)
    plain[long_enough] = (head == np.array([1, 6, 0, 0, 0], dtype=np.uint8)).all(axis=1)
    return plain


def _wkb_hex(geoms: np.ndarray, file_wkb: pa.BinaryArray | None, as_in_file: np.ndarray) -> pa.Array:
    """The geometries as hex WKB for COPY, an Arrow column built without a Python object per row.

    Geometries the checks left as the file has them keep the file's bytes; the others (reprojected,
    made multi, repaired) are written by GEOS. Rejected and missing rows are NULL.
    """
    fresh = ~shapely.is_missing(geoms) & ~as_in_file
    written = np.full(len(geoms), None, dtype=object)
    written[fresh] = shapely.to_wkb(geoms[fresh])
    wkb = pa.array(written, type=pa.binary())
    if as_in_file.any():
        wkb = pc.if_else(pa.array(as_in_file), file_wkb, wkb)
    validity, offsets, data = wkb.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int32)[:wkb.offset + len(wkb) + 1].astype(np.int64)
    hexed = memoryview(data)[:int(offsets[-1])].hex().encode("ascii") if data is not None else b""
    return pa.LargeStringArray.from_buffers(len(wkb), pa.py_buffer(offsets * 2), pa.py_buffer(hexed), validity,
                                            wkb.null_count, wkb.offset)


def _place_in_districts(geoms: np.ndarray, given: pd.Series, rows: np.ndarray, codes: list, city: _City,
                        issues: _Issues) -> tuple[pd.Series, np.ndarray]:
    """(district ids, taken from the geometry?) per row.

    The district a geometry lies in is the one holding a point on its surface, else the one it
    overlaps most. Rows whose file names no district get that one; rows whose file names another
    are kept as the file says, with a warning.
    """
    ids = given.copy()
    spatial = np.zeros(len(geoms), dtype=bool)
    idx = np.flatnonzero(~shapely.is_missing(geoms))
    if not len(idx):
        return ids, spatial
    found = city.grid.districts(geoms[idx]) if len(idx) >= GRID_MIN_ROWS else np.full(len(idx), -1, dtype=np.int64)
    rest = np.flatnonzero(found < 0)
    points = shapely.point_on_surface(geoms[idx[rest]])
    x, y = shapely.get_x(points), shapely.get_y(points)
    candidates, boxes = city.tree.query(points)  # districts whose bounding box holds the point
    # Then each district tests its points at once (contains_xy, on the prepared polygon): several times
    # faster than the tree's own predicate test, point by point. The first district listed wins where
    # districts overlap, so it is tried last.
    for district in np.unique(boxes)[::-1]:
        mine = candidates[boxes == district]
        found[rest[mine[shapely.contains_xy(city.tree.geometries[district], x[mine], y[mine])]]] = district
    for j in np.flatnonzero(found < 0):
        candidates = city.tree.query(geoms[idx[j]], predicate="intersects")
        if len(candidates):
            areas = shapely.area(shapely.intersection(city.tree.geometries[candidates], geoms[idx[j]]))
            found[j] = candidates[int(np.argmax(areas))]
    has_given = given.notna().to_numpy()[idx]
    place = np.where(found >= 0, city.ids[np.maximum(found, 0)], -1)
    take = ~has_given & (found >= 0)
    ids.iloc[idx[take]] = place[take]
    spatial[idx[take]] = True
    given_ids = given.to_numpy(dtype=np.int64, na_value=-1)[idx]
    for j in np.flatnonzero(has_given & (place != given_ids)):
        i = idx[j]
        said = city.labels[int(np.flatnonzero(city.ids == given_ids[j])[0])]
        where = f"lies in {city.labels[found[j]]}" if found[j] >= 0 else "lies in no district"
        issues.add(int(rows[i]), codes[i], WARNING, "district_mismatch", f"the file says {said} but the geometry "
                   f"{where}", "district")
    return ids, spatial


def _as_multipolygons(src: np.ndarray, types: np.ndarray, present: np.ndarray, rows: np.ndarray, codes: list,
                      issues: _Issues) -> np.ndarray:
    """Polygons as MultiPolygons; from collections the polygons kept (reported); anything else rejected."""
    n = len(src)
    geoms = np.full(n, None, dtype=object)
    multi = present & (types == shapely.GeometryType.MULTIPOLYGON)
    geoms[multi] = src[multi]
    single = present & (types == shapely.GeometryType.POLYGON)
    if single.any():
        geoms[single] = shapely.multipolygons(src[single], indices=np.arange(int(single.sum())))
    other = np.flatnonzero(present & ~multi & ~single)
    if not len(other):
        return geoms
    parts, index = shapely.get_parts(src[other], return_index=True)
    polygonal = np.isin(shapely.get_type_id(parts), [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON])
    if polygonal.any():
        flat, sub = shapely.get_parts(parts[polygonal], return_index=True)
        owners = other[index[polygonal]][sub]
        uniq, dense = np.unique(owners, return_inverse=True)
        geoms[uniq] = shapely.multipolygons(flat, indices=dense)
    for i in other:
        if geoms[i] is None:
            issues.add(int(rows[i]), codes[i], ERROR, "geometry_type",
                       f"a {src[i].geom_type} is not a parcel: a Polygon or MultiPolygon is needed", "geometry")
        else:
            issues.add(int(rows[i]), codes[i], WARNING, "geometry_type",
                       "points or lines mixed into the geometry were dropped; the polygons are kept", "geometry")
    return geoms


def _check_location(src: np.ndarray, geoms: np.ndarray, keep: np.ndarray, rows: np.ndarray, codes: list,
                    srid: int, city: _City, report: ImportReport, issues: _Issues) -> None:
    """Reject parcels far from the districts (or not transformable), with the likely mistake named."""
    idx = np.flatnonzero(keep)
    if not len(idx):
        return
    coords, owner = shapely.get_coordinates(geoms[idx], return_index=True)
    broken = np.bincount(owner[~np.isfinite(coords).all(axis=1)], minlength=len(idx)) > 0
    bounds = shapely.bounds(geoms[idx])
    with np.errstate(invalid="ignore"):
        distance = city.extent.distance((bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2)
    distance[broken] = np.inf
    far = ~(distance <= city.extent.margin_m)
    if not far.any():
        return
    hinted = issues.counts["outside_city"]
    for j in np.flatnonzero(far):
        i = idx[j]
        x, y = shapely.get_coordinates(src[i])[0]
        hint = crs_mod.misplacement_hint(x, y, srid, city.srid, city.extent) if hinted < MAX_HINTS else None
        hinted += 1
        if hint:
            issues.hints[hint] += 1
        where = (f"{distance[j] / 1000:,.0f} km beyond the districts" if np.isfinite(distance[j])
                 else f"its coordinates are not valid in {crs_mod.describe(srid)}")
        message = f"the parcel lies far outside the city ({where}, read as {crs_mod.describe(srid)})"
        if srid in GEOGRAPHIC and not (abs(x) <= 180 and abs(y) <= 90):
            message += "; the coordinates are not degrees"
        issues.add(int(rows[i]), codes[i], ERROR, "outside_city", message + (f": {hint}" if hint else ""), "geometry")
        geoms[i] = None


def _repair(geoms: np.ndarray, keep: np.ndarray, rows: np.ndarray, codes: list, issues: _Issues) -> np.ndarray:
    """Repair the invalid geometries in place; returns the indexes of those (repaired or rejected)."""
    idx = np.flatnonzero(keep)
    if not len(idx):
        return idx
    invalid = idx[~shapely.is_valid(geoms[idx])]
    for i in invalid:
        reason = shapely.is_valid_reason(geoms[i])
        before = abs(_ring_area(geoms[i]))
        fixed = shapely.make_valid(geoms[i], method="structure", keep_collapsed=False)
        parts = [p for p in shapely.get_parts(fixed) if p.geom_type in ("Polygon", "MultiPolygon")]
        polys = [q for p in parts for q in shapely.get_parts(p)]
        if not polys or shapely.MultiPolygon(polys).area < MIN_AREA_M2:
            issues.add(int(rows[i]), codes[i], ERROR, "invalid_geometry",
                       f"invalid geometry ({reason}) cannot be repaired: nothing of it is an area", "geometry")
            geoms[i] = None
            continue
        geoms[i] = shapely.MultiPolygon(polys)
        issues.add(int(rows[i]), codes[i], WARNING, "repaired_geometry",
                   f"invalid geometry ({reason}) repaired with GEOS MakeValid (method 'structure'): area "
                   f"{before:,.2f} m² as drawn → {geoms[i].area:,.2f} m²", "geometry")
    return invalid


def _ring_area(geom: shapely.Geometry) -> float:
    """The area the rings enclose by the shoelace formula, as the drawing meant it (holes subtracted)."""
    total = 0.0
    for poly in shapely.get_parts(geom):
        for k, ring in enumerate([poly.exterior, *poly.interiors]):
            xy = np.asarray(ring.coords)
            a = 0.5 * abs(np.dot(xy[:-1, 0], xy[1:, 1]) - np.dot(xy[1:, 0], xy[:-1, 1]))
            total += a if k == 0 else -a
    return total


# ---------------------------------------------------------------------------------------------
# Checks over the whole file and the database


def _check_in_database(conn: Connection, plan: _Plan, city: _City, issues: _Issues, today: date,
                       allowed_districts: set[int] | None) -> None:
    # Most files repeat no code: counting the distinct codes (one sort) tells so in a quarter of the
    # time that grouping a million codes to name the rows takes.
    if conn.execute(text("SELECT count(DISTINCT code) < count(code) FROM import_rows")).scalar_one():
        for code, rows in conn.execute(text(
            "SELECT code, array_agg(row_no ORDER BY row_no) FROM import_rows WHERE code IS NOT NULL "
            "GROUP BY code HAVING count(*) > 1"
        )):
            for row in rows:
                others = ", ".join(str(r) for r in rows if r != row)
                issues.add(row, code, ERROR, "duplicate_code", f"code {code} appears {len(rows)} times in the "
                           f"file (also row {others})", "code")
    kind_given = "kind" in plan.columns
    for row, code, no_kind, no_geom, no_district in conn.execute(text(f"""
        SELECT s.row_no, s.code, {'s.kind IS NULL' if kind_given else 'true'}, s.geom IS NULL, s.district_id IS NULL
        FROM import_rows s LEFT JOIN parcels p ON p.code = s.code
        WHERE s.ok AND p.id IS NULL
          AND ({'s.kind IS NULL OR ' if kind_given else 'true OR '}s.geom IS NULL OR s.district_id IS NULL)
        ORDER BY s.row_no
    """)):
        if no_kind:
            issues.add(row, code, ERROR, "missing", "a new parcel needs its kind (类型: 房屋/土地); map a column or "
                       "set a default", "kind")
        if no_geom:
            issues.add(row, code, ERROR, "missing", "a new parcel needs a geometry", "geometry")
        elif no_district:
            issues.add(row, code, ERROR, "no_district", "the parcel lies in no district (and the file names none)",
                       "district")
    if allowed_districts is not None:
        for row, code in conn.execute(text("""
            SELECT s.row_no, s.code FROM import_rows s LEFT JOIN parcels p ON p.code = s.code
            WHERE s.ok AND (NOT coalesce(s.district_id, p.district_id) = ANY(:allowed)
                            OR NOT coalesce(p.district_id = ANY(:allowed), true))
        """), {"allowed": sorted(allowed_districts)}):
            issues.add(row, code, ERROR, "forbidden", "the parcel lies outside the districts this user may edit",
                       "district")
    if "stage" in plan.columns:
        _check_stage_moves(conn, plan, issues, today)
    if issues.rejected_rows:
        conn.execute(text("UPDATE import_rows SET ok = false WHERE row_no = ANY(:rows)"),
                     {"rows": sorted(issues.rejected_rows)})


def _check_stage_moves(conn: Connection, plan: _Plan, issues: _Issues, today: date) -> None:
    """Existing parcels whose stage the file changes: the workflow's rules apply as to an edit."""
    since = "s.stage_since" if "stage_since" in plan.columns else "NULL::date"
    target_date = " ".join(
        f"WHEN '{stage}' THEN s.{column}" for stage, column in workflow.DATE_COLUMNS.items() if column in plan.columns
    )
    target_sql = f"CASE s.stage {target_date} END" if target_date else "NULL::date"
    moves = conn.execute(text(f"""
        SELECT s.row_no, s.code, p.stage, s.stage, coalesce({since}, {target_sql}), p.stage_since,
               (SELECT count(*) FROM payments pm WHERE pm.parcel_id = p.id)
        FROM import_rows s JOIN parcels p ON p.code = s.code
        WHERE s.ok AND s.stage IS NOT NULL AND s.stage <> p.stage
    """)).all()
    accepted = []
    for row, code, from_stage, to_stage, on, stage_since, payments in moves:
        try:
            move = workflow.check_transition(from_stage, to_stage, may_go_back=False, reason=None,
                                             payments=payments, on=on or today, today=today, stage_since=stage_since)
        except (InvalidInput, Forbidden) as exc:
            issues.add(row, code, ERROR, "stage_move", f"stage {from_stage} → {to_stage}: {exc}", "stage")
            continue
        accepted.append({"row": row, "on": move.on})
    if accepted:
        conn.execute(text("UPDATE import_rows SET stage_move = true, stage_on = :on WHERE row_no = :row"), accepted)


# ---------------------------------------------------------------------------------------------
# Writing


def _bulk(conn: Connection, created: int) -> bool:
    """Load the new parcels with parcels' indexes and foreign keys set aside (gis.platform.bulk.deferred_indexes)?

    When the import at least doubles the table (a first load, typically), and only on a login that owns
    the tables: the command line's (gis import). The service's login, which the API's uploads use, owns
    nothing, so those keep the indexes up row by row. The set-aside locks parcels, their history and the
    districts against readers until the import commits; smaller imports keep the weaker lock.
    """
    if created < BULK_MIN_ROWS or not may_defer_indexes(conn, BULK_TABLES):
        return False
    return created >= conn.execute(text("SELECT count(*) FROM parcels")).scalar_one()


def _changed_sql(column: str) -> str:
    """SQL: does row s change parcel p's ``column``? (column names from the constants of this module)"""
    if column == "district_id":
        return ("s.district_id IS NOT NULL AND s.district_id <> p.district_id "
                "AND (NOT s.district_spatial OR g.geom_changed)")
    if column in ("floor_area_m2", "land_area_mu"):
        return f"s.{column} IS NOT NULL AND (p.{column} IS NULL OR abs(s.{column} - p.{column}) > " \
               f"1e-9 * greatest(1, abs(p.{column})))"
    return f"s.{column} IS NOT NULL AND s.{column} IS DISTINCT FROM p.{column}"


def _diff(conn: Connection, plan: _Plan, report: ImportReport) -> None:
    """Compare every accepted row that has a parcel of its code with it (table import_diff: those rows
    only, so a first load compares nothing) and count the outcome; the other accepted rows are new."""
    compared = [c for c in plan.columns if c != "stage"]
    flags = ", ".join(f"{_changed_sql(c)} AS ch_{c}" for c in compared)
    any_change = " OR ".join([f"ch_{c}" for c in compared] + ["geom_changed", "stage_move"])
    conn.execute(text(f"""
        CREATE TEMP TABLE import_diff ON COMMIT DROP AS
        SELECT x.*, ({any_change}) AS changed
        FROM (
            SELECT s.row_no, p.id AS parcel_id, s.stage_move, g.geom_changed, {flags}
            FROM import_rows s
            JOIN parcels p ON p.code = s.code
            CROSS JOIN LATERAL (SELECT s.geom IS NOT NULL AND NOT (s.geom = p.geom)
                                AND ST_HausdorffDistance(s.geom, p.geom) > :tolerance AS geom_changed) g
            WHERE s.ok
        ) x
    """), {"tolerance": GEOMETRY_TOLERANCE_M})
    conn.execute(text("ANALYZE import_diff"))
    attribute_cols = [c for c in compared if c not in FLAG_COLUMNS]
    counts = conn.execute(text(f"""
        SELECT (SELECT count(*) FROM import_rows WHERE ok) - count(*),
               count(*) FILTER (WHERE changed),
               count(*) FILTER (WHERE NOT changed),
               count(*) FILTER (WHERE changed AND ({' OR '.join(f'ch_{c}' for c in attribute_cols) or 'false'})),
               count(*) FILTER (WHERE changed AND ({' OR '.join(f'ch_{c}' for c in FLAG_COLUMNS if c in compared)
                                                    or 'false'})),
               count(*) FILTER (WHERE geom_changed),
               count(*) FILTER (WHERE stage_move)
        FROM import_diff
    """)).one()
    report.created, report.updated, report.unchanged = counts[0], counts[1], counts[2]
    report.changes = {k: v for k, v in zip(("created", "attributes", "flags", "geometry", "stage"),
                                           (counts[0], *counts[3:]), strict=True) if v}


def _change_json(columns: list[str]) -> str:
    """SQL: a jsonb object {column: {"from": old, "to": new}} of the changed ``columns``."""
    pieces = [
        f"CASE WHEN d.ch_{c} THEN jsonb_build_object('{c}', jsonb_build_object('from', p.{c}, 'to', s.{c})) "
        "ELSE '{}'::jsonb END"
        for c in columns
    ]
    return " || ".join(pieces) if pieces else "'{}'::jsonb"


def _write(conn: Connection, plan: _Plan, city: _City, report: ImportReport, actor: str, note: str, today: date,
           bulk: bool) -> None:
    """Events, updates, inserts (as _diff counted them), then the overlaps with the projects.

    ``bulk``: set the indexes and foreign keys of the parcels and their history aside meanwhile and
    build them again after (gis.platform.bulk.deferred_indexes).
    """
    with deferred_indexes(conn, BULK_TABLES) if bulk else nullcontext():
        _write_rows(conn, plan, city, report, actor, note, today)

    # Overlaps with the projects, for new parcels and moved ones: all at once when that is most of them.
    touched = report.created + report.changes.get("geometry", 0)
    if touched > REFRESH_ALL_ABOVE:
        refresh_projects(conn)
    elif touched:
        refresh_parcels(conn, conn.execute(text("""
            SELECT p.id FROM import_rows s JOIN parcels p ON p.code = s.code LEFT JOIN import_diff d USING (row_no)
            WHERE s.ok AND (d.row_no IS NULL OR d.geom_changed)
        """)).scalars().all())


def _write_rows(conn: Connection, plan: _Plan, city: _City, report: ImportReport, actor: str, note: str,
                today: date) -> None:
    """History events, updates of existing parcels, new parcels with their 'created' events.

    A statement whose rows _diff counted none of is not run (each would still join the whole file).
    """
    compared = [c for c in plan.columns if c != "stage"]
    params = {"actor": actor, "note": note, "today": today}
    stage_dates = {s: c for s, c in workflow.DATE_COLUMNS.items() if c in plan.columns}

    # History first: the events read the values before the update.
    attribute_cols = [c for c in compared if c not in FLAG_COLUMNS]
    moved_date = {c: s for s, c in stage_dates.items()}
    attr_json = " || ".join(
        [_change_json([c]) if c not in moved_date else
         f"CASE WHEN s.stage_move AND s.stage = '{moved_date[c]}' THEN '{{}}'::jsonb ELSE {_change_json([c])} END"
         for c in attribute_cols] or ["'{}'::jsonb"]
    )
    for kind, changes in (("attributes", attr_json),
                          ("flags", _change_json([c for c in FLAG_COLUMNS if c in compared]))):
        if not report.changes.get(kind):
            continue
        history.record_selected(conn, f"""
            SELECT parcel_id, :actor, '{kind}', NULL, NULL, changes, :note || ' 第' || row_no || '行'
            FROM (SELECT d.parcel_id, d.row_no, {changes} AS changes
                  FROM import_diff d JOIN import_rows s USING (row_no) JOIN parcels p ON p.id = d.parcel_id
                  WHERE d.changed) x
            WHERE changes <> '{{}}'::jsonb
        """, params)
    if report.changes.get("geometry"):
        _write_geometry_events(conn, params)
    if report.changes.get("stage"):
        _write_stage_events(conn, stage_dates, params)
    if report.updated:
        _update_parcels(conn, plan, compared, moved_date)
    if report.created:
        _insert_parcels(conn, plan, city, stage_dates, params, all_new=not (report.updated or report.unchanged))


def _write_geometry_events(conn: Connection, params: dict[str, Any]) -> None:
    """Moved parcels: the geometry before and after, and the areas."""
    history.record_selected(conn, """
        SELECT d.parcel_id, :actor, 'geometry', NULL, NULL,
               jsonb_build_object('geom', jsonb_build_object('from', ST_AsEWKT(p.geom), 'to', ST_AsEWKT(s.geom)),
                                  'area_m2', jsonb_build_object('from', round(ST_Area(p.geom)::numeric, 2),
                                                                'to', round(ST_Area(s.geom)::numeric, 2))),
               :note || ' 第' || d.row_no || '行'
        FROM import_diff d JOIN import_rows s USING (row_no) JOIN parcels p ON p.id = d.parcel_id
        WHERE d.geom_changed
    """, params)


def _update_parcels(conn: Connection, plan: _Plan, compared: list[str], moved_date: dict[str, str]) -> None:
    """Changed parcels take the file's values (and the dates of the stage moves), version + 1."""
    sets = []
    for c in compared:
        if c in moved_date:
            sets.append(f"{c} = CASE WHEN s.stage_move AND s.stage = '{moved_date[c]}' "
                        f"THEN coalesce(s.{c}, s.stage_on) WHEN d.ch_{c} THEN s.{c} ELSE p.{c} END")
        elif c == "stage_since":
            sets.append("stage_since = CASE WHEN s.stage_move THEN s.stage_on WHEN d.ch_stage_since THEN s.stage_since "
                        "ELSE p.stage_since END")
        else:
            sets.append(f"{c} = CASE WHEN d.ch_{c} THEN s.{c} ELSE p.{c} END")
    if "stage" in plan.columns:
        sets.append("stage = CASE WHEN s.stage_move THEN s.stage ELSE p.stage END")
        if "stage_since" not in plan.columns:
            sets.append("stage_since = CASE WHEN s.stage_move THEN s.stage_on ELSE p.stage_since END")
        for s, c in workflow.DATE_COLUMNS.items():
            if c not in plan.columns:
                sets.append(f"{c} = CASE WHEN s.stage_move AND s.stage = '{s}' THEN s.stage_on ELSE p.{c} END")
    sets.append("geom = CASE WHEN d.geom_changed THEN ST_Multi(s.geom) ELSE p.geom END")
    conn.execute(text(f"""
        UPDATE parcels p SET {', '.join(sets)}, version = p.version + 1, updated_at = now()
        FROM import_diff d JOIN import_rows s USING (row_no)
        WHERE p.id = d.parcel_id AND d.changed
    """))


def _insert_parcels(conn: Connection, plan: _Plan, city: _City, stage_dates: dict[str, str],
                    params: dict[str, Any], all_new: bool) -> None:
    """New parcels, each with its 'created' event; ``all_new``: every row of the file is one."""
    insert_cols = [c for c in plan.columns if c not in ("stage", "stage_since", "households", "holdout", "legacy")]
    stage_sql = "coalesce(s.stage, 'surveyed')" if "stage" in plan.columns else "'surveyed'"
    own_date = " ".join(f"WHEN '{s}' THEN s.{c}" for s, c in stage_dates.items())
    since_sql = ("coalesce(" + ("s.stage_since, " if "stage_since" in plan.columns else "")
                 + (f"CASE {stage_sql} {own_date} END, " if own_date else "") + ":today)")
    values = []
    for c in insert_cols:
        stage = next((s for s, col in workflow.DATE_COLUMNS.items() if col == c), None)
        values.append(f"CASE WHEN {stage_sql} = '{stage}' THEN coalesce(s.{c}, {since_sql}) ELSE s.{c} END"
                      if stage else f"s.{c}")
    for s, c in workflow.DATE_COLUMNS.items():
        if c not in plan.columns and c in city.parcel_columns:
            insert_cols.append(c)
            values.append(f"CASE WHEN {stage_sql} = '{s}' THEN {since_sql} END")
    households = "coalesce(s.households, 1)" if "households" in plan.columns else "1"
    holdout = "coalesce(s.holdout, false)" if "holdout" in plan.columns else "false"
    legacy = "coalesce(s.legacy, false)" if "legacy" in plan.columns else "false"
    history.record_selected(conn, "SELECT id, :actor, 'created', NULL, stage, NULL, :note FROM ins", params,
                            with_sql=f"""
        WITH ins AS (
            INSERT INTO parcels (code, {', '.join(insert_cols)}, stage, stage_since, households, holdout, legacy, geom)
            SELECT s.code, {', '.join(values)}, {stage_sql}, {since_sql}, {households}, {holdout}, {legacy},
                   ST_Multi(s.geom)
            FROM import_rows s
            -- New rows as found before any write (import_diff holds the rows with a parcel of their code):
            -- an anti-join with parcels would scan the very table this statement fills, and a planner that
            -- saw it empty would do so once per row. NOT EXISTS, not NOT IN: past work_mem, NOT IN would
            -- rescan import_diff for every row.
            WHERE s.ok{"" if all_new else " AND NOT EXISTS (SELECT FROM import_diff d WHERE d.row_no = s.row_no)"}
            RETURNING id, stage
        )""")


def _write_stage_events(conn: Connection, stage_dates: dict[str, str], params: dict[str, Any]) -> None:
    """Stage moves (checked by the workflow): from, to, and the dates they set."""
    date_case = " ".join(f"WHEN '{s}' THEN s.{c}" for s, c in stage_dates.items())
    moved_date_sql = f"CASE s.stage {date_case} END" if date_case else "NULL::date"
    date_from_case = " ".join(f"WHEN '{s}' THEN p.{c}" for s, c in workflow.DATE_COLUMNS.items())
    history.record_selected(conn, f"""
        SELECT d.parcel_id, :actor, 'stage', p.stage, s.stage,
               jsonb_build_object('stage', jsonb_build_object('from', p.stage, 'to', s.stage),
                                  'stage_since', jsonb_build_object('from', p.stage_since, 'to', s.stage_on))
               || jsonb_build_object(s.stage || '_on', jsonb_build_object(
                      'from', CASE s.stage {date_from_case} END, 'to', coalesce({moved_date_sql}, s.stage_on))),
               :note || ' 第' || d.row_no || '行'
        FROM import_diff d JOIN import_rows s USING (row_no) JOIN parcels p ON p.id = d.parcel_id
        WHERE d.stage_move
    """, params)


def report_json(report: ImportReport) -> str:
    """The import report as indented JSON text, Chinese kept as is (what ``--report FILE`` writes)."""
    return json.dumps(report.as_dict(), ensure_ascii=False, default=str, indent=2)
