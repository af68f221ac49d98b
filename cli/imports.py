"""``gis import FILE`` and ``gis profiles list|show|delete``."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import console, progress_bar
from gis.io import profiles as profile_store
from gis.platform.config import get_settings
from gis.platform.db import connect, get_engine, transaction
from gis.records.importer import ImportReport, import_file, report_json

LISTED_ISSUES = 50

profiles_app = typer.Typer(help="Saved import profiles: column → parcel field mappings.", no_args_is_help=True)


def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="GeoPackage, zipped Shapefile, GeoJSON, "
                                                                             "FlatGeobuf, KML, CSV or XLSX")],
    profile: Annotated[str | None, typer.Option(help="A saved import profile.")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="COLUMN=FIELD (repeat); FIELD '-' leaves the "
                                                                  "column out.")] = None,
    default: Annotated[list[str] | None, typer.Option(help="FIELD=VALUE for rows that lack it (repeat), e.g. "
                                                            "kind=land.")] = None,
    crs: Annotated[int | None, typer.Option(help="EPSG code of the coordinates (overrides the file's).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count; write nothing.")] = False,
    layer: Annotated[str | None, typer.Option(help="The layer of a multi-layer file.")] = None,
    sheet: Annotated[str | None, typer.Option(help="The sheet of a workbook (default the first).")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding, when detection gets it wrong.")] = None,
    actor: Annotated[str | None, typer.Option(help="Who imports, for the history (default: your login).")] = None,
    save_profile: Annotated[str | None, typer.Option(help="Save the mapping used as this profile.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the full report as JSON to this file.")] = None,
) -> None:
    """Import parcels from FILE: every row checked, then all upserted by parcel code, or none (exit 1)."""
    settings = get_settings()
    mapping = profile_store.parse_mapping(map_)
    defaults = profile_store.parse_mapping(default)
    options = {k: v for k, v in (("layer", layer), ("sheet", sheet), ("encoding", encoding)) if v}
    who = actor or _login()
    with progress_bar() as bar:
        task = bar.add_task("reading rows", total=None)

        def progress(phase: str, done: int, total: int | None) -> None:
            if phase == "read":
                bar.update(task, advance=done, total=total)
            else:
                bar.update(task, description="written", completed=done, total=total)

        # The owner's login, not the service's: an import that at least doubles the parcels sets their
        # indexes and foreign keys aside and builds them again at the end (gis.platform.bulk.deferred_indexes), DDL
        # that only the tables' owner may run. Uploads through the API keep the service's login and so
        # always keep the indexes up row by row.
        with transaction(get_engine(settings)) as conn:
            base = profile_store.get_profile(conn, profile) if profile else profile_store.Profile()
            if options:
                base.options.update(options)
            result = import_file(conn, file, profile=base, mapping=mapping, defaults=defaults, crs=crs,
                                 dry_run=dry_run, actor=who, settings=settings, progress=progress)
    if save_profile:
        with connect(settings) as conn:
            saved = profile_store.Profile(
                name=save_profile, description=f"saved from {file.name}", defaults=base.merged(None, defaults).defaults,
                mapping={c: t for c, t in result.mapping.items()}, crs=crs or base.crs, options=base.options,
            )
            profile_store.save_profile(conn, saved)
        console.print(f"profile [bold]{save_profile}[/bold] saved")
    if report:
        report.write_text(report_json(result), encoding="utf-8")
    print_report(result)
    if not result.ok:
        raise typer.Exit(1)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "import"


def print_report(result: ImportReport) -> None:
    """The parcel import report: file, CRS, encoding, mapping, issues (the first LISTED_ISSUES), then what was (or
    would be) created and updated."""
    summary = Table(show_header=False, box=None)
    summary.add_row("file", f"{result.file} ({result.format}{', layer ' + result.layer if result.layer else ''})")
    if result.crs:
        summary.add_row("CRS", f"EPSG:{result.crs} → EPSG:{result.working_srid}")
    if result.encoding:
        summary.add_row("encoding", result.encoding)
    summary.add_row("mapping", ", ".join(f"{c} → {t}" for c, t in result.mapping.items()))
    if result.unused_columns:
        summary.add_row("not used", ", ".join(result.unused_columns))
    summary.add_row("rows", f"{result.rows} parcels" + (f", {result.skipped_rows} skipped (blank/totals)"
                                                         if result.skipped_rows else ""))
    for note in result.notes:
        summary.add_row("note", note)
    console.print(summary)
    if result.issues:
        table = Table(title="issues", show_lines=False)
        for name in ("row", "code", "", "kind", "field", "reason"):
            table.add_column(name, overflow="fold")
        for issue in result.issues[:LISTED_ISSUES]:
            mark = "[red]rejected[/red]" if issue.severity == "error" else "[yellow]warning[/yellow]"
            table.add_row(str(issue.row or ""), issue.code or "", mark, issue.kind, issue.field or "", issue.message)
        console.print(table)
        more = len(result.issues) - LISTED_ISSUES + result.issues_not_listed
        if more > 0:
            console.print(f"… {more} more issues (--report FILE writes them all)")
    if not result.ok:
        console.print(f"[red]{result.rejected} rows rejected: nothing was imported[/red]")
        return
    verb = "would be" if result.dry_run else "were"
    changes = ", ".join(f"{k} {v}" for k, v in result.changes.items()) or "none"
    console.print(f"[green]{result.created} parcels {verb} created, {result.updated} updated, {result.unchanged} "
                  f"unchanged[/green] (history events: {changes})" + (" — dry run, nothing written"
                                                                      if result.dry_run else ""))


@profiles_app.command("list")
def list_profiles() -> None:
    """The saved profiles."""
    with connect(get_settings()) as conn:
        for p in profile_store.list_profiles(conn):
            mapping = ", ".join(f"{c}→{t}" for c, t in p.mapping.items())
            typer.echo(f"{p.name}\t{p.description or ''}\t{mapping}")


@profiles_app.command("show")
def show_profile(name: str) -> None:
    """One profile as JSON."""
    import json

    with connect(get_settings()) as conn:
        typer.echo(json.dumps(profile_store.get_profile(conn, name).as_dict(), ensure_ascii=False, indent=2))


@profiles_app.command("delete")
def delete_profile(name: str) -> None:
    """Delete a saved profile; an error if there is none of that name."""
    with connect(get_settings()) as conn:
        profile_store.delete_profile(conn, name)
    console.print(f"profile {name} deleted")
