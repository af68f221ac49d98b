"""Exporting any parcel list: CSV, XLSX, GeoJSON, GeoPackage, zipped Shapefile, FlatGeobuf, KML.

An export is rows plus a column spec. Rows are mappings (SQLAlchemy rows, dicts) holding each
column's ``key`` and, for the GIS formats, ``geom`` as WKB in the working CRS; ``query_rows``
streams them from a server-side cursor. Every format is written as the rows arrive, in batches,
so memory stays flat whatever the count: CSV and GeoJSON stream as bytes (straight into an HTTP
response), XLSX goes through XlsxWriter's constant-memory mode, and the GIS formats through one
GDAL dataset fed an Arrow stream (pyogrio.write_arrow), batch by batch.

Spreadsheets are for people: Chinese headers, Chinese values (房屋, 签约, 是/否), a totals row,
areas in m² and mu, dates as dates. GIS files are for software: field names are the column keys
(Shapefile: at most 10 bytes), values as stored, and the importer reads both back.
GeoJSON is RFC 7946 (EPSG:4326, right-hand rings, 9 decimals ≈ 0.1 mm), KML is EPSG:4326 too;
GeoPackage, Shapefile and FlatGeobuf are in the working CRS unless another is asked for.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyogrio
import shapely
from sqlalchemy import Connection, Engine, TextClause, text

from gis.domain.geometry import transformer
from gis.domain.privacy import mask_id_number, mask_name, mask_phone
from gis.domain.stages import KIND_LABELS_ZH, STAGE_LABELS_ZH
from gis.domain.tolerance import tolerance_sql
from gis.domain.workflow import DATE_COLUMNS
from gis.io import field_legend
from gis.io.fields import FIELDS, SHORT_DATE_NAMES
from gis.platform.config import DEFAULT_TIMEZONE, SQM_PER_MU
from gis.platform.errors import InvalidInput

BATCH_ROWS = 10_000
XLSX_MAX_ROWS = 1_048_576
GEOJSON_DECIMALS = 9
MASKS: dict[str, Callable[[Any], Any]] = {
    "owner_name": mask_name, "owner_id_number": mask_id_number, "owner_phone": mask_phone,
}
BOOL_LABELS = {True: "是", False: "否"}


@dataclass(frozen=True)
class Column:
    """One column of an export: ``key`` in each row, a Chinese ``label`` for spreadsheets."""

    key: str
    label: str
    type: str = "text"  # text | int | float | m2 | mu | share | date | datetime | bool
    total: bool = False  # summed in the totals row
    shp: str | None = None  # Shapefile field name (≤ 10 bytes) when the key is longer
    values: Mapping[Any, str] | None = None  # value → label in spreadsheets
    width: float | None = None  # spreadsheet column width (characters)

    @property
    def shp_name(self) -> str:
        return self.shp or self.key


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    media_type: str
    streams: bool  # written straight to the response; the others go through a temporary file
    driver: str | None = None


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("csv", ".csv", "text/csv; charset=utf-8", True),
    Format("geojson", ".geojson", "application/geo+json", True),
    Format("xlsx", ".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", False),
    Format("gpkg", ".gpkg", "application/geopackage+sqlite3", False, "GPKG"),
    Format("shp", ".shp.zip", "application/zip", False, "ESRI Shapefile"),
    Format("fgb", ".fgb", "application/vnd.flatgeobuf", False, "FlatGeobuf"),
    Format("kml", ".kml", "application/vnd.google-earth.kml+xml", False, "KML"),
)}

PARCEL_COLUMNS: tuple[Column, ...] = (
    Column("code", "地块编号", width=16),
    Column("kind", "类型", values=KIND_LABELS_ZH, width=6),
    Column("district_code", "片区代码", shp="district", width=10),
    Column("district_name", "片区", shp="dist_name", width=8),
    Column("owner_name", "权利人", width=10),
    Column("owner_id_number", "身份证号", shp="owner_id", width=20),
    Column("owner_phone", "联系电话", shp="phone", width=14),
    Column("households", "户数", "int", total=True),
    Column("floor_area_m2", "建筑面积(㎡)", "m2", total=True, shp="floor_m2"),
    Column("land_area_mu", "土地面积(亩)", "mu", total=True, shp="land_mu"),
    Column("area_m2", "图形面积(㎡)", "m2", total=True),
    Column("area_mu", "图形面积(亩)", "mu", total=True),
    Column("stage", "阶段", values=STAGE_LABELS_ZH, width=12),
    Column("stage_since", "阶段起始日期", "date", shp="stage_date"),
    Column("holdout", "钉子户", "bool"),
    Column("legacy", "历史遗留", "bool"),
    Column("holdout_note", "难点说明", shp="hold_note", width=30),
    *(Column(column, FIELDS[column].label, "date", shp=SHORT_DATE_NAMES[stage]) for stage, column in
      DATE_COLUMNS.items()),
    Column("version", "版本", "int"),
    Column("updated_at", "更新时间", "datetime", shp="updated"),
)
# Columns that analyses add to parcel lists (blockers, overlaps, inspections) — pick what applies.
EXTRA_COLUMNS: dict[str, Column] = {c.key: c for c in (
    Column("project_code", "项目", width=10, shp="project"),
    Column("overlap_m2", "占用面积(㎡)", "m2", total=True, shp="overlap_m2"),
    Column("overlap_mu", "占用面积(亩)", "mu", total=True, shp="overlap_mu"),
    Column("share", "占地块比例", "share"),
    Column("days_in_stage", "本阶段天数", "int", shp="days"),
    Column("distance_m", "距中线(m)", "float", shp="dist_m"),
    Column("compensation_yuan", "估算补偿(元)", "float", total=True, shp="comp_yuan"),
)}

_NUMBER_FORMATS = {"int": "0", "float": "#,##0.00", "m2": "#,##0.00", "mu": "#,##0.0000", "share": "0.0%",
                   "date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm"}
_CSV_FORMATS: dict[str, Callable[[Any], str]] = {"m2": "{:.2f}".format, "mu": "{:.4f}".format,
                                                 "share": "{:.4f}".format, "float": "{:.2f}".format}
_WIDTHS = {"int": 8, "float": 12, "m2": 13, "mu": 13, "share": 10, "date": 12, "datetime": 17, "bool": 8}
_ARROW = {"text": pa.string(), "int": pa.int64(), "float": pa.float64(), "m2": pa.float64(), "mu": pa.float64(),
          "share": pa.float64(), "date": pa.date32(), "bool": pa.bool_()}


# ---------------------------------------------------------------------------------------------
# Rows


class QueryRows:
    """A statement's rows read from a server-side cursor ``batch`` rows at a time.

    Iterating gives row mappings; the writers take whole batches (``batches``), column by column.
    With an Engine the rows are read on a connection of their own, opened on the first row and
    closed after the last: an HTTP response can stream them after its request's transaction ended.
    """

    def __init__(self, source: Engine | Connection, statement: TextClause, params: Mapping[str, Any] | None = None,
                 batch: int = BATCH_ROWS) -> None:
        self.source, self.statement, self.params, self.batch = source, statement, dict(params or {}), batch

    def batches(self) -> Iterator[tuple[list[str], list[tuple]]]:
        """(column names, rows as tuples) per fetch."""
        if isinstance(self.source, Engine):
            with self.source.connect() as conn:
                yield from QueryRows(conn, self.statement, self.params, self.batch).batches()
            return
        result = self.source.execution_options(stream_results=True).execute(self.statement, self.params)
        keys = list(result.keys())
        # The size is given explicitly: the yield_per execution option alone leaves partitions() whole.
        for part in result.yield_per(self.batch).partitions(self.batch):
            yield keys, part

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        for keys, part in self.batches():
            for row in part:
                yield dict(zip(keys, row, strict=True))


def query_rows(source: Engine | Connection, statement: TextClause, params: Mapping[str, Any] | None = None,
               batch: int = BATCH_ROWS) -> QueryRows:
    """The statement's rows, streamed from a server-side cursor (see QueryRows)."""
    return QueryRows(source, statement, params, batch)


