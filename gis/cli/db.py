"""``gis db up|down|status``."""

from __future__ import annotations

import typer

from gis import cluster
from gis.cli.common import console
from gis.config import get_settings

app = typer.Typer(help="The database: the embedded PostgreSQL+PostGIS cluster, or GIS_DATABASE_URL.")


@app.command("up")
def up() -> None:
    """Start the embedded cluster (if used) and migrate the schema. Safe to repeat."""
    from gis import migrate  # alembic: loaded for the commands that migrate only

    settings = get_settings()
    if not settings.database_url:
        st = cluster.start(settings)
        console.print(f"embedded PostgreSQL running, data folder {st.data_dir}")
    migrate.upgrade(settings)
    console.print("schema up to date")


@app.command("down")
def down() -> None:
    """Stop the embedded cluster."""
    settings = get_settings()
    if settings.database_url:
        console.print("GIS_DATABASE_URL is set: the external server is not ours to stop")
        return
    cluster.stop(settings)
    console.print("embedded PostgreSQL stopped")


@app.command("status")
def status() -> None:
    """Say whether the cluster is initialised and running (exit code 3 when it is not running)."""
    settings = get_settings()
    if settings.database_url:
        typer.echo("external database (GIS_DATABASE_URL)")
        return
    st = cluster.status(settings)
    typer.echo(f"data folder: {st.data_dir}\ninitialised: {st.initialised}\nrunning: {st.running}")
    if not st.running:
        raise typer.Exit(3)
