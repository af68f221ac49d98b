"""Parcel tiles on a large city: the largest tile at each zoom, and what the tile cache and ETags save.

    python -m bench.tiles --parcels 100000 [--per-zoom 6] [--results bench/RESULTS.md]

For each zoom from the parcels' first (12) to 17, the ``--per-zoom`` densest tiles of the city (by parcel
centres) are asked of a real uvicorn process over HTTP with a viewer's token, three ways, in alternating
order: built (the first request after an edit of the parcels everywhere: a miss), from the cache (the same tile again),
and revalidated (``If-None-Match`` with its ETag: 304, no body). The largest body and the slowest build per
zoom are recorded; the target is that no tile exceeds 500 kB at any zoom.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bench.blockers import ApiClient
from bench.common import DEFAULT_DATA_DIR, ROOT, api_server, bench_settings, bench_token, ensure_city, write_section
from gis.maps.tile_cache import expire_everywhere
from gis.maps.tiles import TILE_LAYERS
from gis.platform.db import get_engine

ZOOMS = range(TILE_LAYERS["parcels"].min_zoom, 18)
LIMIT_BYTES = 500 * 1024
_DENSEST = """
WITH c AS (SELECT centre_3857 AS p FROM parcels)  -- the centre the generalised tiles count by
SELECT floor((ST_X(p) + 20037508.342789244) / (40075016.68557849 / 2 ^ :z)) AS x,
       floor((20037508.342789244 - ST_Y(p)) / (40075016.68557849 / 2 ^ :z)) AS y, count(*) AS n
FROM c GROUP BY 1, 2 ORDER BY n DESC LIMIT :k
"""


def timed_get(client: ApiClient, path: str, headers: dict[str, str] | None = None) -> tuple[float, int, bytes, str]:
    """(ms, status, body, etag) of one GET on the kept-alive connection."""
    t0 = time.perf_counter()
    client.conn.request("GET", path, headers=client.headers | (headers or {}))
    r = client.conn.getresponse()
    body = r.read()
    ms = (time.perf_counter() - t0) * 1000
    if r.status not in (200, 204, 304):
        raise RuntimeError(f"GET {path}: {r.status} {body[:200]!r}")
    return ms, r.status, body, r.getheader("etag") or ""


def bump(engine) -> None:
    """A change every parcel tile must show, as an import everywhere makes (one parcel's edit now expires only the
    tiles around it)."""
    with engine.begin() as conn:
        expire_everywhere(conn, "parcels")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--per-zoom", type=int, default=6)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    ap.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    args = ap.parse_args()
    settings = bench_settings(Path(args.data_dir))
    ensure_city(settings, args.parcels)
    token = bench_token(settings, "bench-viewer", "viewer")
    engine = get_engine(settings)
    with engine.connect() as conn:
        tiles = {z: conn.execute(text(_DENSEST), {"z": z, "k": args.per_zoom}).all()
                 for z in ZOOMS}
    load_before = os.getloadavg()[0]
    rows, largest = [], 0
    with api_server(settings) as base, ApiClient(base, token) as client:
        for z in ZOOMS:
            built, cached, revalidated, sizes, counts = [], [], [], [], []
            for k, (x, y, n) in enumerate(tiles[z]):
                path = f"/tiles/parcels/{z}/{int(x)}/{int(y)}.mvt"
                bump(engine)
                ms, _, body, etag = timed_get(client, path)
                built.append(ms)
                sizes.append(len(body))
                counts.append(n)
                order = ("cache", "304") if k % 2 == 0 else ("304", "cache")
                for way in order:
                    if way == "cache":
                        cached.append(timed_get(client, path)[0])
                    else:
                        ms, status, _, _ = timed_get(client, path, {"If-None-Match": etag})
                        assert status == 304, status
                        revalidated.append(ms)
            largest = max(largest, max(sizes))
            kind = "grid cells" if z < TILE_LAYERS["parcels"].detail_zoom else "parcels"
            rows.append(f"| {z} | {kind} | {max(counts):,} | {max(sizes) / 1024:.1f} kB | "
                        f"{statistics.median(built):.1f} ms (max {max(built):.0f}) | "
                        f"{statistics.median(cached):.2f} ms | {statistics.median(revalidated):.2f} ms | "
                        f"{statistics.median(built) / statistics.median(cached):.0f}× |")
            print(rows[-1], flush=True)
    write_section(Path(args.results), f"## Parcel tiles on the {args.parcels:,}-parcel city: size, cache and ETag", [
        "",
        f"`python -m bench.tiles --parcels {args.parcels} --per-zoom {args.per_zoom}` — "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores shared with other work, load average "
        f"{load_before:.2f} before and {os.getloadavg()[0]:.2f} after. Largest tile at any zoom: "
        f"**{largest / 1024:.1f} kB** (target ≤ {LIMIT_BYTES // 1024} kB: "
        f"{'met' if largest <= LIMIT_BYTES else 'missed'}).",
        "",
        "| zoom | drawn as | parcels in the densest tile | largest tile | built p50 | from the cache p50 | "
        "304 p50 | built / cached |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"The {args.per_zoom} densest tiles of each zoom (by parcel centres), each asked of uvicorn (one worker) over "
        "HTTP with a viewer's token: built right after an edit of the parcels everywhere, then again (the "
        "cache) and with its ETag (304), those two in alternating order.",
    ])


if __name__ == "__main__":
    main()