def parcel_query(*, districts: Sequence[str] = (), stages: Sequence[str] = (), kind: str | None = None,
                 holdout: bool | None = None, codes: Sequence[str] = (), project_id: int | None = None,
                 tolerance: Mapping[str, float] | None = None) -> tuple[TextClause, dict[str, Any]]:
    """The parcel list for PARCEL_COLUMNS, filtered (district by code or name; ``project_id``: the parcels in
    that project's footprint beyond ``tolerance``, ``Tolerance.params``), in code order."""
    where = ["true"]
    params: dict[str, Any] = {"sqm_per_mu": SQM_PER_MU}
    if project_id is not None:
        where.append("EXISTS (SELECT FROM project_parcel_overlaps o WHERE o.parcel_id = p.id "
                     f"AND o.project_id = :project_id AND {tolerance_sql()})")
        params |= {"project_id": project_id, **(tolerance or {})}
    if districts:
        where.append("(d.code = ANY(:districts) OR d.name = ANY(:districts))")
        params["districts"] = list(districts)
    if stages:
        where.append("p.stage = ANY(:stages)")
        params["stages"] = list(stages)
    if kind:
        where.append("p.kind = :kind")
        params["kind"] = kind
    if holdout is not None:
        where.append("p.holdout = :holdout")
        params["holdout"] = holdout
    if codes:
        where.append("p.code = ANY(:codes)")
        params["codes"] = list(codes)
    dates = ", ".join(f"p.{c}" for c in DATE_COLUMNS.values())  # column names from constants
    statement = text(f"""
        SELECT p.id, p.code, p.kind, d.code AS district_code, d.name AS district_name,
               p.owner_name, p.owner_id_number, p.owner_phone, p.households, p.floor_area_m2, p.land_area_mu,
               ST_Area(p.geom) AS area_m2, ST_Area(p.geom) / :sqm_per_mu AS area_mu,
               p.stage, p.stage_since, p.holdout, p.legacy, p.holdout_note, {dates}, p.version, p.updated_at,
               ST_AsBinary(p.geom) AS geom
        FROM parcels p JOIN districts d ON d.id = p.district_id
        WHERE {' AND '.join(where)}
        ORDER BY p.code
    """)
    return statement, params


