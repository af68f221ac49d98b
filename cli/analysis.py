"""``gis blockers``, ``gis overlaps``, ``gis progress``: the analysis, at the command line."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.common import console, parse_day
from gis.analysis.blockers import (
    BLOCKER_EXPORT_COLUMNS,
    MAX_LIMIT,
    BlockerFilter,
    blocker_download,
    find_blockers,
)
from gis.analysis.overlaps import overlap_report
from gis.analysis.progress import district_progress
from gis.domain.geometry import city_extent, parse_geometry
from gis.domain.stages import STAGE_LABELS_ZH, today_in
from gis.domain.tolerance import Tolerance
from gis.io.export import FORMATS, check_format, export_filename, write_export
from gis.platform.config import get_settings
from gis.platform.db import connect, get_app_engine
from gis.platform.errors import InvalidInput
from gis.records.projects import resolve_project

BLOCKER_COLUMNS = {
    "code": "地块编号", "kind": "类型", "district_name": "片区", "stage": "阶段", "days_in_stage": "本阶段天数",
    "holdout": "钉子户", "overlap_m2": "占用面积(m²)", "overlap_mu": "占用面积(亩)", "share": "占比",
}


def _print_table(rows: list[dict[str, Any]], columns: dict[str, str], title: str) -> None:
    table = Table(title=title)
    for label in columns.values():
        table.add_column(label)
    for r in rows:
        table.add_row(*(STAGE_LABELS_ZH.get(str(r.get(k)), str(r.get(k))) if k == "stage" else str(r.get(k))
                        for k in columns))
    console.print(table)


def blockers(
    project: Annotated[str, typer.Argument(help="Project id or code, e.g. hsr.")],
    format: Annotated[str, typer.Option(help=f"table (on screen), or a download as the API gives it: "
                                             f"{', '.join(FORMATS)}.")] = "table",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="File to write; default stdout for csv and geojson, else the API's file name "
                               "(新安路_阻碍地块_<date>.xlsx) in the current folder.")] = None,
    as_of: Annotated[str | None, typer.Option(help="As of this day, YYYY-MM-DD.")] = None,
    district: Annotated[list[str] | None, typer.Option(help="District code or name; repeatable.")] = None,
    holdout: Annotated[bool | None, typer.Option("--holdout/--no-holdout", help="Only holdouts, or none.")] = None,
    reveal_personal: Annotated[bool, typer.Option("--reveal-personal", help="Owner names unmasked.")] = False,
) -> None:
    """The parcels still blocking a project: on screen, or a file in any of the API's download formats."""
    if format != "table":
        check_format(format)
    settings = get_settings()
    query = BlockerFilter(districts=tuple(district or ()), holdout=holdout,
                          as_of=parse_day(as_of, "--as-of") if as_of else None)
    tolerance, today = Tolerance.from_settings(settings), today_in(settings.city_timezone)
    with connect(settings) as conn:
        project_id = resolve_project(conn, project)
        if format == "table":
            page = find_blockers(conn, project_id, replace(query, limit=MAX_LIMIT), tolerance,
                                 tz=settings.city_timezone, today=today)
            _print_table(page.items, BLOCKER_COLUMNS, f"{page.project['name']} 阻碍地块 {page.total} 宗")
            return
    name, rows = blocker_download(get_app_engine(settings), project_id, query, tolerance, today=today,
                                  tz=settings.city_timezone)
    base = f"{name}_阻碍地块" + (f"_截至{query.as_of.isoformat()}" if query.as_of else "")
    to_stdout = str(output) == "-" or (output is None and format in ("csv", "geojson"))
    if to_stdout and format not in ("csv", "geojson"):
        raise typer.BadParameter("only csv and geojson can go to stdout", param_hint="--output")
    path = Path("/dev/stdout") if to_stdout else output or Path(export_filename(base, fmt=format, on=today))
    count = write_export(rows, BLOCKER_EXPORT_COLUMNS, format, path, srid=settings.srid, layer=base,
                         reveal_personal=reveal_personal, title=f"{name} 阻碍地块", tz=settings.city_timezone,
                         on=today)
    if not to_stdout:
        console.print(f"{count} 宗 → {path}")


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
