"""A static map (PNG) of a project's blockers, for reports and print: matplotlib, no browser, no network.

Drawn in the project's UTM zone (metres, so the scale bar is true), with the stage colours and the
holdout outline of the interactive map. Chinese labels need a CJK font: Noto Sans CJK (Debian
``fonts-noto-cjk``, installed by ``scripts/bootstrap.sh``) or another common one; without any, the
labels fall back to English rather than print empty boxes.

The legend never covers the project line: ``place_legend`` tries the map's corners and edges and keeps
the first place clear of the line and of the title, scale bar and north arrow (covering the fewest
blockers); where no place is clear it widens the view until one is. ``draw_blocker_png`` returns where
the legend and the line landed (``MapLayout``) with the picture, so a test can hold the picture to it.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.patches import Patch
from matplotlib.transforms import Bbox
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
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

# The legend's frame: a colour nothing else on the map uses, so the legend can be found in a rendered picture.
LEGEND_EDGE = "#1f4e79"
FOOTPRINT_WIDTH = 1.8  # points
# Where a legend may go, in the order tried: (loc, anchor in axes fractions). The anchors keep it off the title
# (top left), the north arrow (top right) and the scale bar (bottom left).
LEGEND_PLACES: tuple[tuple[str, tuple[float, float]], ...] = (
    ("lower right", (1.0, 0.0)),
    ("upper right", (1.0, 0.86)),
    ("lower left", (0.0, 0.12)),
    ("upper left", (0.0, 0.93)),
    ("center right", (1.0, 0.5)),
    ("center left", (0.0, 0.5)),
    ("lower center", (0.5, 0.0)),
    ("upper center", (0.5, 0.93)),
)
# How far the view widens, step by step, when no place is clear (the line shrinks towards the middle).
ZOOM_STEPS = (1.0, 1.15, 1.3, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)
SCALE_BAR_BOX = (0.0, 0.0, 0.27, 0.11)  # axes fractions kept free for the scale bar


@dataclass(frozen=True)
class MapLayout:
    """Where the legend and the project line landed on a picture: pixels from its top-left corner."""

    width: float  # the picture's size in these pixels
    height: float
    legend: tuple[float, float, float, float]  # left, top, right, bottom
    line: BaseGeometry  # the project line as drawn, its stroke width included


@dataclass(frozen=True)
class RenderedMap:
    """A rendered file (PNG or PDF) and its layout."""

    data: bytes
    layout: MapLayout


@dataclass(frozen=True)
class MapData:
    """What a static blocker map draws, in the project's UTM zone (metres)."""

    project: dict[str, Any]
    items: list[dict[str, Any]]  # the blockers as ``find_blockers`` gives them, geometry in WGS 84
    crs: Any
    footprint: gpd.GeoSeries
    districts: gpd.GeoSeries
    blockers: gpd.GeoDataFrame


def load_map_data(conn: Connection, project_id: int, *, tolerance: Tolerance, today: date, tz: str,
                  as_of: date | None = None, reveal_personal: bool = False) -> MapData:
    """The project, its blockers (as of the end of ``as_of`` when given) and the districts, projected to the
    project's UTM zone. Owner names are masked unless ``reveal_personal``."""
    project, items = project_blockers(conn, project_id, tolerance, tz=tz, today=today,
                                      reveal_personal=reveal_personal, as_of=as_of)
    footprint = gpd.GeoSeries([shape(project["footprint"])], crs=4326)
    crs = footprint.estimate_utm_crs()
    districts = gpd.GeoSeries([shape(d["geometry"]) for d in district_shapes(conn)], crs=4326).to_crs(crs)
    blockers = gpd.GeoDataFrame(
        {"stage": [i["stage"] for i in items], "holdout": [bool(i["holdout"]) for i in items]},
        geometry=[shape(i["geometry"]) for i in items], crs=4326,
    ).to_crs(crs)
    return MapData(project, items, crs, footprint.to_crs(crs), districts, blockers)


def _scale_length(width_m: float) -> float:
    """A round length (1, 2 or 5 × 10^n metres) about a fifth of the map's width."""
    target = width_m / 5
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def _font_kw(font: str | None, size: float) -> dict[str, Any]:
    return {"family": [font, "DejaVu Sans"], "size": size} if font else {"size": size}


def _axes_aspect(ax: Axes) -> float:
    """Width over height of the axes on the figure."""
    fig_w, fig_h = ax.figure.get_size_inches()
    pos = ax.get_position()
    return (pos.width * fig_w) / (pos.height * fig_h)


def fit_view(ax: Axes, footprint: gpd.GeoSeries) -> None:
    """The footprint with a margin, widened to the axes' proportions so the map is not stretched."""
    west, south, east, north = footprint.total_bounds
    pad = 0.06 * max(east - west, north - south, 100.0)
    west, south, east, north = west - pad, south - pad, east + pad, north + pad
    aspect = _axes_aspect(ax)
    if (east - west) / (north - south) < aspect:
        grow = ((north - south) * aspect - (east - west)) / 2
        west, east = west - grow, east + grow
    else:
        grow = ((east - west) / aspect - (north - south)) / 2
        south, north = south - grow, north + grow
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect("equal")


