"""The ``gis`` command line: the same library functions the API calls.

Each area's commands live in a module of this package and are registered here.
"""

from __future__ import annotations

import sys

import typer

from gis.cli import db, demo, serve
from gis.cli.common import console
from gis.errors import GisError

app = typer.Typer(help="征收征迁 parcel-blocker: which parcels still block each project.", no_args_is_help=True)
app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.command("serve")(serve.serve)


def main() -> None:
    try:
        app()
    except GisError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
