"""The battle map (作战图, GET /projects/{id}/map.pdf) and legends that never cover the project line.

The PDF is read back with poppler (``pdftotext``, ``pdftoppm``: Debian's poppler-utils). Where a legend sits is
found in the rendered picture by its frame's colour; where the red line runs comes from the renderer's layout,
which the test first holds to the picture's own red pixels (a legend hides what it covers, so the covered part
of a line cannot be seen in the picture itself).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import numpy as np
import pytest
import shapely
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image
from shapely.geometry import MultiLineString, box
from shapely.geometry.base import BaseGeometry

from gis.domain.tolerance import Tolerance
from gis.maps.battle_map import render_battle_map
from gis.maps.page import FOOTPRINT_COLOUR
from gis.maps.static import LEGEND_EDGE, MapLayout, draw_blocker_png, place_legend
from gis.records.projects import resolve_project

DEMO_PROJECTS = ("hsr", "xinan_road", "devzone")
T = TypeVar("T")


def poppler(tool: str, *args: str) -> str:
    """Run a poppler tool (Debian's poppler-utils, installed by scripts/bootstrap.sh); its standard output."""
    assert shutil.which(tool), f"{tool} is missing: install poppler-utils (scripts/bootstrap.sh)"
    return subprocess.run([tool, *args], check=True, capture_output=True, text=True).stdout


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


def legend_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """The legend's frame in a picture (left, top, right, bottom pixels): the long runs of its frame colour."""
    mask = np.all(pixels == _rgb(LEGEND_EDGE), axis=2)
    rows = np.flatnonzero(mask.sum(axis=1) >= 40)
    cols = np.flatnonzero(mask.sum(axis=0) >= 40)
    assert len(rows) and len(cols), "the legend's frame is in the picture"
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def check_legend_clear_of_line(pixels: np.ndarray, layout: MapLayout) -> None:
    """The legend found in ``pixels`` is where ``layout`` says; the line's visible pixels lie on the layout's line;
    and the legend does not touch the line anywhere, seen or hidden."""
    height, width = pixels.shape[:2]
    sx, sy = width / layout.width, height / layout.height
    left, top, right, bottom = legend_box(pixels)
    expected = (layout.legend[0] * sx, layout.legend[1] * sy, layout.legend[2] * sx, layout.legend[3] * sy)
    assert np.allclose((left, top, right, bottom), expected, atol=3), "the layout's legend is the drawn one"

    line = layout.line if (sx, sy) == (1, 1) else _scaled(layout.line, sx, sy)
    red = np.all(pixels == _rgb(FOOTPRINT_COLOUR), axis=2)
    red[top:bottom + 1, left:right + 1] = False  # the legend's own swatch of the red line
    ys, xs = np.nonzero(red)
    assert len(xs) > 30, "the red line is drawn"
    on_line = shapely.contains_xy(line.buffer(2.5), xs + 0.5, ys + 0.5)
    assert on_line.mean() >= 0.97, "the layout's line is where the picture's red line is"

    frame = box(left - 1, top - 1, right + 1, bottom + 1)
    assert not frame.intersects(line), f"the legend {frame.bounds} covers the project line"


def _scaled(geom: BaseGeometry, sx: float, sy: float) -> BaseGeometry:
    return shapely.transform(geom, lambda xy: xy * np.array([sx, sy]))


def _pdf_pixels(pdf: bytes, tmp_path: Path, dpi: int = 72) -> np.ndarray:
    path = tmp_path / "map.pdf"
    path.write_bytes(pdf)
    # No anti-aliasing: the frame and the line keep their exact colours.
    poppler("pdftoppm", "-r", str(dpi), "-aa", "no", "-aaVector", "no", "-png", "-singlefile", str(path),
            str(tmp_path / "page"))
    return np.asarray(Image.open(tmp_path / "page.png").convert("RGB"))


def on_one_day(client, produce: Callable[[date], T]) -> T:
    """``produce(today)``, done again if the city's day turned meanwhile (at 16:00 UTC in Asia/Shanghai): the
    API and the renderer called apart must draw the same day."""
    for _ in range(2):
        before = date.fromisoformat(client.get("/projects").json()["date"])
        result = produce(before)
        if client.get("/projects").json()["date"] == before.isoformat():
            return result
    raise AssertionError("the day turned twice during one test")


@dataclass(frozen=True)
class Fetched:
    pdf: bytes
    day: date
    filename: str


@pytest.fixture(scope="module")
def xinan(client, role_headers) -> Fetched:
    """新安路's battle map as a viewer gets it, and the day it was drawn."""
    def fetch(day: date) -> Fetched:
        r = client.get("/projects/xinan_road/map.pdf", headers=role_headers["viewer"])
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        return Fetched(r.content, day, r.headers["content-disposition"])

    return on_one_day(client, fetch)


def test_the_pdf_reads_back_with_the_name_the_date_and_the_blocker_count(client, xinan, tmp_path):
    blockers = client.get("/projects/xinan_road/blockers", params={"limit": 10000}).json()
    path = tmp_path / "map.pdf"
    path.write_bytes(xinan.pdf)
    words = poppler("pdftotext", "-layout", str(path), "-")
    info = poppler("pdfinfo", str(path))
    facts = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in info.splitlines() if ":" in line)}
    assert facts["Pages"] == "1" and facts["Page size"] == "1190.55 x 841.89 pts (A3)", "one A3 landscape page"
    assert "新安路 作战图" in words and f"截至 {xinan.day.isoformat()}" in words
    total = blockers["total"]
    assert total > 100 and f"阻碍地块 {total} 宗" in words
    holdouts = [b for b in blockers["items"] if b["holdout"]]
    assert f"其中钉子户 {len(holdouts)} 户" in words
    for h in holdouts:
        assert h["code"] in words, "every holdout is named"
    # The 合计 row of the district × stage table adds up to the same count.
    totals = [line.split("合计", 1)[1].split() for line in words.splitlines() if "合计" in line]
    assert any(str(total) in row for row in totals)


