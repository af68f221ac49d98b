"""``gis map PROJECT --png out.png``: the static blocker map, the same picture as ``/projects/{id}/map.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import console
from gis.domain.tolerance import Tolerance
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.platform.errors import InvalidInput
from gis.records.projects import resolve_project


def map_command(
    project: Annotated[str, typer.Argument(help="Project id or code, e.g. xinan_road.")],
    png: Annotated[Path, typer.Option("--png", dir_okay=False, help="Write the PNG here.")],
    lang: Annotated[str, typer.Option(help="Labels: zh or en.")] = "zh",
    width: Annotated[int, typer.Option(min=200, max=6000, help="Pixels.")] = 1600,
    height: Annotated[int, typer.Option(min=200, max=6000, help="Pixels.")] = 1200,
) -> None:
    """A static map (PNG) of a project's blockers: by stage, holdouts outlined, footprint, districts."""
    if lang not in ("zh", "en"):
        raise InvalidInput("lang must be zh or en", "--lang")
    # Imported here: matplotlib and folium would otherwise load for every other command too.
    from gis.maps.static import render_blocker_png

    settings = get_settings()
    with connect(settings) as conn:
        data = render_blocker_png(conn, resolve_project(conn, project), tolerance=Tolerance.from_settings(settings),
                                  tz=settings.city_timezone, lang=lang, width=width, height=height)
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(data)
    console.print(f"wrote {png} ({len(data):,} bytes, {width}×{height})")
