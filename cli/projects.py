"""``gis projects list|add|update|archive|revise|revisions|diff``: a city's projects from its planners' files."""

from __future__ import annotations

import getpass
import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Connection

from cli.common import console, parse_day
from gis.analysis.alignments import list_revisions, revise_alignment, revision_diff
from gis.domain.geometry import QueryGeometry
from gis.domain.stages import today_in
from gis.domain.tolerance import Tolerance
from gis.platform.config import get_settings
from gis.platform.db import get_engine, transaction
from gis.platform.errors import InvalidInput
from gis.records.projects import (
    KINDS,
    ProjectFields,
    add_project,
    alignment_from_file,
    archive_project,
    list_projects,
    update_project,
)

app = typer.Typer(help="Projects: create from a centre line or red line file, edit, revise the alignment, archive.",
                  no_args_is_help=True)

LineFile = Annotated[Path | None, typer.Option("--line", exists=True, dir_okay=False,
                                               help="Centre line file (GeoJSON, GeoPackage, zipped Shapefile, KML, "
                                                    "DXF); needs --width.")]
BoundaryFile = Annotated[Path | None, typer.Option("--boundary", exists=True, dir_okay=False,
                                                   help="Red line / boundary polygon file.")]
Width = Annotated[float | None, typer.Option(help="Corridor width in metres, the full width (half each side).")]
Layer = Annotated[str | None, typer.Option(help="The layer to read; in a DXF drawing, the CAD layer.")]
Where = Annotated[str | None, typer.Option(help="Attribute filter on the file, e.g. \"mode IN ('TRAIN','RER')\".")]
Crs = Annotated[int | None, typer.Option(help="EPSG code of the coordinates (required for a DXF without one).")]
Actor = Annotated[str | None, typer.Option(help="Who makes the change, for the record (default: your login).")]


def _alignment(conn: Connection, line: Path | None, boundary: Path | None, width: float | None, layer: str | None,
               where: str | None, crs: int | None) -> QueryGeometry:
    if (line is None) == (boundary is None):
        raise InvalidInput("give either --line FILE with --width, or --boundary FILE", "geometry")
    if line is not None and width is None:
        raise InvalidInput("a centre line needs --width (metres)", "width")
    if boundary is not None and width is not None:
        raise InvalidInput("--width applies to a centre line only; a boundary is its own footprint", "width")
    return alignment_from_file(conn, line or boundary, width_m=width, layer=layer, where=where, crs=crs)


def _day(value: str | None, option: str) -> date | None:
    return parse_day(value, option) if value else None


@app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False) -> None:
    """The projects with their progress."""
    settings = get_settings()
    with transaction(get_engine(settings)) as conn:
        rows = list_projects(conn, Tolerance.from_settings(settings), today_in(settings.city_timezone))
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("编号 code", "名称", "类型", "宽度 m", "红线面积 亩", "地块", "已交地", "阻碍", "截止日期")
    for p in rows:
        table.add_row(p["code"], p["name"], p["kind"], f"{p['corridor_width_m'] or ''}", f"{p['footprint_mu']:,.1f}",
                      str(p["parcels"]), str(p["cleared"]), str(p["blocking"]), p["deadline"] or "")
    console.print(table)


