"""Reading parcel files: vector formats through GDAL (pyogrio, in Arrow batches), CSV and XLSX by hand.

Row numbers are what a person finds in the file: the feature's position (1 = first) in vector
files, the spreadsheet row (the header is row 1) in CSV and XLSX.

Shapefile attribute tables come in the code page of whoever wrote them. A ``.cpg`` file names it and
GDAL honours it; without one, Chinese tables are usually GBK, so the ``.dbf`` text is tried as
strict UTF-8 and, failing that, read as GB18030 (a superset of GBK and GB2312).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely

from gis.io.archives import Extraction, check_directory, check_zip_file
from gis.platform.errors import InvalidInput

VECTOR_FORMATS = {".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson", ".fgb": "fgb", ".kml": "kml",
                  ".kmz": "kml", ".shp": "shp", ".dxf": "dxf"}
TABLE_FORMATS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx"}
ENCODING_SAMPLE_BYTES = 4 * 1024 * 1024
_ARROW_DATES = {pa.date32(): pd.ArrowDtype(pa.date32())}


@dataclass
class Batch:
    rows: np.ndarray  # row numbers as a person finds them in the file
    attrs: pd.DataFrame  # the file's columns, as read
    geoms: np.ndarray | None  # shapely geometries in the file's CRS; None when the file has none
    wkb: pa.BinaryArray | None = None  # vector files: the geometries as the file stores them (WKB)


@dataclass
class Source:
    path: Path
    format: str
    columns: list[str]
    crs_text: str | None = None  # as the file states it
    encoding: str | None = None
    count: int | None = None
    layer: str | None = None
    notes: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None  # CSV/XLSX: the whole sheet, with its row numbers in ``rows``
    rows: np.ndarray | None = None

    @property
    def is_table(self) -> bool:
        return self.format in ("csv", "xlsx")

    def batches(self, size: int) -> Iterator[Batch]:
        """Vector files only: the features in batches of ``size``."""
        kwargs: dict[str, Any] = {"layer": self.layer, "batch_size": size, "use_pyarrow": True}
        if self.encoding:
            kwargs["encoding"] = self.encoding
        start = 1
        with pyogrio.raw.open_arrow(str(self.path), **kwargs) as (meta, reader):
            geometry_name = meta["geometry_name"] or "wkb_geometry"
            for record_batch in reader:
                wkb = geoms = None
                if geometry_name in record_batch.schema.names:
                    wkb = _binary(record_batch.column(geometry_name))
                    record_batch = record_batch.drop_columns([geometry_name])
                    geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False), on_invalid="ignore")
                frame = record_batch.to_pandas(types_mapper=_ARROW_DATES.get)  # dates stay Arrow dates
                rows = np.arange(start, start + len(frame))
                start += len(frame)
                yield Batch(rows, frame.reset_index(drop=True), geoms, wkb)


def _binary(column: pa.Array) -> pa.BinaryArray:
    """A WKB column as plain Arrow binary (GDAL may hand it over as an extension type or large binary)."""
    if isinstance(column.type, pa.ExtensionType):
        column = column.storage
    return column if column.type == pa.binary() else column.cast(pa.binary())


def detect_format(path: Path) -> str:
    """The reader for a file, from its name: zip, a vector format or a table format; InvalidInput for any other
    suffix."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    suffix = path.suffix.lower()
    if suffix in VECTOR_FORMATS:
        return VECTOR_FORMATS[suffix]
    if suffix in TABLE_FORMATS:
        return TABLE_FORMATS[suffix]
    known = ", ".join(sorted({*VECTOR_FORMATS, *TABLE_FORMATS, ".zip"}))
    raise InvalidInput(f"unsupported file type {path.suffix or '(none)'!r}; accepted: {known}", "file")


