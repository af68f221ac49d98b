"""This service's OGC API against tipg serving the same database on the same machine, in one run.

    pip install -c constraints.txt -e '.[bench]'      # tipg
    python -m bench.ogc_vs_tipg [--parcels 5000] [--requests 120] [--concurrency 4]

Both servers are uvicorn processes with one worker on the demo city (its own cluster in --data-dir):
this service with a viewer's bearer token (authentication, masking and all), tipg (DATABASE_URL,
asyncpg, no authentication) on the parcels table. Two workloads, each in alternating batches so that
both sides see the same load from whatever else runs: items pages of 1,000 parcels (GeoJSON, CRS84,
offsets cycling over the city; tipg asked for the same properties), and vector tiles at zoom 14-17
over the city (a fixed sample of tiles, the same for both; tipg with this service's tile buffer and
properties). A bounded loop of httpx requests from ``--concurrency`` threads in this process; requests
per second of both and their ratio are printed and appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import morecantile
from sqlalchemy import text

from bench.common import ROOT, api_server, bench_settings, bench_token, ensure_city, uvicorn_process, write_section
from gis.maps.tile_cache import expire_everywhere
from gis.platform.config import Settings
from gis.platform.db import get_engine

DEFAULT_DIR = Path(os.environ.get("GIS_BENCH_OGC_DIR", "/var/tmp/parcel-blocker-bench-ogc"))
ROUNDS = 4
PAGE = 1000
ZOOMS = (14, 15, 16, 17)
TILES_PER_ZOOM = 40
TIPG_TABLE = "public.parcels"
# The properties this service's parcel items and tiles carry (tipg cannot join the district names).
ITEM_PROPERTIES = ("code,kind,stage,stage_since,holdout,legacy,households,floor_area_m2,land_area_mu,owner_name,"
                   "owner_id_number,owner_phone")
TILE_PROPERTIES = "code,kind,stage,holdout,district_id"
# The parcel's outline: tipg would take a table's first geometry column by name, and parcels also keep their box's
# centre (centre_3857, migration 0021), which has no spatial index.
TIPG_GEOMETRY = "geom-column=geom"


def tipg_items(offset: int, properties: str = ITEM_PROPERTIES) -> str:
    return f"/collections/{TIPG_TABLE}/items?limit={PAGE}&offset={offset}&properties={properties}&{TIPG_GEOMETRY}"


@contextmanager
def tipg_server(settings: Settings) -> Iterator[str]:
    """tipg under uvicorn in its own process (and its own folder: it reads a .env from there)."""
    env = {**os.environ,
           # the unix socket's folder as the URL's (percent-encoded) host: asyncpg reads it so
           "DATABASE_URL": f"postgresql://postgres@{quote(str(settings.socket_dir), safe='')}:{settings.pg_port}"
                           f"/{settings.database_name}",
           "TIPG_DB_SCHEMAS": '["public"]', "TIPG_DB_TABLES": '["public.parcels"]', "TIPG_TILE_BUFFER": "64",
           "TIPG_MAX_FEATURES_PER_QUERY": "10000", "TIPG_DEBUG": "FALSE"}
    with tempfile.TemporaryDirectory(prefix="tipg-") as cwd, \
            uvicorn_process("tipg.main:app", cwd=Path(cwd), env=env, ready_path=f"/collections/{TIPG_TABLE}") as base:
        yield base


def rate(base: str, urls: list[str], concurrency: int, headers: dict[str, str]) -> tuple[int, float]:
    """Send every URL once from ``concurrency`` threads (keep-alive clients); (requests, seconds)."""
    queue = list(reversed(urls))
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    url = queue.pop()
                r = client.get(url)
                if r.status_code not in (200, 204):
                    errors.append(f"{r.status_code} {url}: {r.text[:200]}")
                    return

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(errors[0])
    return len(urls), elapsed


def compare(name: str, ours: tuple[str, list[str], dict], theirs: tuple[str, list[str], dict],
            concurrency: int, before_ours: Callable[[], None] | None = None) -> dict[str, float]:
    """Alternating batches of the same size; requests per second over all batches of each side.
    ``before_ours`` runs (untimed) before each of this service's batches."""
    totals = {"ours": [0, 0.0], "tipg": [0, 0.0]}
    for base, urls, headers in (ours, theirs):  # warm-up: connections, plans, caches
        rate(base, urls[:8], concurrency, headers)
    for k in range(ROUNDS):
        for side, (base, urls, headers) in (("ours", ours), ("tipg", theirs)):
            batch = urls[k::ROUNDS]
            if side == "ours" and before_ours is not None:
                before_ours()
            n, seconds = rate(base, batch, concurrency, headers)
            totals[side][0] += n
            totals[side][1] += seconds
    out = {side: n / seconds for side, (n, seconds) in totals.items()}
    out["ratio"] = out["ours"] / out["tipg"]
    print(f"{name}: this service {out['ours']:.1f} req/s, tipg {out['tipg']:.1f} req/s, ratio {out['ratio']:.2f}x",
          flush=True)
    return out


