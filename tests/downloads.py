"""Downloaded lists re-read with independent readers (csv, openpyxl, pyogrio), as their users' tools read them."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import openpyxl
import pyogrio

FILE_FORMATS = ("csv", "xlsx", "gpkg", "shp", "kml", "fgb")


def read_download(fmt: str, content: bytes, folder: Path) -> list[dict]:
    """The rows of a downloaded list, without its totals row (checked to be there in CSV and XLSX)."""
    if fmt == "csv":
        assert content.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel opens the Chinese right
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
        assert any(str(v).startswith("合计") for v in rows[-1].values() if v)
        return rows[:-1]
    if fmt == "xlsx":
        ws = openpyxl.load_workbook(io.BytesIO(content), data_only=True).active
        header, *rows = list(ws.iter_rows(values_only=True))
        assert any(str(cell).startswith("合计") for cell in rows[-1] if cell)
        return [dict(zip(header, r, strict=True)) for r in rows[:-1]]
    path = folder / f"download.{fmt}"
    if fmt == "shp":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            archive.extractall(folder / "shp")
        path = next((folder / "shp").glob("*.shp"))
    else:
        path.write_bytes(content)
    return pyogrio.read_dataframe(path).to_dict("records")


def code_of(row: dict, fmt: str) -> str:
    """A re-read row's parcel code: the Chinese header in spreadsheets, the field (or KML's Name) in GIS files."""
    if fmt in ("csv", "xlsx"):
        return str(row["地块编号"])
    return str(row.get("code") or row.get("Name"))