@app.command("add")
def add_command(
    code: Annotated[str, typer.Argument(help="Short code, e.g. xinan_road (used in links and routes).")],
    name: Annotated[str, typer.Option(help="Name, e.g. 新安路.")],
    kind: Annotated[str, typer.Option(help="rail, road or zone.")],
    line: LineFile = None, boundary: BoundaryFile = None, width: Width = None, layer: Layer = None,
    where: Where = None, crs: Crs = None,
    freeze_date: Annotated[str | None, typer.Option(help="Freeze notice date (YYYY-MM-DD).")] = None,
    deadline: Annotated[str | None, typer.Option(help="Hand-over deadline (YYYY-MM-DD).")] = None,
    actor: Actor = None,
) -> None:
    """Create a project from a centre line (with its corridor width) or a boundary; revision 1 in force today."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", "kind")
    settings = get_settings()
    fields = ProjectFields(name, _day(freeze_date, "--freeze-date"), _day(deadline, "--deadline"))
    with transaction(get_engine(settings)) as conn:
        alignment = _alignment(conn, line, boundary, width, layer, where, crs)
        project_id = add_project(conn, code, kind, fields, alignment, actor=actor or getpass.getuser(),
                                 today=today_in(settings.city_timezone))
        summary = list_projects(conn, Tolerance.from_settings(settings), today_in(settings.city_timezone),
                                project_id=project_id)[0]
    console.print(f"项目 {code} (id {project_id}) 已保存：红线 {summary['footprint_m2']:,.0f} ㎡ "
                  f"({summary['footprint_mu']:,.2f} 亩)，涉及地块 {summary['parcels']}，阻碍 {summary['blocking']}")


@app.command("update")
def update_command(
    project: Annotated[str, typer.Argument(help="Project code or id.")],
    name: Annotated[str | None, typer.Option()] = None,
    freeze_date: Annotated[str | None, typer.Option()] = None,
    deadline: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Change a project's name or dates."""
    fields = ProjectFields(name, _day(freeze_date, "--freeze-date"), _day(deadline, "--deadline"))
    with transaction(get_engine(get_settings())) as conn:
        update_project(conn, project, fields)
    console.print(f"项目 {project} 已更新")


@app.command("archive")
def archive_command(project: Annotated[str, typer.Argument(help="Project code or id.")], actor: Actor = None) -> None:
    """Archive a project: it leaves the lists and maps; its revisions, payments and history stay."""
    with transaction(get_engine(get_settings())) as conn:
        archive_project(conn, project, actor=actor or getpass.getuser())
    console.print(f"项目 {project} 已归档")


@app.command("revise")
def revise_command(
    project: Annotated[str, typer.Argument(help="Project code or id.")],
    line: LineFile = None, boundary: BoundaryFile = None, width: Width = None, layer: Layer = None,
    where: Where = None, crs: Crs = None,
    effective_from: Annotated[str | None, typer.Option(help="The day the new alignment takes effect (default "
                                                            "today).")] = None,
    note: Annotated[str | None, typer.Option(help="Why the alignment changed.")] = None,
    actor: Actor = None,
) -> None:
    """A new alignment (改线) for a project; every earlier revision is kept."""
    settings = get_settings()
    with transaction(get_engine(settings)) as conn:
        alignment = _alignment(conn, line, boundary, width, layer, where, crs)
        revision = revise_alignment(conn, project, alignment, actor=actor or getpass.getuser(),
                                    today=today_in(settings.city_timezone),
                                    effective_from=_day(effective_from, "--effective-from"), note=note)
    console.print(f"项目 {project}：第 {revision} 版线位已保存")


@app.command("revisions")
def revisions_command(project: Annotated[str, typer.Argument(help="Project code or id.")]) -> None:
    """Every alignment revision of a project."""
    with transaction(get_engine(get_settings())) as conn:
        found = list_revisions(conn, project)
    table = Table("版本", "生效日期", "类型", "宽度 m", "红线面积 亩", "修改人", "说明", "现行")
    for r in found["revisions"]:
        table.add_row(str(r["revision"]), r["effective_from"], r["geometry_type"], f"{r['corridor_width_m'] or ''}",
                      f"{r['footprint_mu']:,.2f}", r["created_by"], r["note"] or "", "是" if r["current"] else "")
    console.print(table)


@app.command("diff")
def diff_command(
    project: Annotated[str, typer.Argument(help="Project code or id.")],
    a: Annotated[int, typer.Argument(help="From revision.")],
    b: Annotated[int, typer.Argument(help="To revision.")],
) -> None:
    """What going from revision A to B does: parcels entering and leaving, overlap gained and lost (JSON)."""
    settings = get_settings()
    with transaction(get_engine(settings)) as conn:
        diff = revision_diff(conn, project, a, b, Tolerance.from_settings(settings), today_in(settings.city_timezone),
                             reveal_personal=True)
    for side in ("entering", "leaving"):
        for hit in diff[side]:
            hit.pop("geometry", None)
    typer.echo(json.dumps(diff, ensure_ascii=False, indent=2, default=str))