def export_filename(base: str, *parts: str | None, fmt: str, on: date) -> str:
    """``blockers_hsr_2026-11-26.xlsx``: the list, what it is about, the day."""
    clean = [re.sub(r"[^\w.-]+", "-", p.strip()).strip("-") for p in (base, *parts) if p and p.strip()]
    return "_".join([*clean, on.isoformat()]) + FORMATS[fmt].suffix


def content_disposition(filename: str) -> str:
    """RFC 6266 attachment header: an ASCII fallback and the UTF-8 name (Chinese project codes survive)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def check_format(fmt: str) -> Format:
    """The export format named ``fmt``; InvalidInput listing the formats otherwise."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}", "format")
    return FORMATS[fmt]


# ---------------------------------------------------------------------------------------------
# Writing


def _column_batches(rows: Iterable[Mapping[str, Any]], keys: Sequence[str],
                    size: int = BATCH_ROWS) -> Iterator[tuple[int, dict[str, list]]]:
    """(row count, key → values) per batch: a QueryRows' fetches as they come, other rows chunked."""
    if isinstance(rows, QueryRows):
        for names, part in rows.batches():
            if part:
                columns = dict(zip(names, map(list, zip(*part, strict=True)), strict=True))
                yield len(part), {k: columns.get(k) or [None] * len(part) for k in keys}
        return
    batch: list[Mapping[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield len(batch), {k: [r.get(k) for r in batch] for k in keys}
            batch = []
    if batch:
        yield len(batch), {k: [r.get(k) for r in batch] for k in keys}


@dataclass
class _Cells:
    """Column values as written: personal data masked, numbers as floats, timestamps in the city's time."""

    reveal_personal: bool
    tz: ZoneInfo

    def values(self, col: Column, values: list) -> list:
        if not self.reveal_personal and col.key in MASKS:
            mask = MASKS[col.key]
            return [None if v is None else mask(v) for v in values]
        if col.type == "datetime":
            return [v.astimezone(self.tz).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v
                    for v in values]
        if col.type in ("float", "m2", "mu", "share") and any(isinstance(v, Decimal) for v in values):
            return [None if v is None else float(v) for v in values]
        return values

    @staticmethod
    def labels(col: Column, values: list) -> list:
        """The values as a person reads them in a spreadsheet."""
        if col.values is not None:
            table = col.values
            return [None if v is None else table.get(v, v) for v in values]
        if col.type == "bool":
            return [None if v is None else BOOL_LABELS[bool(v)] for v in values]
        return values


class _Totals:
    def __init__(self, columns: Sequence[Column], unit: str = "宗") -> None:
        self.columns = columns
        self.unit = unit
        self.sums = [(0 if c.type == "int" else 0.0) if c.total else None for c in columns]
        self.count = 0

    def add(self, n: int, columns: Sequence[list]) -> None:
        self.count += n
        for i, values in enumerate(columns):
            if self.sums[i] is not None:
                self.sums[i] += sum(v for v in values if v is not None)

    @property
    def label(self) -> str:
        return f"合计（{self.count} {self.unit}）"


# Spreadsheet formula injection (OWASP "CSV Injection"): Excel and LibreOffice run a cell that starts with
# one of these as a formula (=HYPERLINK(...), +cmd|..., @SUM(...)). Text cells that do are written with a
# leading apostrophe, which both show as text. A text cell that is just a number ("-3.5") cannot be a
# formula and stays as it is, and so do the typed number columns.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_safe(value: Any) -> Any:
    """A CSV text cell that a spreadsheet will not run as a formula; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _csv_texts(col: Column, values: list) -> list[str]:
    fmt = _CSV_FORMATS.get(col.type)
    if fmt is not None:
        return ["" if v is None else fmt(v) for v in values]
    if col.type == "datetime":
        return ["" if v is None else v.strftime("%Y-%m-%d %H:%M:%S") for v in values]
    if col.type == "date":
        return ["" if v is None else v.isoformat() for v in values]
    return ["" if v is None else csv_safe(str(v)) for v in values]


def stream_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], *, reveal_personal: bool = False,
               tz: str = DEFAULT_TIMEZONE, progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """UTF-8 with a byte-order mark (Excel then reads the Chinese right), CRLF lines, a totals row."""
    cells = _Cells(reveal_personal, ZoneInfo(tz))
    totals = _Totals(columns)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([c.label for c in columns])
    yield "\ufeff".encode() + buf.getvalue().encode("utf-8")
    for n, batch in _column_batches(rows, [c.key for c in columns]):
        buf.seek(0)
        buf.truncate()
        raw = [cells.values(c, batch[c.key]) for c in columns]
        totals.add(n, raw)
        writer.writerows(zip(*(_csv_texts(c, cells.labels(c, v)) for c, v in zip(columns, raw, strict=True)),
                             strict=True))
        yield buf.getvalue().encode("utf-8")
        if progress:
            progress(n)
    buf.seek(0)
    buf.truncate()
    writer.writerow([totals.label if i == 0 else _csv_texts(c, [totals.sums[i]])[0] for i, c in enumerate(columns)])
    yield buf.getvalue().encode("utf-8")


def _geometries(wkb: list, srid: int, target: int) -> np.ndarray:
    """The geometries (WKB in ``srid``) as shapely geometries in ``target``."""
    geoms = shapely.from_wkb(np.array([None if g is None else bytes(g) for g in wkb], dtype=object))
    if target != srid:
        t = transformer(srid, target)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
    return geoms


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def stream_geojson(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], *, srid: int,
                   reveal_personal: bool = False, tz: str = DEFAULT_TIMEZONE,
                   progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """An RFC 7946 FeatureCollection, one feature per line, feature ``id`` the parcel code."""
    cells = _Cells(reveal_personal, ZoneInfo(tz))
    keys = [c.key for c in columns]
    yield b'{"type": "FeatureCollection", "features": [\n'
    first = True
    for n, batch in _column_batches(rows, [*keys, "geom"]):
        geoms = _geometries(batch["geom"], srid, 4326)
        geoms = shapely.orient_polygons(geoms, exterior_cw=False)
        geoms = shapely.transform(geoms, lambda xy: np.round(xy, GEOJSON_DECIMALS))
        texts = shapely.to_geojson(geoms)
        values = [[_json_value(v) for v in cells.values(c, batch[c.key])] for c in columns]
        ids = batch.get("code") or [None] * n
        out = []
        for i, row in enumerate(zip(*values, strict=True)):
            body = json.dumps({"type": "Feature", "id": ids[i], "properties": dict(zip(keys, row, strict=True))},
                              ensure_ascii=False)
            out.append(("" if first else ",\n") + body[:-1] + ', "geometry": ' + (texts[i] or "null") + "}")
            first = False
        yield "".join(out).encode("utf-8")
        if progress:
            progress(n)
    yield b"\n]}\n"


@dataclass(frozen=True)
class Sheet:
    """One worksheet of a workbook: its title (≤ 31 characters), rows and columns."""

    title: str
    rows: Iterable[Mapping[str, Any]]
    columns: Sequence[Column]
    unit: str = "宗"  # what a row is, in the totals row: 合计（12 宗）


def write_xlsx(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], path: Path, *,
               reveal_personal: bool = False, title: str = "地块清单", tz: str = DEFAULT_TIMEZONE,
               progress: Callable[[int], None] | None = None, on: date | None = None) -> int:
    """A workbook for meetings: Chinese headers, frozen header row, filter, totals row, print set-up.

    ``on``, the day the list is of, is the workbook's creation date: the same list gives the same bytes,
    whether from the API or the command line."""
    return write_xlsx_sheets([Sheet(title, rows, columns)], path, reveal_personal=reveal_personal, tz=tz,
                             progress=progress, on=on)[0]


def write_xlsx_sheets(sheets: Sequence[Sheet], path: Path, *, reveal_personal: bool = False,
                      tz: str = DEFAULT_TIMEZONE, progress: Callable[[int], None] | None = None,
                      on: date | None = None) -> list[int]:
    """A workbook of several lists, one sheet each, laid out as ``write_xlsx`` lays out one; returns each
    sheet's row count."""
    import xlsxwriter

    cells = _Cells(reveal_personal, ZoneInfo(tz))
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                           "strings_to_formulas": False, "strings_to_urls": False})
    try:
        if on is not None:
            book.set_properties({"created": datetime.combine(on, datetime.min.time())})
        styles = {
            "header": book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "align": "center",
                                       "valign": "vcenter", "text_wrap": True}),
            "numbers": {t: book.add_format({"num_format": f}) for t, f in _NUMBER_FORMATS.items()},
            "totals": {t: book.add_format({"num_format": f, "bold": True, "top": 1})
                       for t, f in _NUMBER_FORMATS.items()},
            "total_label": book.add_format({"bold": True, "top": 1}),
        }
        titles: set[str] = set()
        counts = []
        for spec in sheets:
            name = re.sub(r"[\[\]:*?/\\]", "-", spec.title)[:31]
            while name in titles:  # Excel refuses two sheets of one name
                name = name[:28] + f"-{len(titles)}"
            titles.add(name)
            counts.append(_write_sheet(book.add_worksheet(name), spec, cells, styles, progress))
    finally:
        book.close()
    return counts


