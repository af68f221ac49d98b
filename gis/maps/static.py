"""A static map (PNG) of a project's blockers, for reports and print: matplotlib, no browser, no network.

Drawn in the project's UTM zone (metres, so the scale bar is true), with the stage colours and the
holdout outline of the interactive map. Chinese labels need a CJK font: Noto Sans CJK (Debian
``fonts-noto-cjk``, installed by ``scripts/bootstrap.sh``) or another common one; without any, the
labels fall back to English rather than print empty boxes.
"""

from __future__ import annotations

import io
import logging
import math
from datetime import date
from typing import Any

import geopandas as gpd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from shapely.geometry import shape
from sqlalchemy import Connection

from gis.domain.stages import ALL_STAGES, today_in
from gis.domain.tolerance import Tolerance
from gis.maps.blocker_map import project_blockers
from gis.maps.fonts import cjk_family
from gis.maps.page import (
    DISTRICT_COLOUR,
    FOOTPRINT_COLOUR,
    HOLDOUT_COLOUR,
    LABELS,
    STAGE_COLOURS,
    Lang,
    district_shapes,
    stage_label,
)
from gis.platform.config import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)

def _scale_length(width_m: float) -> float:
    """A round length (1, 2 or 5 × 10^n metres) about a fifth of the map's width."""
    target = width_m / 5
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def render_blocker_png(
    conn: Connection,
    project_id: int,
    *,
    tolerance: Tolerance,
    today: date | None = None,
    as_of: date | None = None,
    tz: str = DEFAULT_TIMEZONE,
    lang: Lang = "zh",
    width: int = 1600,
    height: int = 1200,
    dpi: int = 150,
) -> bytes:
    """A PNG (``width`` × ``height`` pixels) of the project's footprint and blockers coloured by stage,
    holdouts outlined, district boundaries, legend with counts, title, scale bar and north arrow.
    No personal data is drawn. With ``as_of``, the blockers at the end of that day (a report's date)."""
    today = today or today_in(tz)
    font = cjk_family()
    if lang == "zh" and font is None:
        log.warning("no CJK font found (install fonts-noto-cjk): the static map is labelled in English")
        lang = "en"
    lab = LABELS[lang]
    project, items = project_blockers(conn, project_id, tolerance, tz=tz, today=today, reveal_personal=False,
                                      as_of=as_of)

    footprint = gpd.GeoSeries([shape(project["footprint"])], crs=4326)
    crs = footprint.estimate_utm_crs()
    footprint = footprint.to_crs(crs)
    west, south, east, north = footprint.total_bounds
    pad = 0.06 * max(east - west, north - south, 100.0)
    west, south, east, north = west - pad, south - pad, east + pad, north + pad
    # Widen the view to the picture's proportions so the map is not stretched.
    aspect = width / height
    if (east - west) / (north - south) < aspect:
        grow = ((north - south) * aspect - (east - west)) / 2
        west, east = west - grow, east + grow
    else:
        grow = ((east - west) / aspect - (north - south)) / 2
        south, north = south - grow, north + grow

    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect("equal")
    text_kw: dict[str, Any] = {"fontfamily": [font, "DejaVu Sans"]} if font else {}

    districts = gpd.GeoSeries([shape(d["geometry"]) for d in district_shapes(conn)], crs=4326).to_crs(crs)
    districts.boundary.plot(ax=ax, color=DISTRICT_COLOUR, linewidth=1, linestyle=(0, (6, 4)), zorder=1)
    footprint.plot(ax=ax, facecolor=FOOTPRINT_COLOUR, alpha=0.06, zorder=2)
    footprint.boundary.plot(ax=ax, color=FOOTPRINT_COLOUR, linewidth=1.8, zorder=3)
    if items:
        frame = gpd.GeoDataFrame(
            {"stage": [i["stage"] for i in items], "holdout": [bool(i["holdout"]) for i in items]},
            geometry=[shape(i["geometry"]) for i in items], crs=4326,
        ).to_crs(crs)
        frame.plot(ax=ax, color=[STAGE_COLOURS[s] for s in frame["stage"]], edgecolor="#333333", linewidth=0.3,
                   zorder=4)
        holdouts = frame[frame["holdout"]]
        if len(holdouts):
            holdouts.plot(ax=ax, facecolor="none", edgecolor=HOLDOUT_COLOUR, linewidth=2.2, zorder=5)

    counts = {s: sum(1 for i in items if i["stage"] == s) for s in ALL_STAGES}
    handles = [Patch(facecolor=STAGE_COLOURS[s], edgecolor="#333333", label=f"{stage_label(s, lang)} {counts[s]}")
               for s in ALL_STAGES if s != "cleared"]
    handles += [
        Patch(facecolor="white", edgecolor=HOLDOUT_COLOUR, linewidth=2.2,
              label=f"{lab['holdout_outline']} {sum(1 for i in items if i['holdout'])}"),
        Patch(facecolor="none", edgecolor=FOOTPRINT_COLOUR, linewidth=1.8, label=lab["footprint"]),
        Patch(facecolor="none", edgecolor=DISTRICT_COLOUR, linestyle="--", label=lab["districts"]),
    ]
    prop = {"family": [font, "DejaVu Sans"], "size": 9} if font else {"size": 9}
    ax.legend(handles=handles, loc="lower right", title=lab["legend_stage"], prop=prop, title_fontproperties=prop,
              framealpha=0.9)
    title = (f"{project['name']} · {lab['blocking']} {len(items)} {lab['unit']} · "
             f"{lab['as_of']} {(as_of or today).isoformat()}")
    ax.text(0.01, 0.99, title, transform=ax.transAxes, ha="left", va="top", fontsize=12,
            bbox={"facecolor": "white", "alpha": 0.9, "edgecolor": "none"}, **text_kw)

    length = _scale_length(east - west)
    x0, y0 = west + 0.03 * (east - west), south + 0.04 * (north - south)
    ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=3, solid_capstyle="butt", zorder=6)
    ax.text(x0 + length / 2, y0 + 0.012 * (north - south),
            f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m", ha="center", va="bottom", fontsize=9)
    ax.annotate("N", xy=(0.97, 0.96), xytext=(0.97, 0.88), xycoords="axes fraction", ha="center", va="center",
                fontsize=11, arrowprops={"arrowstyle": "-|>", "color": "black"})

    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()