def draw_layers(ax: Axes, data: MapData) -> None:
    """Districts, the footprint and its line, the blockers by stage and the holdouts outlined."""
    data.districts.boundary.plot(ax=ax, color=DISTRICT_COLOUR, linewidth=1, linestyle=(0, (6, 4)), zorder=1)
    data.footprint.plot(ax=ax, facecolor=FOOTPRINT_COLOUR, alpha=0.06, zorder=2)
    data.footprint.boundary.plot(ax=ax, color=FOOTPRINT_COLOUR, linewidth=FOOTPRINT_WIDTH, zorder=3)
    frame = data.blockers
    if len(frame):
        frame.plot(ax=ax, color=[STAGE_COLOURS[s] for s in frame["stage"]], edgecolor="#333333", linewidth=0.3,
                   zorder=4)
        holdouts = frame[frame["holdout"]]
        if len(holdouts):
            holdouts.plot(ax=ax, facecolor="none", edgecolor=HOLDOUT_COLOUR, linewidth=2.2, zorder=5)


def legend_handles(data: MapData, lang: Lang) -> list[Patch]:
    """One entry per stage with its count, the holdout outline, the footprint and the district lines."""
    lab = LABELS[lang]
    counts = {s: sum(1 for i in data.items if i["stage"] == s) for s in ALL_STAGES}
    handles = [Patch(facecolor=STAGE_COLOURS[s], edgecolor="#333333", label=f"{stage_label(s, lang)} {counts[s]}")
               for s in ALL_STAGES if s != "cleared"]
    return handles + [
        Patch(facecolor="white", edgecolor=HOLDOUT_COLOUR, linewidth=2.2,
              label=f"{lab['holdout_outline']} {sum(1 for i in data.items if i['holdout'])}"),
        Patch(facecolor="none", edgecolor=FOOTPRINT_COLOUR, linewidth=FOOTPRINT_WIDTH, label=lab["footprint"]),
        Patch(facecolor="none", edgecolor=DISTRICT_COLOUR, linestyle="--", label=lab["districts"]),
    ]


def draw_north_arrow(ax: Axes) -> Artist:
    """A north arrow in the map's top right corner (the maps are drawn north up); the artist, so the legend's
    placement can keep clear of it."""
    return ax.annotate("N", xy=(0.97, 0.96), xytext=(0.97, 0.88), xycoords="axes fraction", ha="center",
                       va="center", fontsize=11, arrowprops={"arrowstyle": "-|>", "color": "black"})