def test_holdout_owners_are_masked_unless_the_role_may_see_them(client, role_headers, xinan, tmp_path):
    full = client.get("/projects/xinan_road/blockers", params={"holdout": "true", "limit": 100}).json()["items"]
    assert full and all("*" not in h["owner_name"] for h in full)  # the test client is an admin
    inspector = client.get("/projects/xinan_road/map.pdf", headers=role_headers["inspector"]).content

    def text_of(pdf: bytes) -> str:
        (tmp_path / "x.pdf").write_bytes(pdf)
        return poppler("pdftotext", str(tmp_path / "x.pdf"), "-")

    masked, shown = text_of(xinan.pdf), text_of(inspector)
    for h in full:
        assert h["owner_name"] not in masked and h["owner_name"] in shown
    assert "已按查看权限脱敏" in masked and "为实名" in shown


def test_the_pdf_legend_does_not_cover_the_red_line(client, engine, settings, xinan, tmp_path):
    with engine.connect() as conn:
        rendered = render_battle_map(conn, resolve_project(conn, "xinan_road"), tolerance=Tolerance.from_settings(
            settings), today=xinan.day, tz=settings.city_timezone)
    assert rendered.data == xinan.pdf, "the API's PDF is the function's, byte for byte (no creation time)"
    check_legend_clear_of_line(_pdf_pixels(xinan.pdf, tmp_path), rendered.layout)


