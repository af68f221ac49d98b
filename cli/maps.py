"""``gis map PROJECT --png out.png`` and ``--pdf out.pdf``: the static blocker map and the battle map (作战图), the
same files as ``/projects/{id}/map.png`` and ``/projects/{id}/map.pdf``."""

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
    png: Annotated[Path | None, typer.Option("--png", dir_okay=False, help="Write the PNG here.")] = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", dir_okay=False,
                                             help="Write the battle map (作战图, A3 landscape PDF) here.")] = None,
    lang: Annotated[str, typer.Option(help="Labels: zh or en.")] = "zh",
    width: Annotated[int, typer.Option(min=200, max=6000, help="PNG pixels.")] = 1600,
    height: Annotated[int, typer.Option(min=200, max=6000, help="PNG pixels.")] = 1200,
    reveal_personal: Annotated[bool, typer.Option("--reveal-personal",
                                                  help="Holdouts' owner names unmasked in the PDF.")] = False,
) -> None:
    """A static map (PNG) of a project's blockers, and/or its battle map (PDF) for the weekly dispatch meeting."""
    if lang not in ("zh", "en"):
        raise InvalidInput("lang must be zh or en", "--lang")
    if png is None and pdf is None:
        raise InvalidInput("say where to write the map: --png FILE and/or --pdf FILE", "--png")
    # Imported here: matplotlib and folium would otherwise load for every other command too.
    from gis.maps.battle_map import render_battle_map
    from gis.maps.static import render_blocker_png

    settings = get_settings()
    tolerance = Tolerance.from_settings(settings)
    with connect(settings) as conn:
        project_id = resolve_project(conn, project)
        picture = None if png is None else render_blocker_png(
            conn, project_id, tolerance=tolerance, tz=settings.city_timezone, lang=lang, width=width, height=height)
        battle = None if pdf is None else render_battle_map(
            conn, project_id, tolerance=tolerance, tz=settings.city_timezone, lang=lang,
            reveal_personal=reveal_personal)
    for path, data, what in ((png, picture, f"{width}×{height}"), (pdf, battle and battle.data, "A3")):
        if path is not None and data is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            console.print(f"wrote {path} ({len(data):,} bytes, {what})")
