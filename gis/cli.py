"""The ``gis`` command line: the same library functions the API calls."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text

from gis import cluster, migrate
from gis.config import get_settings
from gis.db import get_engine
from gis.errors import GisError

app = typer.Typer(help="征收征迁 parcel-blocker: which parcels still block each project.", no_args_is_help=True)
db_app = typer.Typer(help="The database: the embedded PostgreSQL+PostGIS cluster, or GIS_DATABASE_URL.")
demo_app = typer.Typer(help="The synthetic demo city.")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


@db_app.command("up")
def db_up() -> None:
    """Start the embedded cluster (if used) and migrate the schema. Safe to repeat."""
    settings = get_settings()
    if not settings.database_url:
        st = cluster.start(settings)
        console.print(f"embedded PostgreSQL running, data folder {st.data_dir}")
    migrate.upgrade(settings)
    console.print("schema up to date")


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster."""
    settings = get_settings()
    if settings.database_url:
        console.print("GIS_DATABASE_URL is set: the external server is not ours to stop")
        return
    cluster.stop(settings)
    console.print("embedded PostgreSQL stopped")


@db_app.command("status")
def db_status() -> None:
    """Say whether the cluster is initialised and running."""
    settings = get_settings()
    if settings.database_url:
        console.print("external database (GIS_DATABASE_URL)")
        return
    st = cluster.status(settings)
    typer.echo(f"data folder: {st.data_dir}\ninitialised: {st.initialised}\nrunning: {st.running}")
    if not st.running:
        raise typer.Exit(3)


@demo_app.command("load")
def demo_load(
    parcels: Annotated[int, typer.Option(min=10, help="How many parcels to generate.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same city.")] = 42,
) -> None:
    """Generate the synthetic demo city and load it, replacing the previous one."""
    from gis.demo.generator import generate_city
    from gis.demo.load import load_city

    settings = get_settings()
    db_up()
    with _progress() as progress:
        gen = progress.add_task("generating parcels", total=parcels)
        city = generate_city(parcels, seed=seed, srid=settings.srid, progress=lambda n: progress.update(gen, completed=n))
        progress.update(gen, completed=parcels)
        task = progress.add_task("loading parcels", total=parcels)
        with get_engine(settings).begin() as conn:
            written = load_city(conn, city, progress=lambda n: progress.advance(task, n))
        progress.add_task("analysing", total=None)
        with get_engine(settings).connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    console.print(", ".join(f"{k} {v}" for k, v in written.items()))


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the API (starting the embedded database if needed)."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    db_up()
    host, port = host or settings.host, port or settings.port
    console.print(f"API on http://{host}:{port}/  (health: /health, docs: /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def main() -> None:
    try:
        app()
    except GisError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