@pytest.mark.parametrize("code", DEMO_PROJECTS)
@pytest.mark.parametrize(("width", "height", "dpi"), [(1600, 1200, 150), (1000, 750, 100)])  # API; report maps
def test_the_png_legend_does_not_cover_the_red_line(engine, settings, demo_city, code, width, height, dpi):
    with engine.connect() as conn:
        rendered = draw_blocker_png(conn, resolve_project(conn, code), tolerance=Tolerance.from_settings(settings),
                                    tz=settings.city_timezone, width=width, height=height, dpi=dpi)
    pixels = np.asarray(Image.open(io.BytesIO(rendered.data)).convert("RGB"))
    assert pixels.shape[:2] == (height, width)
    check_legend_clear_of_line(pixels, rendered.layout)


def test_the_api_png_is_the_laid_out_one(client, engine, settings):
    def both(day: date) -> tuple[bytes, bytes]:
        with engine.connect() as conn:
            rendered = draw_blocker_png(conn, resolve_project(conn, "xinan_road"),
                                        tolerance=Tolerance.from_settings(settings), today=day,
                                        tz=settings.city_timezone)
        return rendered.data, client.get("/projects/xinan_road/map.png").content

    drawn, served = on_one_day(client, both)
    assert served == drawn


def test_a_line_through_every_corner_widens_the_view_for_the_legend():
    """Where the line crosses every place a legend may go, the view widens until one is clear."""
    fig = Figure(figsize=(8, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 800)
    ax.set_ylim(0, 600)
    ax.set_aspect("equal")
    # A grid 80 px apart and both diagonals: no place on the map is big enough for the legend.
    grid = [[(x, 0), (x, 600)] for x in range(0, 801, 80)] + [[(0, y), (800, y)] for y in range(0, 601, 80)]
    line = MultiLineString([*grid, [(0, 0), (800, 600)], [(0, 600), (800, 0)]])
    for part in line.geoms:
        ax.plot(*part.xy, color=FOOTPRINT_COLOUR, linewidth=2)
    handles = [Patch(facecolor="red", label=f"stage {n}") for n in range(8)]
    legend = place_legend(ax, handles, line=line, line_width=2)
    renderer = fig.canvas.get_renderer()
    extent = legend.get_window_extent(renderer)
    shown = shapely.transform(line, ax.transData.transform).buffer(1)
    assert not box(*extent.extents).intersects(shown)
    assert ax.get_xlim()[1] - ax.get_xlim()[0] > 800, "the view widened"


def test_the_cli_writes_the_same_pdf(client, role_headers, settings, demo_city, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli import app
    from gis.platform.config import get_settings

    for key, value in {"GIS_DATA_DIR": str(settings.data_dir), "GIS_PG_FSYNC": "false"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    out = tmp_path / "xinan.pdf"

    def both(_day: date) -> tuple[bytes, bytes]:
        result = CliRunner().invoke(app, ["map", "xinan_road", "--pdf", str(out)])
        assert result.exit_code == 0, result.output
        return out.read_bytes(), client.get("/projects/xinan_road/map.pdf", headers=role_headers["viewer"]).content

    try:
        written, served = on_one_day(client, both)
        neither = CliRunner().invoke(app, ["map", "xinan_road"])
    finally:
        get_settings.cache_clear()
    assert written == served
    assert neither.exit_code != 0 and "--pdf" in str(neither.exception)


def test_the_pdf_file_name_says_what_and_when(xinan):
    assert quote(f"新安路_作战图_{xinan.day.isoformat()}.pdf") in xinan.filename


def test_bad_input(client, anon_client, role_headers):
    for path in ("/projects/no_such_project/map.pdf", "/projects/99999/map.pdf"):
        r = client.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/json"), path
        assert r.json()["detail"]
    r = client.get("/projects/xinan_road/map.pdf", params={"langg": "zh"})
    assert r.status_code == 422 and "langg" in r.text
    assert client.get("/projects/xinan_road/map.pdf", params={"lang": "fr"}).status_code == 422
    assert anon_client.get("/projects/xinan_road/map.pdf").status_code == 401
    assert anon_client.get("/projects/xinan_road/map.pdf", headers=role_headers["viewer"]).status_code == 200
