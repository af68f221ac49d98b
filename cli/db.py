"""``gis db up|down|status|backup|restore``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import console
from gis.platform import cluster
from gis.platform.config import get_settings

app = typer.Typer(help="The database: the embedded PostgreSQL+PostGIS cluster, or GIS_DATABASE_URL.")


@app.command("up")
def up() -> None:
    """Start the embedded cluster (if used) and migrate the schema. Safe to repeat."""
    from gis.platform import migrate  # alembic: loaded for the commands that migrate only

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


@app.command("backup")
def backup_command(
    file: Annotated[Path | None, typer.Argument(help="The backup file to write (.tar); default "
                                                     "<data folder>/backups/parcel-blocker-<UTC time>.tar.")] = None,
) -> None:
    """Back up the database (pg_dump, custom format), the archive's documents and the imagery files into one
    tar file with a manifest of SHA-256s. Safe while the service runs."""
    from gis.platform.backup import backup

    result = backup(get_settings(), file)
    console.print(f"backup written: {result.path} ({result.size_bytes / 1e6:.1f} MB; "
                  f"{result.counts['parcels']} parcels, {result.counts['parcel_events']} history events, "
                  f"{result.documents} documents, {result.imagery} imagery files)")
    if result.missing_imagery:
        console.print(f"[yellow]warning:[/yellow] imagery layers without their file (not in the backup): "
                      f"{', '.join(map(str, result.missing_imagery))}")
    typer.echo(str(result.path))


@app.command("restore")
def restore_command(
    file: Annotated[Path, typer.Argument(help="A backup written by `gis db backup`.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a database or documents folder that is not "
                                                        "empty (everything in them is lost).")] = False,
    imagery_dir: Annotated[Path | None, typer.Option(help="Put the imagery files here (default: where they "
                                                          "were, or the same place in the new data folder).")] = None,
) -> None:
    """Restore a backup into an empty database and data folder (the embedded cluster is created if needed);
    every file is checked against the backup's SHA-256s first. Stop the service while it runs."""
    from gis.platform.backup import restore

    result = restore(get_settings(), file, force=force, imagery_dir=imagery_dir)
    console.print(f"restored: {result.counts['parcels']} parcels, {result.counts['parcel_events']} history events, "
                  f"{result.documents} documents, {result.imagery} imagery files")
    for layer_id, path in result.moved_imagery.items():
        console.print(f"imagery layer {layer_id} now reads {path}")
