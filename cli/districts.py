"""``gis districts import|list|rename|delete``: the districts (片区/乡镇街道) from the planners' files."""

from __future__ import annotations

import csv
import getpass
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import console
from gis.io import profiles
from gis.io.export import csv_safe
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.platform.errors import InvalidInput
from gis.records import districts as store

app = typer.Typer(help="Districts (片区/乡镇街道): import boundaries from a file, list, rename, delete.",
                  no_args_is_help=True)

LISTED_PARCELS = 50
STATUS_LABELS = {"created": "新建", "updated": "更新", "unchanged": "未变"}
LIST_COLUMNS = {"code": "编码", "name": "名称", "parcels": "地块数", "area_m2": "面积(m²)", "area_mu": "面积(亩)"}


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="GeoPackage, zipped Shapefile, GeoJSON, "
                                                                             "KML, FlatGeobuf or DXF")],
    map_: Annotated[list[str] | None, typer.Option("--map", help="COLUMN=code, COLUMN=name or COLUMN=code,name "
                                                                  "(repeat); common column names are found "
                                                                  "without it.")] = None,
    layer: Annotated[str | None, typer.Option(help="The layer to read; in a DXF drawing, the CAD layer.")] = None,
    crs: Annotated[int | None, typer.Option(help="EPSG code of the coordinates (a DXF states none).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")] = False,
    actor: Annotated[str | None, typer.Option(help="Who imports, for the parcels' history (default: your "
                                                   "login).")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the full report as JSON to this file.")] = None,
) -> None:
    """Load district boundaries from FILE: replaced by code, parcels reassigned by largest overlap; all or
    nothing (exit 1 with the reason)."""
    mapping = profiles.parse_mapping(map_)
    with connect(get_settings()) as conn:
        result = store.import_districts(conn, file, mapping=mapping, layer=layer, crs=crs,
                                        actor=actor or _login(), dry_run=dry_run)
    if report:
        report.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    print_report(result)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "import"


def print_report(result: store.DistrictImportReport) -> None:
    """The district import report (Chinese): file, CRS, mapping, districts by status, parcels that changed district
    or lie outside all of them (the first LISTED_PARCELS)."""
    summary = Table(show_header=False, box=None)
    summary.add_row("文件", result.file)
    if result.crs:
        summary.add_row("坐标系", f"EPSG:{result.crs} → EPSG:{result.working_srid}")
    summary.add_row("字段", ", ".join(f"{c} → {t}" for c, t in result.mapping.items()))
    summary.add_row("要素", str(result.features))
    for note in result.notes:
        summary.add_row("说明", note)
    console.print(summary)
    table = Table(title="片区")
    for label in ("状态", "数量", "编码"):
        table.add_column(label, overflow="fold")
    for status, label in STATUS_LABELS.items():
        codes = getattr(result, status)
        table.add_row(label, str(len(codes)), ", ".join(codes))
    console.print(table)
    if result.parcels_moved:
        moved = Table(title=f"改属片区的地块 {len(result.parcels_moved)} 宗")
        for label in ("地块编号", "原片区", "新片区"):
            moved.add_column(label)
        for m in result.parcels_moved[:LISTED_PARCELS]:
            moved.add_row(m.code, m.from_district, m.to_district)
        console.print(moved)
        if len(result.parcels_moved) > LISTED_PARCELS:
            console.print(f"… 另有 {len(result.parcels_moved) - LISTED_PARCELS} 宗（--report FILE 写出全部）")
    if result.parcels_outside:
        shown = ", ".join(result.parcels_outside[:LISTED_PARCELS])
        more = f" … 另有 {len(result.parcels_outside) - LISTED_PARCELS} 宗" if len(
            result.parcels_outside) > LISTED_PARCELS else ""
        console.print(f"[yellow]不在任何片区内的地块 {len(result.parcels_outside)} 宗（保留原片区）：[/yellow]"
                      f"{shown}{more}")
    c = result.counts
    if result.dry_run:
        console.print(f"[green]试运行：将新建 {c['created']} 个、更新 {c['updated']} 个片区，"
                      f"{c['parcels_moved']} 宗地块改属片区；未写入任何数据[/green]")
    else:
        console.print(f"[green]已导入：新建 {c['created']} 个、更新 {c['updated']} 个、未变 {c['unchanged']} 个片区；"
                      f"{c['parcels_moved']} 宗地块改属片区[/green]")


@app.command("list")
def list_command(
    format: Annotated[str, typer.Option(help="table, csv or json (with the boundaries, WGS 84).")] = "table",
) -> None:
    """The districts: code, name, parcels, area in m² and mu."""
    if format not in ("table", "csv", "json"):
        raise InvalidInput("format must be table, csv or json", "--format")
    with connect(get_settings()) as conn:
        rows = store.list_districts(conn, with_geometry=format == "json")
    if format == "json":
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return
    if format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(LIST_COLUMNS.values())
        for r in rows:
            writer.writerow(csv_safe(r[k]) for k in LIST_COLUMNS)
        return
    table = Table(title=f"片区 {len(rows)} 个")
    for key, label in LIST_COLUMNS.items():
        table.add_column(label, justify="right" if key in ("parcels", "area_m2", "area_mu") else "left")
    for r in rows:
        table.add_row(r["code"], r["name"], f"{r['parcels']:,}", f"{r['area_m2']:,.2f}", f"{r['area_mu']:,.2f}")
    console.print(table)


@app.command("rename")
def rename_command(
    code: Annotated[str, typer.Argument(help="The district's code.")],
    name: Annotated[str, typer.Argument(help="Its new name.")],
    actor: Annotated[str | None, typer.Option(help="Who renames (default: your login).")] = None,
) -> None:
    """Give a district a new name."""
    with connect(get_settings()) as conn:
        district = store.rename_district(conn, code, name, actor or _login())
    console.print(f"片区 {code} 已更名为 {district['name']}")


@app.command("delete")
def delete_command(code: Annotated[str, typer.Argument(help="The district's code.")]) -> None:
    """Delete a district no parcel, user or compensation standard refers to."""
    with connect(get_settings()) as conn:
        store.delete_district(conn, code)
    console.print(f"片区 {code} 已删除")
