"""Any parcel list as a download: ``export_response(rows, "blockers_hsr", fmt, ...)`` for every ``?format=``.

CSV and GeoJSON stream to the client as the rows arrive. The other formats need a finished file
(XLSX and GeoPackage are zip or SQLite containers), so they are written to a temporary file first,
batch by batch, and that file is streamed and then deleted; an error while writing (an XLSX over
Excel's row limit) is still an ordinary 422. Call it from a ``def`` handler (the file formats write
synchronously) and pass rows that outlive the request's transaction for big lists: a list, or
``gis.io.export.query_rows(engine, ...)``, which reads on a connection of its own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

from fastapi.responses import StreamingResponse

from gis.io.export import (
    FORMATS,
    PARCEL_COLUMNS,
    Column,
    Sheet,
    check_format,
    content_disposition,
    export_filename,
    stream_export,
    write_export,
    write_xlsx_sheets,
)
from gis.platform.config import DEFAULT_TIMEZONE

CHUNK_BYTES = 1024 * 1024
# ``?format=`` of a list route: its JSON answer, or the whole list as a file (gis.io.export.FORMATS).
ListFormat = Literal["json", "geojson", "csv", "xlsx", "gpkg", "shp", "kml", "fgb"]


def _file_chunks(path: Path, folder: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK_BYTES):
                yield chunk
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def export_response(
    rows: Iterable[Mapping[str, Any]],
    base_name: str,
    fmt: str,
    *,
    srid: int,
    today: date,
    columns: Sequence[Column] = PARCEL_COLUMNS,
    reveal_personal: bool = False,
    crs: int | None = None,
    title: str = "地块清单",
    tz: str = DEFAULT_TIMEZONE,
    geometry_type: str = "MultiPolygon",
) -> StreamingResponse:
    """The rows as a file download named ``<base_name>_<today>.<ext>`` with the format's media type.

    ``rows`` hold each column's key and, for the GIS formats, ``geom`` (WKB in ``srid``).
    """
    spec = check_format(fmt)
    filename = export_filename(base_name, fmt=fmt, on=today)
    if not spec.streams:
        return _file_response(filename, fmt, lambda path: write_export(
            rows, columns, fmt, path, srid=srid, crs=crs, reveal_personal=reveal_personal, title=title,
            layer=base_name, tz=tz, on=today, geometry_type=geometry_type))
    body = stream_export(rows, columns, fmt, srid=srid, reveal_personal=reveal_personal, tz=tz)
    return StreamingResponse(body, media_type=spec.media_type, headers={"Content-Disposition": content_disposition(
        filename)})


def workbook_response(sheets: Sequence[Sheet], base_name: str, *, today: date, reveal_personal: bool = False,
                      tz: str = DEFAULT_TIMEZONE) -> StreamingResponse:
    """Several lists as one XLSX download, a sheet each (a comparison: the side-by-side sheet, then one per
    candidate)."""
    return _file_response(export_filename(base_name, fmt="xlsx", on=today), "xlsx", lambda path: write_xlsx_sheets(
        sheets, path, reveal_personal=reveal_personal, tz=tz, on=today))


def _file_response(filename: str, fmt: str, write: Callable[[Path], Any]) -> StreamingResponse:
    """``write`` a file into a temporary folder, then stream it and remove the folder."""
    folder = Path(tempfile.mkdtemp(prefix="pb-export-"))
    path = folder / filename
    try:
        write(path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    headers = {"Content-Disposition": content_disposition(filename), "Content-Length": str(os.path.getsize(path))}
    return StreamingResponse(_file_chunks(path, folder), media_type=FORMATS[fmt].media_type, headers=headers)