@contextmanager
def unpacked(path: Path) -> Iterator[Path]:
    """The dataset itself, or the one a zip holds, unpacked into a temporary folder for the duration."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no such file: {path.name}", "file")
    if path.stat().st_size == 0:
        raise InvalidInput("the file is empty (0 bytes)", "file")
    if detect_format(path) != "zip" and path.suffix.lower() != ".kmz":  # a KMZ is a zipped KML: unpacked here too
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="pb-import-"))
    try:
        yield _unzip(path, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def open_source(
    path: Path, *, layer: str | None = None, sheet: str | None = None, encoding: str | None = None
) -> Iterator[Source]:
    """Open a parcel file (a zip is unpacked into a temporary folder for the duration)."""
    with unpacked(path) as inner:
        yield _open(inner, detect_format(inner), layer=layer, sheet=sheet, encoding=encoding)


def _unzip(path: Path, folder: Path) -> Path:
    """Extract the one dataset a zip holds; members get safe names (no paths, no odd encodings). The zip's
    directory is checked against ``gis.io.archives.ZIP_LIMITS`` first, and the bytes written while extracting."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InvalidInput(f"{path.name} is not a valid zip file", "file") from None
    with archive:
        members = [m for m in check_directory(archive)
                   if not m.is_dir() and not Path(m.filename).name.startswith(".")]
        by_stem: dict[str, list[zipfile.ZipInfo]] = {}
        for m in members:
            name = Path(m.filename).name
            by_stem.setdefault(name.split(".", 1)[0], []).append(m)
        datasets = [m for m in members if Path(m.filename).suffix.lower() in VECTOR_FORMATS | TABLE_FORMATS]
        if len(datasets) != 1:
            found = ", ".join(Path(m.filename).name for m in datasets) or "none"
            raise InvalidInput(f"the zip must hold exactly one dataset (a .shp with its files, or one .gpkg, "
                               f".geojson …); found {found}", "file")
        main = datasets[0]
        stem = Path(main.filename).name.split(".", 1)[0]
        extraction = Extraction()
        for m in by_stem[stem] if Path(main.filename).suffix.lower() == ".shp" else [main]:
            suffix = "".join(Path(Path(m.filename).name).suffixes[-1:]).lower()
            extraction.extract_member(archive, m, folder / f"data{suffix}")
        return folder / f"data{Path(main.filename).suffix.lower()}"


def _open(path: Path, fmt: str, *, layer: str | None, sheet: str | None, encoding: str | None) -> Source:
    if fmt == "csv":
        return _open_csv(path, encoding)
    if fmt == "xlsx":
        return _open_xlsx(path, sheet)
    notes: list[str] = []
    if fmt == "shp":
        check_shapefile_complete(path)
    if fmt == "shp" and encoding is None:
        encoding, note = shapefile_encoding(path)
        if note:
            notes.append(note)
    layer = _pick_layer(path, layer)
    try:
        info = pyogrio.read_info(str(path), layer=layer, encoding=encoding)
    except pyogrio.errors.DataSourceError as exc:
        raise InvalidInput(f"cannot read {path.name}: {exc}", "file") from None
    count = info.get("features")
    return Source(
        path=path, format=fmt, columns=[str(c) for c in info["fields"]], crs_text=info.get("crs"),
        encoding=encoding, count=count if count is not None and count >= 0 else None, layer=layer, notes=notes,
    )


