"""Ad hoc overlaps through the API against an analyst's in-memory GeoPandas, in one run.

    python -m bench.overlaps --parcels 100000 [--rounds 7] [--results bench/RESULTS.md]

Two queries over the demo city, both scaled to its extent: a meandering 43 km line with a 100 m
corridor (the issue's case; shorter where the city is too small to hold it) and an irregular
polygon (a 24-pointed star around the centre). The service side is ``POST /overlaps`` on a real
uvicorn process over HTTP with a viewer's token: parse, footprint, SQL, totals and the JSON body,
all of it. The GeoPandas side is what an analyst would do instead: the parcels read into a
GeoDataFrame once (untimed), then, timed, the same footprint (``gis.domain.geometry.corridor``),
the spatial index probe, and the intersection areas: the faster of plain ``intersection`` and a
prepared footprint that takes parcels wholly inside at their own area and clips only the edge.
The sides alternate, round by round, so both see the same load. Both answers are checked against
each other (count and total area within 0.1 %) before any figure is written.

``--explain`` also writes the statement's ``EXPLAIN (ANALYZE, BUFFERS)`` for the line case.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from sqlalchemy import text

from bench.blockers import ApiClient
from bench.common import DEFAULT_DATA_DIR, ROOT, api_server, bench_settings, bench_token, ensure_city, write_section
from gis.domain.geometry import corridor
from gis.domain.tolerance import Tolerance
from gis.platform.db import get_engine

LINE_KM = 43.0
WIDTH_M = 100.0


def meander(extent: tuple[float, float, float, float], length_m: float) -> LineString:
    """A 20-vertex line from the west to the east of ``extent``, its swing chosen (by bisection) so that it is
    ``length_m`` long, or as long as the extent allows."""
    x0, y0, x1, y1 = extent
    w, h = x1 - x0, y1 - y0
    xs = x0 + w * (0.05 + 0.9 * np.arange(20) / 19)

    def line(amp: float) -> LineString:
        return LineString(np.column_stack([xs, y0 + h * (0.5 + amp * np.sin(np.arange(20) * 1.3))]))

    lo, hi = 0.0, 0.45
    if line(hi).length <= length_m:
        return line(hi)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if line(mid).length < length_m else (lo, mid)
    return line(lo)


def star(extent: tuple[float, float, float, float]) -> Polygon:
    """A 24-pointed star around the centre of ``extent``, radii alternating between 8 % and 16 % of its height."""
    x0, y0, x1, y1 = extent
    cx, cy, h = (x0 + x1) / 2, (y0 + y1) / 2, y1 - y0
    angles = np.arange(48) * math.pi / 24
    radii = np.where(np.arange(48) % 2 == 0, 0.16 * h, 0.08 * h)
    return Polygon(np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)]))


def geopandas_overlaps(parcels: gpd.GeoDataFrame, footprint: shapely.Geometry) -> tuple[int, float]:
    """The analyst's answer: (parcels hit, total overlap m²), the faster of plain and prepared clipping."""
    geoms = parcels.geometry.values._data  # the shapely array, as GeoPandas' own methods use it
    idx = parcels.sindex.query(footprint, predicate="intersects")
    hit = geoms[idx]
    shapely.prepare(footprint)
    inside = shapely.contains_properly(footprint, hit)
    areas = shapely.area(hit)
    edge = ~inside
    areas[edge] = shapely.area(shapely.intersection(hit[edge], footprint))
    shapely.destroy_prepared(footprint)
    return len(idx), float(areas.sum())


def geopandas_plain(parcels: gpd.GeoDataFrame, footprint: shapely.Geometry) -> tuple[int, float]:
    """The analyst's plainer answer: the index probe, then every hit clipped."""
    geoms = parcels.geometry.values._data
    idx = parcels.sindex.query(footprint, predicate="intersects")
    return len(idx), float(shapely.area(shapely.intersection(geoms[idx], footprint)).sum())


def timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - t0) * 1000, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    ap.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument("--explain", action="store_true")
    args = ap.parse_args()
    settings = bench_settings(Path(args.data_dir))
    ensure_city(settings, args.parcels)
    token = bench_token(settings, "bench-viewer", "viewer")
    engine = get_engine(settings)
    with engine.connect() as conn:
        parcels = gpd.read_postgis(text("SELECT id, geom FROM parcels ORDER BY id"), conn, geom_col="geom")
        x0, y0, x1, y1 = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                                           "FROM (SELECT ST_Extent(geom) AS e FROM parcels) s")).one()
    _ = parcels.sindex  # built once, untimed, as the analyst's session would have it
    extent = (x0, y0, x1, y1)
    line = meander(extent, LINE_KM * 1000)
    cases = [
        (f"line {line.length / 1000:.1f} km, {WIDTH_M:g} m corridor", line, WIDTH_M, corridor(line, WIDTH_M)),
        ("polygon (24-pointed star)", star(extent), None, star(extent)),
    ]
    srs = f"EPSG:{settings.srid}"
    load_before = os.getloadavg()
    rows, notes = [], []
    with api_server(settings) as base, ApiClient(base, token) as client:
        for name, geom, width, footprint in cases:
            body = json.dumps({"geometry": shapely.geometry.mapping(geom), "crs": srs,
                               **({"width_m": width} if width else {})})
            answer = json.loads(client.post("/overlaps", body))  # warm-up, and the answer to check
            n_gp, m2_gp = geopandas_overlaps(parcels, footprint)
            n_api, m2_api = answer["totals"]["parcels"], answer["totals"]["overlap_m2"]
            # The service leaves out slivers (gis.domain.tolerance); compare the areas, which slivers barely move.
            if abs(m2_api - m2_gp) > 0.001 * m2_gp:
                raise SystemExit(f"{name}: the answers differ: API {n_api} parcels {m2_api:.1f} m², "
                                 f"GeoPandas {n_gp} parcels {m2_gp:.1f} m²")
            api, gp, plain = [], [], []
            for r in range(args.rounds):
                order = ("api", "gp") if r % 2 == 0 else ("gp", "api")
                for side in order:
                    if side == "api":
                        api.append(timed(client.post, "/overlaps", body)[0])
                    else:
                        gp.append(timed(geopandas_overlaps, parcels, footprint)[0])
                        plain.append(timed(geopandas_plain, parcels, footprint)[0])
            api_ms, gp_ms, plain_ms = (statistics.median(v) for v in (api, gp, plain))
            best = min(gp_ms, plain_ms)
            rows.append(f"| {name} | {n_api:,} ({n_gp:,}) | {m2_api:,.0f} ({m2_gp:,.0f}) | {api_ms:.0f} ms | "
                        f"{gp_ms:.0f} ms | {plain_ms:.0f} ms | **{best / api_ms:.2f}×** |")
            print(rows[-1], flush=True)
            if args.explain and width:
                notes += explain(engine, geom, width, settings)
    tol = Tolerance.from_settings(settings)
    heading = f"## Ad hoc overlaps on the {args.parcels:,}-parcel city: API against GeoPandas"
    write_section(Path(args.results), heading, [
        "",
        f"`python -m bench.overlaps --parcels {args.parcels} --rounds {args.rounds}"
        f"{' --explain' if args.explain else ''}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores "
        f"shared with other work, load average {load_before[0]:.2f} before and {os.getloadavg()[0]:.2f} after.",
        "",
        "| query | parcels: API (GeoPandas) | overlap m²: API (GeoPandas) | API p50 | GeoPandas prepared p50 | "
        "GeoPandas plain p50 | ratio (best GeoPandas / API) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "API: `POST /overlaps` (JSON, every parcel with its areas, estimate and totals), uvicorn with one worker, over",
        "HTTP with a viewer's token. GeoPandas: the parcels in memory with their STRtree built (untimed); timed, the",
        "index probe and the clipping, prepared (parcels wholly inside at their own area) and plain. Rounds",
        f"alternate sides; medians of {args.rounds}. The API leaves out slivers (under {tol.min_overlap_m2:g} m² and",
        f"{tol.min_share:.1%} of the parcel), hence its smaller count; the areas agree within 0.1 % (checked).",
        *notes,
    ])


def explain(engine, geom, width: float, settings) -> list[str]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the overlap statement for ``geom`` with ``width``."""
    from gis.analysis.overlaps import overlap_statement
    from gis.domain.geometry import QueryGeometry

    query = QueryGeometry(geometry=geom, footprint=corridor(geom, width), is_line=True, width_m=width,
                          source_srid=settings.srid)
    sql, params = overlap_statement(query, settings.srid, Tolerance.from_settings(settings), date.today())
    with engine.connect() as conn:
        plan = [r[0] for r in conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql), params)]
    return ["", "EXPLAIN (ANALYZE, BUFFERS) of the line case's statement:", "", "```", *plan, "```"]


if __name__ == "__main__":
    main()