def stale_every_tile(settings: Settings) -> Callable[[], None]:
    """An edit of the parcels everywhere (``expire_everywhere``, what a TRUNCATE logs): every tile this service
    has kept is stale, so the next asks build them, as tipg always does. The worst case: since tiles expire one by
    one (migration 0020), no edit of a few parcels does this any more."""
    def expire() -> None:
        with get_engine(settings).begin() as conn:
            expire_everywhere(conn, "parcels")
    return expire


def stage_change_elsewhere(settings: Settings, tiles: list) -> Callable[[], None]:
    """A stage change of one parcel, before each batch: both sides see a write. The parcel is the one (of every
    50th) in the fewest sampled tiles, counting each tile 100 m wider than it is: at a few zoom-14 tiles a city
    no parcel is clear of them all, and the tiles it lies in are rebuilt, as they must be. Each call flips the
    stage, so after an even number of calls the parcel is as it was."""
    tms = morecantile.tms.get("WebMercatorQuad")
    clear = 0.001  # degrees, about 100 m
    boxes = [tms.bounds(t) for t in tiles]
    with get_engine(settings).connect() as conn:
        candidates = conn.execute(text(
            "SELECT id, stage, ST_X(c), ST_Y(c) FROM (SELECT id, stage, ST_Transform(ST_Centroid(geom), 4326) AS c "
            "FROM parcels WHERE id % 50 = 0) p")).all()

    def tiles_hit(c: tuple) -> int:
        return sum(b.left - clear < c[2] < b.right + clear and b.bottom - clear < c[3] < b.top + clear for b in boxes)

    far = min(candidates, key=tiles_hit)
    print(f"stage changes of parcel {far[0]}, in {tiles_hit(far)} of the {len(tiles)} sampled tiles", flush=True)
    pid, stage = far[0], far[1]
    other = "appraised" if stage != "appraised" else "surveyed"
    calls = [0]

    def change() -> None:
        with get_engine(settings).begin() as conn:
            conn.execute(text("UPDATE parcels SET stage = :stage WHERE id = :id"),
                         {"stage": other if calls[0] % 2 == 0 else stage, "id": pid})
        calls[0] += 1
    return change