def check_shapefile_complete(shp: Path) -> None:
    """Refuse a Shapefile cut short: GDAL reads what is there and the rest of the parcels would be lost without
    a word. The .shp header states the file's length; the index (.shx) where each record ends; the table
    (.dbf) how many records it holds. All must agree with the files as they are."""
    size = shp.stat().st_size
    with shp.open("rb") as f:
        header = f.read(100)
    if len(header) < 100 or int.from_bytes(header[:4], "big") != 9994:
        raise InvalidInput(f"{shp.name} is not a Shapefile (.shp) or its header is cut short", "file")
    stated = int.from_bytes(header[24:28], "big") * 2  # in 16-bit words
    if stated != size:
        raise InvalidInput(f"the .shp file is {size} bytes but its header says {stated}: it is cut short (or "
                           "padded); nothing was read, send the whole file", "file")
    shx = _sibling(shp, ".shx")
    records = None
    if shx is not None:
        index = shx.read_bytes()
        records = max(0, (len(index) - 100) // 8)
        if records:
            offset, length = struct.unpack(">ii", index[-8:])
            if (offset + 4 + length) * 2 > size:
                raise InvalidInput(f"the .shp file ends before the {records}th record its index (.shx) lists: it is "
                                   "cut short; nothing was read", "file")
    dbf = _sibling(shp, ".dbf")
    if dbf is not None and records is not None:
        with dbf.open("rb") as f:
            head = f.read(12)
        if len(head) == 12:
            rows = struct.unpack("<I", head[4:8])[0]
            header_len, row_len = struct.unpack("<HH", head[8:12])
            if rows != records or dbf.stat().st_size < header_len + rows * row_len:
                raise InvalidInput(f"the Shapefile's parts disagree: the index (.shx) lists {records} records, the "
                                   f"table (.dbf) {rows}, or the table is cut short; nothing was read", "file")


def _sibling(path: Path, suffix: str) -> Path | None:
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.is_file():
            return candidate
    return None


def _pick_layer(path: Path, layer: str | None) -> str | None:
    try:
        layers = pyogrio.list_layers(str(path))
    except pyogrio.errors.DataSourceError as exc:
        raise InvalidInput(f"cannot read {path.name}: {exc}", "file") from None
    names = [str(name) for name, _gtype in layers]
    if layer is not None:
        if layer not in names:
            raise InvalidInput(f"no layer {layer!r} in the file; layers: {', '.join(names)}", "layer")
        return layer
    polygonal = [str(name) for name, gtype in layers if gtype and "polygon" in str(gtype).lower()]
    if len(names) == 1:
        return names[0]
    if len(polygonal) == 1:
        return polygonal[0]
    raise InvalidInput(f"the file has several layers ({', '.join(names)}): name one (--layer)", "layer")


def shapefile_encoding(shp: Path) -> tuple[str | None, str | None]:
    """(encoding to read the .dbf with, a note for the report); (None, note) lets GDAL use the .cpg."""
    for cpg in (shp.with_suffix(".cpg"), shp.with_suffix(".CPG")):
        if cpg.exists():
            return None, f"code page from {cpg.name}: {cpg.read_text(errors='replace').strip()}"
    dbf = next((p for p in (shp.with_suffix(".dbf"), shp.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        raise InvalidInput(f"{shp.name} comes without its .dbf attribute table", "file")
    sample = _dbf_text_sample(dbf)
    if sample.isascii():
        return None, None
    try:
        sample.decode("utf-8")
        return "UTF-8", "no .cpg: the attribute table reads as UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("gb18030")
        return "GB18030", "no .cpg: the attribute table is not UTF-8; read as GBK/GB18030"
    except UnicodeDecodeError:
        return "ISO-8859-1", "no .cpg: the attribute table is neither UTF-8 nor GBK; read as Latin-1"


def _dbf_text_sample(dbf: Path) -> bytes:
    """The field names and whole records from the start of a .dbf (never a character cut in two)."""
    with dbf.open("rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            raise InvalidInput(f"{dbf.name} is not a dBASE table", "file")
        header_len, record_len = struct.unpack("<HH", head[8:12])
        fields = fh.read(max(header_len - 32, 0))
        records = fh.read(max(record_len, 1) * max(ENCODING_SAMPLE_BYTES // max(record_len, 1), 1))
    names = b"".join(fields[i : i + 11].split(b"\0", 1)[0] for i in range(0, len(fields) - 1, 32))
    return names + records


# ---------------------------------------------------------------------------------------------
# Spreadsheets


def _decode_text(raw: bytes, encoding: str | None) -> tuple[str, str]:
    if encoding:
        return raw.decode(encoding), encoding
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "UTF-8"
    try:
        return raw.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "GB18030"
    except UnicodeDecodeError:
        raise InvalidInput("the CSV file is neither UTF-8 nor GBK text; save it as CSV UTF-8", "file") from None


def _open_csv(path: Path, encoding: str | None) -> Source:
    text, encoding = _decode_text(path.read_bytes(), encoding)
    sample = text[:64 * 1024]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, na_values=[""],
                        skip_blank_lines=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    rows = np.arange(2, len(frame) + 2)
    return _table_source(path, "csv", frame, rows, encoding)


def _open_xlsx(path: Path, sheet: str | None) -> Source:
    from openpyxl import load_workbook

    check_zip_file(path, "the workbook")  # an XLSX is a zip: its directory is checked before openpyxl unpacks it
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a bad file
        raise InvalidInput(f"cannot read {path.name} as an Excel workbook: {exc}", "file") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise InvalidInput(f"no sheet {sheet!r}; sheets: {', '.join(book.sheetnames)}", "sheet")
        ws = book[sheet] if sheet else book.worksheets[0]
        values = ws.iter_rows(values_only=True)
        header, header_row = None, 0
        for number, row in enumerate(values, start=1):  # the first non-empty row is the header
            if any(v not in (None, "") for v in row):
                header, header_row = row, number
                break
        if header is None:
            raise InvalidInput(f"sheet {ws.title!r} is empty", "sheet")
        width = max(i + 1 for i, v in enumerate(header) if v not in (None, ""))
        columns = [str(v).strip() if v not in (None, "") else f"column_{i + 1}" for i, v in enumerate(header[:width])]
        data = [tuple(row[:width]) + (None,) * (width - len(row)) for row in values]
    finally:
        book.close()
    frame = pd.DataFrame.from_records(data, columns=columns) if data else pd.DataFrame(columns=columns)
    frame = frame.astype(object)
    rows = np.arange(header_row + 1, header_row + 1 + len(frame))
    return _table_source(path, "xlsx", frame, rows, None, layer=ws.title)


def _table_source(path: Path, fmt: str, frame: pd.DataFrame, rows: np.ndarray, encoding: str | None,
                  layer: str | None = None) -> Source:
    if len(set(frame.columns)) != len(frame.columns):
        dupes = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
        raise InvalidInput(f"the header names these columns more than once: {', '.join(dupes)}", "file")
    empty = frame.isna().all(axis=1).to_numpy()
    return Source(path=path, format=fmt, columns=list(frame.columns), encoding=encoding, count=int((~empty).sum()),
                  layer=layer, table=frame[~empty].reset_index(drop=True), rows=rows[~empty])


_EWKT = re.compile(r"^\s*SRID=(\d+)\s*;\s*(.*)$", re.I | re.S)


def wkt_geometries(values: pd.Series) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """(geometries, unreadable mask, SRIDs named by EWKT prefixes) of a WKT/EWKT column."""
    srids: set[int] = set()
    texts = np.full(len(values), None, dtype=object)
    for i, v in enumerate(values.to_numpy()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip():
            continue
        text = str(v)
        match = _EWKT.match(text)
        if match:
            srids.add(int(match[1]))
            text = match[2]
        texts[i] = text
    geoms = shapely.from_wkt(texts, on_invalid="ignore")
    bad = shapely.is_missing(geoms) & (texts != None)  # noqa: E711 - elementwise
    return geoms, bad, srids


@dataclass
class VertexTable:
    """A boundary-point table grouped into parcels: one row per parcel (its first row)."""

    first_index: np.ndarray  # index into the table of each parcel's first row
    parcel_of_row: np.ndarray  # for each table row, its parcel
    rings: list[list[np.ndarray]]  # per parcel, its rings' coordinate arrays (first ring the outer one)
    scattered: dict[int, list[int]]  # parcel → row numbers, for codes whose rows are not together
    too_few: np.ndarray  # bool per parcel: a ring with fewer than 3 distinct points


def group_vertices(codes: pd.Series, xy: np.ndarray, rows: np.ndarray, point_no: pd.Series | None,
                   ring_no: pd.Series | None) -> VertexTable:
    """Rows sharing a code are one parcel's vertices, in file order or by point number, ring by ring."""
    key = codes.fillna("").astype(str).to_numpy()
    if not len(key):
        empty = np.zeros(0, dtype=np.int64)
        return VertexTable(empty, empty, [], {}, np.zeros(0, dtype=bool))
    change = np.r_[True, key[1:] != key[:-1]]
    block_start = np.flatnonzero(change)
    block_code = key[block_start]
    _unique, first_block = np.unique(block_code, return_index=True)
    first_index: list[int] = []
    rings: list[list[np.ndarray]] = []
    scattered: dict[int, list[int]] = {}
    too_few: list[bool] = []
    block_end = np.r_[block_start[1:], len(key)]
    parcel_of_row = np.empty(len(key), dtype=np.int64)
    members: dict[str, list[int]] = {}
    for b, code in enumerate(block_code):
        members.setdefault(code, []).append(b)
    for code in block_code[np.sort(first_block)]:
        blocks = members[code]
        idx = np.concatenate([np.arange(block_start[b], block_end[b]) for b in blocks])
        parcel = len(first_index)
        parcel_of_row[idx] = parcel
        first_index.append(int(idx[0]))
        if len(blocks) > 1:
            scattered[parcel] = [int(rows[block_start[b]]) for b in blocks]
        ring_keys = ring_no.iloc[idx].to_numpy() if ring_no is not None else np.zeros(len(idx))
        parcel_rings, short = [], False
        for ring_key in pd.unique(ring_keys):
            members_idx = idx[ring_keys == ring_key]
            if point_no is not None:
                numbers = pd.to_numeric(point_no.iloc[members_idx], errors="coerce").to_numpy()
                members_idx = members_idx[np.argsort(numbers, kind="stable")]
            coords = xy[members_idx]
            if len(coords) > 1 and np.array_equal(coords[0], coords[-1]):
                coords = coords[:-1]
            distinct = len(np.unique(coords[np.isfinite(coords).all(axis=1)], axis=0))
            short = short or distinct < 3
            parcel_rings.append(coords)
        rings.append(parcel_rings)
        too_few.append(short)
    return VertexTable(np.array(first_index, dtype=np.int64), parcel_of_row, rings, scattered,
                       np.array(too_few, dtype=bool))


def polygons_from_rings(rings: list[list[np.ndarray]], too_few: np.ndarray) -> np.ndarray:
    """One polygon per parcel: the first ring outside, later rings holes when inside it, else more parts."""
    out = np.full(len(rings), None, dtype=object)
    for i, parcel in enumerate(rings):
        if too_few[i]:
            continue
        shell = shapely.Polygon(parcel[0])
        holes, parts = [], []
        for ring in parcel[1:]:
            poly = shapely.Polygon(ring)
            (holes if shell.contains(poly) else parts).append(ring)
        first = shapely.Polygon(parcel[0], holes)
        out[i] = shapely.MultiPolygon([first, *(shapely.Polygon(r) for r in parts)]) if parts else first
    return out


def file_fingerprint(path: Path) -> str:
    """The SHA-256 of a file, to name it in the history instead of its name.

    Planners name files after households (``张三_身份证号.xlsx``), and every role reads the history; the
    fingerprint still ties each event to the archived file.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()[:16]}"