def _write_sheet(sheet: Any, spec: Sheet, cells: _Cells, styles: dict[str, Any],
                 progress: Callable[[int], None] | None) -> int:
    import xlsxwriter

    columns = spec.columns
    totals = _Totals(columns, spec.unit)
    for i, c in enumerate(columns):
        sheet.set_column(i, i, c.width or _WIDTHS.get(c.type, 12))
    sheet.set_row(0, 30)
    sheet.write_row(0, 0, [c.label for c in columns], styles["header"])
    sheet.freeze_panes(1, 0)
    writers = [_xlsx_writer(sheet, c, styles["numbers"]) for c in columns]
    r = 0
    for n, batch in _column_batches(spec.rows, [c.key for c in columns]):
        if r + n >= XLSX_MAX_ROWS - 1:
            raise InvalidInput(f"an Excel sheet holds at most {XLSX_MAX_ROWS - 2} parcels: export this list "
                               "as CSV, GeoPackage or FlatGeobuf", "format")
        raw = [cells.values(c, batch[c.key]) for c in columns]
        totals.add(n, raw)
        shown = [cells.labels(c, v) for c, v in zip(columns, raw, strict=True)]
        for k, row in enumerate(zip(*shown, strict=True)):
            for i, value in enumerate(row):
                if value is not None:
                    writers[i](r + 1 + k, i, value)
        r += n
        if progress:
            progress(n)
    last = r + 1
    sheet.write_string(last, 0, totals.label, styles["total_label"])
    for i, c in enumerate(columns):
        if i and c.total:
            ref = xlsxwriter.utility.xl_range(1, i, max(r, 1), i)
            sheet.write_formula(last, i, f"=SUBTOTAL(9,{ref})", styles["totals"].get(c.type), totals.sums[i])
    sheet.autofilter(0, 0, max(r, 1), len(columns) - 1)
    sheet.set_landscape()
    sheet.repeat_rows(0)
    sheet.fit_to_pages(1, 0)
    return totals.count


