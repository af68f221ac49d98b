"""``gis blockers``, ``gis overlaps``, ``gis progress``: the analysis, at the command line."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gis.blockers import BlockerFilter, Tolerance, find_blockers
from gis.cli.common import console, parse_day
from gis.config import get_settings
from gis.db import connect
from gis.errors import InvalidInput
from gis.geometry_input import city_extent, parse_geometry
from gis.overlaps import overlap_report
from gis.progress import district_progress
from gis.projects import resolve_project
from gis.stages import STAGE_LABELS_ZH, today_in

BLOCKER_COLUMNS = {
    "code": "地块编号", "kind": "类型", "district_name": "片区", "stage": "阶段", "days_in_stage": "本阶段天数",
    "holdout": "钉子户", "overlap_m2": "占用面积(m²)", "overlap_mu": "占用面积(亩)", "share": "占比",
}


def _write_rows(rows: list[dict[str, Any]], columns: dict[str, str], fmt: str, title: str) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns.values())
        for r in rows:
            writer.writerow(r.get(k) for k in columns)
        return
    table = Table(title=title)
    for label in columns.values():
        table.add_column(label)
    for r in rows:
        table.add_row(*(STAGE_LABELS_ZH.get(str(r.get(k)), str(r.get(k))) if k == "stage" else str(r.get(k))
                        for k in columns))
    console.print(table)


def blockers(
    project: Annotated[str, typer.Argument(help="Project id or code, e.g. hsr.")],
    format: Annotated[str, typer.Option(help="table, csv or geojson.")] = "table",
    as_of: Annotated[str | None, typer.Option(help="As of this day, YYYY-MM-DD.")] = None,
    district: Annotated[list[str] | None, typer.Option(help="District code or name; repeatable.")] = None,
    holdout: Annotated[bool | None, typer.Option("--holdout/--no-holdout", help="Only holdouts, or none.")] = None,
) -> None:
    """The parcels still blocking a project."""
    if format not in ("table", "csv", "geojson"):
        raise InvalidInput("format must be table, csv or geojson", "--format")
    settings = get_settings()
    query = BlockerFilter(districts=tuple(district or ()), holdout=holdout,
                          as_of=parse_day(as_of, "--as-of") if as_of else None,
                          limit=10_000, with_geometry=format == "geojson")
    with connect(settings) as conn:
        page = find_blockers(conn, resolve_project(conn, project), query, Tolerance.from_settings(settings),
                             tz=settings.city_timezone)
    if format == "geojson":
        json.dump(page.as_geojson(), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    _write_rows(page.items, BLOCKER_COLUMNS, format, f"{page.project['name']} 阻碍地块 {page.total} 宗")


def overlaps(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A GeoJSON line or polygon.")],
    width: Annotated[float | None, typer.Option(help="Corridor width in metres, for lines.")] = None,
    crs: Annotated[str | None, typer.Option(help="EPSG code of the file's coordinates; 4326 by default.")] = None,
) -> None:
    """Every parcel a line's corridor or a polygon overlaps, with totals (JSON on stdout)."""
    settings = get_settings()
    try:
        geometry = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{file} is not GeoJSON: {exc}", str(file)) from None
    with connect(settings) as conn:
        query = parse_geometry(geometry, crs=crs, width_m=width, working_srid=settings.srid,
                               extent=city_extent(conn), width_where="--width")
        report = overlap_report(conn, query, settings.srid, Tolerance.from_settings(settings),
                                today_in(settings.city_timezone))
    json.dump(report, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


def progress() -> None:
    """District against district: cleared, remaining, change, rank."""
    settings = get_settings()
    with connect(settings) as conn:
        result = district_progress(conn, Tolerance.from_settings(settings), today_in(settings.city_timezone),
                                   tz=settings.city_timezone)
    table = Table(title=f"各片区征迁进度 {result['date']}")
    for label in ("排名", "片区", "总数", "已交地", "剩余", "完成率%", "近1日", "近3日", "近7日"):
        table.add_column(label)
    for d in result["districts"]:
        table.add_row(str(d["rank"]), d["district_name"], str(d["total"]), str(d["cleared"]), str(d["remaining"]),
                      str(d["percent_cleared"]), *(f"+{d['change'][k]}" for k in ("1d", "3d", "7d")))
    console.print(table)