def draw_scale_bar(ax: Axes) -> None:
    """A round length at the bottom left (the view's final extent: after ``place_legend``)."""
    west, east = ax.get_xlim()
    south, north = ax.get_ylim()
    length = _scale_length(east - west)
    x0, y0 = west + 0.03 * (east - west), south + 0.04 * (north - south)
    ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=3, solid_capstyle="butt", zorder=6)
    ax.text(x0 + length / 2, y0 + 0.012 * (north - south),
            f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m", ha="center", va="bottom", fontsize=9)


def _display(geom: BaseGeometry, ax: Axes) -> BaseGeometry:
    return shapely.transform(geom, ax.transData.transform)


def _zoom(ax: Axes, limits: tuple[tuple[float, float], tuple[float, float]], factor: float) -> None:
    (west, east), (south, north) = limits
    cx, cy, hw, hh = (west + east) / 2, (south + north) / 2, (east - west) / 2 * factor, (north - south) / 2 * factor
    ax.set_xlim(cx - hw, cx + hw)
    ax.set_ylim(cy - hh, cy + hh)


def place_legend(ax: Axes, handles: Sequence[Artist], *, line: BaseGeometry, line_width: float,
                 points: np.ndarray | None = None, keep_clear: Sequence[Artist] = (),
                 **legend_kw: Any) -> Legend:
    """A legend on ``ax`` that does not cover ``line`` (map coordinates, drawn ``line_width`` points wide), the
    artists in ``keep_clear`` or the scale bar's corner: the first clear place of ``LEGEND_PLACES`` covering the
    fewest ``points`` (map coordinates, e.g. the blockers). Where none is clear, the view widens about its
    centre until one is. ``legend_kw`` goes to ``Axes.legend``."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    half = line_width * fig.dpi / 72 / 2 + 2  # half the stroke, and a pixel or two of air
    furniture = [a.get_window_extent(renderer) for a in keep_clear]
    furniture.append(Bbox.from_extents(*SCALE_BAR_BOX).transformed(ax.transAxes))
    obstacles = shapely.union_all([box(*b.extents) for b in furniture])
    limits = (ax.get_xlim(), ax.get_ylim())
    legend = ax.legend(handles=handles, loc=LEGEND_PLACES[0][0], bbox_to_anchor=LEGEND_PLACES[0][1],
                       bbox_transform=ax.transAxes, edgecolor=LEGEND_EDGE, fancybox=False, **legend_kw)
    frame = legend.get_frame()
    frame.set_alpha(None)  # the outline opaque, so a picture's legend can be found by its colour
    frame.set_facecolor((1, 1, 1, 0.9))  # the fill lets the map show through a little
    for factor in ZOOM_STEPS:
        _zoom(ax, limits, factor)
        drawn = _display(line, ax).buffer(half)
        shown = ax.transData.transform(points) if points is not None and len(points) else np.empty((0, 2))
        best: tuple[int, int] | None = None
        for n, (loc, anchor) in enumerate(LEGEND_PLACES):
            legend.set_loc(loc)
            legend.set_bbox_to_anchor(anchor, transform=ax.transAxes)
            extent = legend.get_window_extent(renderer)
            footprint = box(*extent.extents)
            if footprint.intersects(drawn) or footprint.intersects(obstacles):
                continue
            covered = int(np.count_nonzero(
                (shown[:, 0] >= extent.x0) & (shown[:, 0] <= extent.x1)
                & (shown[:, 1] >= extent.y0) & (shown[:, 1] <= extent.y1)))
            if best is None or covered < best[0]:
                best = (covered, n)
        if best is not None:
            loc, anchor = LEGEND_PLACES[best[1]]
            legend.set_loc(loc)
            legend.set_bbox_to_anchor(anchor, transform=ax.transAxes)
            return legend
    log.warning("no place for the legend clear of the project line")
    return legend


def map_layout(ax: Axes, legend: Legend, line: BaseGeometry, line_width: float) -> MapLayout:
    """Where ``legend`` and ``line`` (map coordinates) are on the figure, in pixels from its top-left corner."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    height = fig.bbox.height
    extent = legend.get_window_extent(renderer)
    drawn = _display(line, ax).buffer(line_width * fig.dpi / 72 / 2)
    flipped = shapely.transform(drawn, lambda xy: np.column_stack([xy[:, 0], height - xy[:, 1]]))
    return MapLayout(width=fig.bbox.width, height=height, legend=(extent.x0, height - extent.y1, extent.x1,
                                                                  height - extent.y0), line=flipped)


def blocker_points(data: MapData) -> np.ndarray:
    """A point inside each blocker (map coordinates): what the legend should cover as little of as it can."""
    if not len(data.blockers):
        return np.empty((0, 2))
    return shapely.get_coordinates(data.blockers.geometry.representative_point().values)


def draw_map(ax: Axes, data: MapData, *, lang: Lang, font: str | None, title: str | None = None,
             legend_size: float = 9) -> Legend:
    """The whole map on ``ax``: layers, an optional title (top left), north arrow, legend placed clear of the
    project line, scale bar. Returns the legend."""
    ax.set_xticks([])
    ax.set_yticks([])
    fit_view(ax, data.footprint)
    draw_layers(ax, data)
    ax.set_xlabel("")  # geopandas names the UTM axes; the map has none
    ax.set_ylabel("")
    furniture: list[Artist] = [draw_north_arrow(ax)]
    if title:
        furniture.append(ax.text(0.01, 0.99, title, transform=ax.transAxes, ha="left", va="top", fontsize=12,
                                 bbox={"facecolor": "white", "alpha": 0.9, "edgecolor": "none"},
                                 **({"fontfamily": [font, "DejaVu Sans"]} if font else {})))
    prop = _font_kw(font, legend_size)
    legend = place_legend(ax, legend_handles(data, lang), line=project_line(data), line_width=FOOTPRINT_WIDTH,
                          points=blocker_points(data), keep_clear=furniture, title=LABELS[lang]["legend_stage"],
                          prop=prop, title_fontproperties=prop)
    draw_scale_bar(ax)
    return legend


def project_line(data: MapData) -> BaseGeometry:
    """The project's red line as the map draws it: the footprint's outline (map coordinates)."""
    return shapely.union_all(data.footprint.boundary.values)


def map_language(lang: Lang) -> tuple[Lang, str | None]:
    """The label language a picture can be drawn in, and the CJK font: English when no CJK font is installed."""
    font = cjk_family()
    if lang == "zh" and font is None:
        log.warning("no CJK font found (install fonts-noto-cjk): the static map is labelled in English")
        return "en", None
    return lang, font


def draw_blocker_png(
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
) -> RenderedMap:
    """``render_blocker_png``'s picture and where its legend and project line landed."""
    today = today or today_in(tz)
    lang, font = map_language(lang)
    lab = LABELS[lang]
    data = load_map_data(conn, project_id, tolerance=tolerance, today=today, tz=tz, as_of=as_of)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    title = (f"{data.project['name']} · {lab['blocking']} {len(data.items)} {lab['unit']} · {lab['as_of']} "
             f"{(as_of or today).isoformat()}")
    legend = draw_map(ax, data, lang=lang, font=font, title=title)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return RenderedMap(out.getvalue(), map_layout(ax, legend, project_line(data), FOOTPRINT_WIDTH))


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
    holdouts outlined, district boundaries, legend with counts (clear of the project line), title, scale bar
    and north arrow. No personal data is drawn. With ``as_of``, the blockers at the end of that day (a report's
    date)."""
    return draw_blocker_png(conn, project_id, tolerance=tolerance, today=today, as_of=as_of, tz=tz, lang=lang,
                            width=width, height=height, dpi=dpi).data
