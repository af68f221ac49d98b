"""The ``gis`` command line: the same library functions the API calls.

Each area's commands live in a module of this package and are registered here.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from cli import (
    analysis,
    checks,
    compensation,
    db,
    demo,
    disclosures,
    districts,
    export,
    findings,
    imagery,
    imports,
    maps,
    projects,
    reports,
    resettlement,
    serve,
    standards,
    targets,
    units,
    user,
)
from cli.common import console
from gis.platform.errors import GisError

app = typer.Typer(help="征收征迁 parcel-blocker: which parcels still block each project.", no_args_is_help=True)
app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.add_typer(imagery.app, name="imagery")
app.add_typer(user.app, name="user")
app.add_typer(districts.app, name="districts")
app.add_typer(projects.app, name="projects")
app.command("serve")(serve.serve)
app.command("blockers")(analysis.blockers)
app.command("overlaps")(analysis.overlaps)
app.command("progress")(analysis.progress)
app.command("map")(maps.map_command)
app.command("import")(imports.import_command)
app.add_typer(imports.profiles_app, name="profiles")
app.add_typer(export.app, name="export")
app.add_typer(checks.app, name="check")
app.command("report")(reports.report)
app.add_typer(standards.app, name="standards")
app.add_typer(targets.app, name="targets")
app.add_typer(units.app, name="units")
app.add_typer(units.posts_app, name="posts")
app.add_typer(disclosures.app, name="disclosures")
app.add_typer(resettlement.app, name="resettlement")
app.add_typer(resettlement.land_app, name="cleared-land")
app.add_typer(findings.app, name="findings")
app.command("contest")(findings.contest_command)
app.add_typer(compensation.app, name="compensation")


def main() -> None:
    """The ``gis`` entry point: a GisError ends the command with its message (and where) and exit status 1, not a
    traceback."""
    try:
        app()
    except GisError as exc:
        where = exc.where
        # The message is text, not markup: "[longitude, latitude]" would otherwise vanish as a style tag.
        console.print("[red]error:[/red] " + escape(f"{where + ': ' if where else ''}{exc}"), highlight=False)
        sys.exit(1)
