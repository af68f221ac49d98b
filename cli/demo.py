"""``gis demo load``."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import text

from cli import db
from cli.common import console, progress_bar
from gis.platform.config import Settings, get_settings
from gis.platform.db import get_engine

app = typer.Typer(help="The synthetic demo city.")


@app.command("load")
def load(
    parcels: Annotated[int, typer.Option(min=10, help="How many parcels to generate.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same city.")] = 42,
) -> None:
    """Generate the synthetic demo city and load it, replacing the previous one."""
    from gis.demo.generator import generate_city
    from gis.demo.load import load_city

    settings = get_settings()
    db.up()
    with progress_bar() as progress:
        gen = progress.add_task("generating parcels", total=parcels)
        city = generate_city(
            parcels, seed=seed, srid=settings.srid, progress=lambda n: progress.update(gen, completed=n)
        )
        progress.update(gen, completed=parcels)
        task = progress.add_task("loading parcels", total=parcels)
        with get_engine(settings).begin() as conn:
            written = load_city(conn, city, progress=lambda n: progress.advance(task, n))
        progress.add_task("analysing", total=None)
        with get_engine(settings).connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    console.print(", ".join(f"{k} {v}" for k, v in written.items()))
    from gis.demo.resettlement import write_reoccupation_imagery
    from gis.imagery.demo import write_demo_imagery  # two synthetic height epochs around one project
    from gis.platform.errors import InvalidInput

    try:
        with get_engine(settings).begin() as conn:
            shot = write_demo_imagery(conn, settings.data_dir / "imagery" / "demo", settings, seed=seed)
        console.print(f"demo imagery over {shot['project_code']}: layers {[v['id'] for v in shot['layers'].values()]}")
        with get_engine(settings).begin() as conn:  # cleared land built on again (再次占用)
            write_reoccupation_imagery(conn, settings.data_dir / "imagery" / "cleared-demo", seed=seed)
    except InvalidInput as exc:  # a city too small to fly over is still a city
        console.print(f"no demo imagery: {exc}")
    _demo_users(settings)


def _demo_users(settings: Settings) -> None:
    """One user per role, with a token and a login; printed once and kept in a mode-600 file."""
    from gis.records.users import create_demo_users, write_credentials

    with get_engine(settings).begin() as conn:
        creds = create_demo_users(conn)
    base = f"http://{settings.host}:{settings.port}"
    path = settings.data_dir / "demo-credentials.txt"
    write_credentials(path, creds, base)
    console.print(f"demo users (also in {path}, mode 600); sign in at {base}/login")
    for c in creds:
        typer.echo(f"{c.role.value:16} login {c.name} / {c.password}   token {c.token}")
