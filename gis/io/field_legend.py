"""What the GIS downloads' English field names mean, and their Chinese values beside the codes.

A GeoPackage, Shapefile, FlatGeobuf or KML list keeps English field names (a Shapefile's within 10 characters) and
the codes a script filters on (``stage = 'signed'``); a surveyor reading the attribute table wants 签约. So each
field holding a code or a yes/no (stage, kind, a check's rule, 钉子户) gets a parallel ``<name>_zh`` field with the
Chinese label, and the field legend (each field's Chinese name, units included) goes where the format keeps one:
the GeoPackage's own field aliases (its schema extension, ``gpkg_data_columns``; Debian 12's GDAL 3.6 does not show
them as aliases, so the ``_zh`` fields are what every reader sees), and a ``<name>_字段说明.tsv`` sidecar
(tab-separated, UTF-8 with BOM) inside a Shapefile's zip: not a suffix the importer reads as a table (.csv and .txt
are), so the zip still holds one dataset and imports again.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

ZH_SUFFIX = "_zh"  # the labels themselves are gis.io.export's (_Cells.labels), as in the spreadsheets


class LegendColumn(Protocol):
    """What the legend reads of a ``gis.io.export.Column``."""

    key: str
    label: str
    type: str
    values: Any

    @property
    def shp_name(self) -> str: ...


def has_labels(col: LegendColumn) -> bool:
    """Whether the column holds codes or yes/no that read as Chinese labels."""
    return col.values is not None or col.type == "bool"


def field_name(col: LegendColumn, fmt: str) -> str:
    """The column's field name in ``fmt`` (a Shapefile's short name)."""
    return col.shp_name if fmt == "shp" else col.key


def label_field_name(col: LegendColumn, fmt: str) -> str:
    """The parallel Chinese field's name: ``stage_zh``; within 10 characters in a Shapefile."""
    name = field_name(col, fmt)
    return (name[:10 - len(ZH_SUFFIX)] if fmt == "shp" else name) + ZH_SUFFIX


def legend(columns: Sequence[LegendColumn], fmt: str) -> list[tuple[str, str]]:
    """(field, its Chinese name) for every field of a download in ``fmt``, the parallel label fields included."""
    rows: list[tuple[str, str]] = []
    for col in columns:
        rows.append((field_name(col, fmt), col.label))
        if has_labels(col):
            rows.append((label_field_name(col, fmt), f"{col.label}（中文）"))
    return rows


def write_gpkg_aliases(path: Path, layer: str, rows: list[tuple[str, str]]) -> None:
    """The legend as the GeoPackage's field aliases: its schema extension's ``gpkg_data_columns`` (name = alias)."""
    with sqlite3.connect(path) as db:
        db.execute("""CREATE TABLE IF NOT EXISTS gpkg_data_columns (
            table_name TEXT NOT NULL, column_name TEXT NOT NULL, name TEXT, title TEXT, description TEXT,
            mime_type TEXT, constraint_name TEXT, CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name),
            CONSTRAINT gdc_tn UNIQUE (table_name, name))""")
        db.execute("""CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT,
            extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL,
            CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))""")
        db.executemany("INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title) "
                       "VALUES (?, ?, ?, ?)", [(layer, field, label, label) for field, label in rows])
        db.execute("INSERT INTO gpkg_extensions VALUES ('gpkg_data_columns', NULL, 'gpkg_schema', "
                   "'http://www.geopackage.org/spec/#extension_schema', 'read-write')")


def sidecar_text(rows: list[tuple[str, str]]) -> bytes:
    """The legend as a tab-separated text (UTF-8 with BOM, so Excel and Notepad read the Chinese): 字段, 中文名."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\r\n")
    writer.writerow(["字段", "中文名"])
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
