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
    districts,
    export,
    imagery,
    imports,
    maps,
    projects,
    reports,
    serve,
    standards,
    targets,
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