def _xlsx_writer(sheet: Any, col: Column, formats: dict) -> Callable[[int, int, Any], Any]:
    """The XlsxWriter call for a column's cells: strings, numbers with the column's format, real dates."""
    fmt = formats.get(col.type)
    if col.values is not None or col.type in ("text", "bool"):
        return lambda r, i, v: sheet.write_string(r, i, str(v))
    if col.type == "date":
        return lambda r, i, v: sheet.write_datetime(r, i, datetime.combine(v, datetime.min.time()), fmt)
    if col.type == "datetime":
        return lambda r, i, v: sheet.write_datetime(r, i, v, fmt)
    return lambda r, i, v: sheet.write_number(r, i, v, fmt)


def _arrow_type(col: Column, driver: str) -> pa.DataType:
    if col.type == "datetime":
        return pa.string() if driver in ("ESRI Shapefile", "KML") else pa.timestamp("s")
    return _ARROW.get(col.type, pa.string())


def write_vector(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], fmt: str, path: Path, *, srid: int,
                 crs: int | None = None, reveal_personal: bool = False, layer: str = "parcels",
                 tz: str = DEFAULT_TIMEZONE, progress: Callable[[int], None] | None = None,
                 geometry_type: str = "MultiPolygon") -> int:
    """GeoPackage, Shapefile (a folder's .shp, .shx, .dbf, .prj, .cpg), FlatGeobuf or KML at ``path``; every
    ``geom`` of the rows is a ``geometry_type`` (parcels' multipolygons unless said)."""
    driver = FORMATS[fmt].driver
    target = 4326 if fmt == "kml" else (crs or srid)
    cells = _Cells(reveal_personal, ZoneInfo(tz))
    # each column's field, then its Chinese labels' field where it holds codes (gis.io.field_legend)
    plan = [(c, False) for c in columns] + [(c, True) for c in columns if field_legend.has_labels(c)]
    plan.sort(key=lambda item: list(columns).index(item[0]))
    fields = [pa.field(field_legend.label_field_name(c, fmt), pa.string()) if zh else
              pa.field(field_legend.field_name(c, fmt), _arrow_type(c, driver)) for c, zh in plan]
    if fmt == "kml":
        fields.append(pa.field("Name", pa.string()))  # the placemark's name: the parcel code
    schema = pa.schema([*fields, pa.field("geometry", pa.binary())])
    count = 0

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal count
        for n, batch in _column_batches(rows, [c.key for c in columns] + ["geom"]):
            arrays = []
            for (c, zh), f in zip(plan, fields, strict=False):
                if zh:
                    arrays.append(pa.array([None if v is None else str(v) for v in cells.labels(c, batch[c.key])],
                                           type=pa.string()))
                    continue
                values = cells.values(c, batch[c.key])
                if f.type == pa.string():
                    values = [None if v is None else (v.isoformat(sep=" ") if isinstance(v, datetime) else str(v))
                              for v in values]
                arrays.append(pa.array(values, type=f.type))
            if fmt == "kml":
                arrays.append(pa.array(batch.get("code") or [None] * n, type=pa.string()))
            if target == srid:
                wkb = [None if g is None else bytes(g) for g in batch["geom"]]
            else:
                wkb = list(shapely.to_wkb(_geometries(batch["geom"], srid, target)))
            arrays.append(pa.array(wkb, type=pa.binary()))
            count += n
            if progress:
                progress(n)
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    options = {"ENCODING": "UTF-8"} if fmt == "shp" else {}
    reader = pa.RecordBatchReader.from_batches(schema, batches())
    pyogrio.write_arrow(reader, str(path), layer=layer, driver=driver, geometry_name="geometry",
                        geometry_type=geometry_type, crs=f"EPSG:{target}", layer_options=options)
    if fmt == "gpkg":
        field_legend.write_gpkg_aliases(path, layer, field_legend.legend(columns, fmt))
    return count