def check_same_answers(ours: str, headers: dict[str, str], tipg: str) -> None:
    """Both sides answer the same question: the same 1,000 parcels on a page."""
    a = httpx.get(f"{ours}/ogc/collections/parcels/items?limit={PAGE}&offset={PAGE}", headers=headers,
                  timeout=60).json()
    b = httpx.get(tipg + tipg_items(PAGE, "code"), timeout=60).json()
    if {f["geometry"]["type"] for f in b["features"]} != {"MultiPolygon"}:
        raise RuntimeError("tipg does not serve the parcels' outlines")
    codes_a = sorted(f["properties"]["code"] for f in a["features"])
    codes_b = sorted(f["properties"]["code"] for f in b["features"])
    if codes_a != codes_b or len(codes_a) != PAGE:
        raise RuntimeError("the two servers do not return the same page")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=5000)
    ap.add_argument("--requests", type=int, default=120, help="items pages per side (tiles: 4 x this, at most "
                                                                   f"{len(ZOOMS) * TILES_PER_ZOOM} distinct)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--data-dir", default=str(DEFAULT_DIR))
    ap.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"), help="'-' to print only")
    args = ap.parse_args()
    settings = bench_settings(Path(args.data_dir))
    ensure_city(settings, args.parcels)
    token = bench_token(settings, "bench-ogc-viewer", "viewer")
    with get_engine(settings).connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM parcels")).scalar_one()
        west, south, east, north = conn.execute(text(
            "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM "
            "(SELECT CAST(ST_Transform(ST_SetSRID(CAST(ST_Extent(geom) AS geometry), :srid), 4326) AS box2d) AS b "
            "FROM parcels) x"), {"srid": settings.srid}).one()
    offsets = [(k % max(count // PAGE, 1)) * PAGE for k in range(args.requests)]
    rng = random.Random(14)
    tms = morecantile.tms.get("WebMercatorQuad")
    tiles = []
    for z in ZOOMS:
        at_zoom = list(tms.tiles(west, south, east, north, [z]))
        tiles += rng.sample(at_zoom, min(TILES_PER_ZOOM, len(at_zoom)))
    tile_urls = [tiles[k % len(tiles)] for k in range(4 * args.requests)]
    auth = {"Authorization": f"Bearer {token}"}
    print(f"{count:,} parcels; {args.requests} items pages of {PAGE} and {len(tile_urls)} tiles "
          f"({len(tiles)} distinct, zoom {ZOOMS[0]}-{ZOOMS[-1]}) per side, {args.concurrency} concurrent", flush=True)
    with api_server(settings) as ours, tipg_server(settings) as tipg:
        check_same_answers(ours, auth, tipg)
        items = compare(
            f"items, pages of {PAGE}",
            (ours, [f"/ogc/collections/parcels/items?limit={PAGE}&offset={o}" for o in offsets], auth),
            (tipg, [tipg_items(o) for o in offsets], {}), args.concurrency)
        uncounted = compare(
            f"items, pages of {PAGE}, count=false",
            (ours, [f"/ogc/collections/parcels/items?limit={PAGE}&offset={o}&count=false" for o in offsets], auth),
            (tipg, [tipg_items(o) for o in offsets], {}), args.concurrency)
        def tile_paths(sample: list) -> tuple[list[str], list[str]]:
            return ([f"/ogc/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}" for t in sample],
                    [f"/collections/{TIPG_TABLE}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}?properties={TILE_PROPERTIES}&{TIPG_GEOMETRY}"
                     for t in sample])

        # Each distinct tile once a round, after an edit everywhere: this service builds every tile, as tipg does.
        cold_ours, cold_tipg = tile_paths([t for t in tiles for _ in range(ROUNDS)])  # batch k: urls[k::ROUNDS]
        cold = compare(f"vector tiles z{ZOOMS[0]}-{ZOOMS[-1]}, each built after an edit everywhere",
                       (ours, cold_ours, auth), (tipg, cold_tipg, {}), args.concurrency,
                       before_ours=stale_every_tile(settings))
        # The same tiles asked again and again, as a map panned back and forth: this service's cache answers.
        warm_ours, warm_tipg = tile_paths(tile_urls)
        vector = compare(f"vector tiles z{ZOOMS[0]}-{ZOOMS[-1]}, repeated",
                         (ours, warm_ours, auth), (tipg, warm_tipg, {}), args.concurrency)
        # Each distinct tile once a round, after a stage change of a parcel elsewhere in the city (a working day).
        elsewhere = compare(f"vector tiles z{ZOOMS[0]}-{ZOOMS[-1]}, each asked after a stage change elsewhere",
                            (ours, cold_ours, auth), (tipg, cold_tipg, {}), args.concurrency,
                            before_ours=stage_change_elsewhere(settings, tiles))
    write_results(Path(args.results), args, count, len(tiles), items, uncounted, cold, vector, elsewhere)


NOTE = """
Items: one statement per page and a count unless `count=false` (the page's rows chosen first, only they
transformed and written as GeoJSON by PostGIS, passed through orjson untouched) against tipg's page and
count with a pydantic model per feature. Tiles: both run one `ST_AsMVT` statement of the same shape (this
service's is `gis.maps.tiles`, shared with the maps); tipg's tiles were asked for this service's buffer (64) and
properties. "Built after an edit everywhere": before each of this service's batches an edit of the parcels everywhere
(`expire_everywhere`, as a TRUNCATE logs) expires every tile, so every tile is built (the difference is per-request
overhead: the version read, the token from the principal cache). "Repeated": the sample asked again and again; this
service builds each tile once and answers the rest from its cache (`gis.maps.tile_cache`), tipg builds every one.
"After a stage change elsewhere": before each of this service's batches one parcel changes stage, the one in the
fewest sampled tiles; tiles expire only where an edit touches (migration 0020), so only those few are built again
and the rest come from the cache.
"""


def write_results(path: Path, args: argparse.Namespace, count: int, distinct_tiles: int,
                  items: dict, uncounted: dict, cold: dict, vector: dict, elsewhere: dict) -> None:
    from importlib.metadata import version

    command = (f"python -m bench.ogc_vs_tipg --parcels {args.parcels} --requests {args.requests} "
               f"--concurrency {args.concurrency}")
    tiles = f"vector tiles z{ZOOMS[0]}-{ZOOMS[-1]}, {distinct_tiles} distinct"
    rows = [(f"items, pages of {PAGE} (numberMatched counted by both)", items),
            (f"items, pages of {PAGE}, this service with count=false", uncounted),
            (f"{tiles}, each built after an edit everywhere", cold),
            (f"{tiles}, repeated ({4 * args.requests} asks)", vector),
            (f"{tiles}, each asked after a stage change elsewhere", elsewhere)]
    table = "\n".join(f"| {name} | {r['ours']:.1f} | {r['tipg']:.1f} | {r['ratio']:.2f}x |" for name, r in rows)
    write_section(path, f"## OGC API vs tipg on the {count:,}-parcel city: items pages and vector tiles", [
        "",
        f"Command: `{command}` ({datetime.now():%Y-%m-%d %H:%M}; {os.cpu_count()} cores shared with other work, "
        f"load average {os.getloadavg()[0]:.1f} at the end; Python {platform.python_version()}, tipg "
        f"{version('tipg')}; both servers uvicorn with 1 worker on the same PostGIS, in alternating batches of one "
        "run; this service with a viewer's bearer token, tipg without authentication).",
        "",
        "| workload | this service (req/s) | tipg (req/s) | ratio |",
        "|---|---|---|---|",
        table,
        NOTE,
    ])


if __name__ == "__main__":
    main()