def stream_export(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], fmt: str, *, srid: int,
                  reveal_personal: bool = False, tz: str = DEFAULT_TIMEZONE,
                  progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """A streaming format's bytes as the rows arrive (``FORMATS[fmt].streams``: CSV or GeoJSON), for a response,
    standard output or a file alike."""
    if fmt == "csv":
        return stream_csv(rows, columns, reveal_personal=reveal_personal, tz=tz, progress=progress)
    if fmt == "geojson":
        return stream_geojson(rows, columns, srid=srid, reveal_personal=reveal_personal, tz=tz, progress=progress)
    raise InvalidInput(f"{fmt} is written to a file, not streamed; streamed formats: csv, geojson", "format")


def write_export(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], fmt: str, path: Path | str, *,
                 srid: int, crs: int | None = None, reveal_personal: bool = False, title: str = "地块清单",
                 layer: str = "parcels", tz: str = DEFAULT_TIMEZONE,
                 progress: Callable[[int], None] | None = None, on: date | None = None,
                 geometry_type: str = "MultiPolygon") -> int:
    """Write the rows to the file ``path`` in ``fmt``; returns the number of rows written. ``on``: the day the
    list is of (an XLSX's creation date); ``geometry_type``: of every row's ``geom`` (write_vector)."""
    check_format(fmt)
    path = Path(path)
    if FORMATS[fmt].streams:
        count = 0

        def counted(n: int) -> None:
            nonlocal count
            count += n
            if progress:
                progress(n)

        stream = stream_export(rows, columns, fmt, srid=srid, reveal_personal=reveal_personal, tz=tz,
                               progress=counted)
        with path.open("wb") as fh:
            for chunk in stream:
                fh.write(chunk)
        return count
    if fmt == "xlsx":
        return write_xlsx(rows, columns, path, reveal_personal=reveal_personal, title=title, tz=tz,
                          progress=progress, on=on)
    if fmt != "shp":
        path.unlink(missing_ok=True)
        return write_vector(rows, columns, fmt, path, srid=srid, crs=crs, reveal_personal=reveal_personal,
                            layer=layer, tz=tz, progress=progress, geometry_type=geometry_type)
    folder = Path(tempfile.mkdtemp(prefix="pb-shp-"))
    try:
        stem = Path(path.name.removesuffix(".zip")).stem or layer
        count = write_vector(rows, columns, fmt, folder / f"{stem}.shp", srid=srid, crs=crs,
                             reveal_personal=reveal_personal, layer=stem, tz=tz, progress=progress,
                             geometry_type=geometry_type)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(folder.iterdir()):
                archive.write(part, part.name)
            archive.writestr(f"{stem}_字段说明.tsv", field_legend.sidecar_text(field_legend.legend(columns, fmt)))
        return count
    finally:
        shutil.rmtree(folder, ignore_errors=True)
