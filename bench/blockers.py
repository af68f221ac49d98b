"""Blockers of each demo project on a large city: latency through the API against the same SQL in psql, and
against an analyst's in-memory GeoPandas.

    python -m bench.blockers --parcels 1000000 [--requests 300] [--limit 10000] [--results bench/RESULTS.md]

``--limit`` is the page asked for (10,000, the most a page holds: the full list of every demo project).
The GeoPandas side is what an analyst would do instead: the parcels (geometry, stage) read into a
GeoDataFrame once, untimed; timed, the footprint's index probe, the overlap areas with the footprint
prepared (parcels wholly inside at their own area, only the edge clipped), the sliver rule and the stage.

The API is a real uvicorn process over HTTP with a bearer token (auth included); psql runs the very
statement the library builds (gis.analysis.blockers.blocker_statement: the project, the total and the page),
timed by psql's own \\timing, in one session. Both sides are measured in the same run, alternating.

The HTTP client is the standard library's http.client on one kept-alive connection: what is measured
is the server, and httpx's own work per request (over a millisecond on this machine) would be counted
as the API's, where psql's client side is C.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import geopandas as gpd
import numpy as np
import psycopg
import shapely
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from bench.common import (
    DEFAULT_DATA_DIR,
    ROOT,
    Latency,
    api_server,
    bench_settings,
    bench_token,
    ensure_city,
    write_section,
)
from gis.analysis.blockers import MAX_LIMIT, BlockerFilter, blocker_statement
from gis.domain.stages import today_in
from gis.domain.tolerance import Tolerance
from gis.platform.db import get_engine

_TIME = re.compile(r"^Time: ([\d.]+) ms", re.M)
BATCH = 10  # requests in a row on one side before the other side's turn
# A write of parcels everywhere (gis.maps.tile_cache.expire_everywhere): every kept page is built again.
STALE = "SELECT tile_edit_everywhere('parcels')"


def literal_sql(conn: psycopg.Connection, sql: str, params: dict) -> str:
    """The statement with its parameters rendered as literals by psycopg, for psql."""
    compiled = text(sql).compile(dialect=postgresql.psycopg.dialect())
    return psycopg.ClientCursor(conn).mogrify(str(compiled), {k: params[k] for k in compiled.params})


def psql_latency(settings, statement: str, repeat: int) -> Latency:
    """``statement`` run ``repeat`` times in one psql session, each time as psql's \\timing gives it.

    A first run, not counted, warms the new session's caches, as the API's pooled connections are warm.
    """
    script = "\\timing on\n\\o /dev/null\n" + (statement.strip().rstrip(";") + ";\n") * (repeat + 1)
    out = subprocess.run(
        ["psql", "-X", "-q", "-h", str(settings.socket_dir), "-p", str(settings.pg_port), "-U", "postgres",
         "-d", settings.database_name],
        input=script, capture_output=True, text=True, check=True,
    ).stdout
    return Latency([float(t) for t in _TIME.findall(out)][1:])


class ApiClient:
    """GET on one kept-alive HTTP/1.1 connection with a bearer token; the body, or an error for a non-200."""

    def __init__(self, base: str, token: str) -> None:
        url = urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> bytes:
        return self.request("GET", path)

    def post(self, path: str, body: str) -> bytes:
        """POST a JSON ``body``."""
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: str | None = None) -> bytes:
        """The body of a 200 answer to ``method`` on ``path``."""
        headers = self.headers | ({"Content-Type": "application/json"} if body is not None else {})
        try:
            self.conn.request(method, path, body=body.encode() if body is not None else None, headers=headers)
            response = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # uvicorn closes a connection idle for 5 s (while the other side ran): connect again
            self.conn.close()
            self.conn.request(method, path, body=body.encode() if body is not None else None, headers=headers)
            response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {body[:300]!r}")
        return body

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--limit", type=int, default=MAX_LIMIT)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    ap.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    args = ap.parse_args()
    settings = bench_settings(Path(args.data_dir))
    ensure_city(settings, args.parcels)
    token = bench_token(settings)
    tolerance = Tolerance.from_settings(settings)
    today = today_in(settings.city_timezone)
    with get_engine(settings).connect() as conn:
        projects = conn.execute(text("SELECT id, code FROM projects ORDER BY id")).all()
        footprints = gpd.read_postgis(text("SELECT id, footprint FROM projects ORDER BY id"), conn,
                                      geom_col="footprint").set_index("id").geometry
        parcels = gpd.read_postgis(text("SELECT code, stage, geom FROM parcels ORDER BY id"), conn, geom_col="geom")
    _ = parcels.sindex  # built once, untimed
    load_before = os.getloadavg()[0]
    rows = []
    pg = psycopg.connect(host=str(settings.socket_dir), port=settings.pg_port, user="postgres",
                         dbname=settings.database_name, autocommit=True)
    path = f"/projects/{{}}/blockers?limit={args.limit}"
    with api_server(settings) as base, ApiClient(base, token) as client, pg:
        for pid, code in projects:
            st = blocker_statement(pid, BlockerFilter(limit=args.limit), tolerance, day=today,
                                   tz=settings.city_timezone, as_json=True, reveal_personal=True)  # admin's page
            sql = literal_sql(pg, st.sql, st.params)
            answer = json.loads(client.get(path.format(pid)))  # warm-up, and the answer to check
            total, listed = answer["total"], len(answer["items"])
            gp_answer = geopandas_blockers(parcels, footprints[pid], tolerance)
            if sorted(gp_answer) != sorted(i["code"] for i in answer["items"]):
                raise SystemExit(f"{code}: the API lists {listed} blockers, GeoPandas {len(gp_answer)}")
            psql_latency(settings, sql, 5)
            api, kept, raw, gp = [], [], [], []
            # Alternate batches so that all sides see the same load from whatever else the machine runs.
            for _ in range(args.requests // BATCH):
                for _ in range(BATCH):
                    pg.execute(STALE)  # untimed: as after any write, the page is built again
                    t0 = time.perf_counter()
                    client.get(path.format(pid))
                    api.append((time.perf_counter() - t0) * 1000)
                for _ in range(BATCH):
                    t0 = time.perf_counter()
                    client.get(path.format(pid))
                    kept.append((time.perf_counter() - t0) * 1000)
                raw += psql_latency(settings, sql, BATCH).samples_ms
                for _ in range(max(1, BATCH // 5)):
                    t0 = time.perf_counter()
                    geopandas_blockers(parcels, footprints[pid], tolerance)
                    gp.append((time.perf_counter() - t0) * 1000)
            api_l, kept_l, raw_l, gp_l = Latency(api), Latency(kept), Latency(raw), Latency(gp)
            rows.append(f"| {code} | {total:,} | {api_l.p50:.2f} ms | {api_l.p95:.2f} ms | {raw_l.p50:.2f} ms | "
                        f"{api_l.p50 / raw_l.p50:.2f}× | {gp_l.p50:.1f} ms | **{gp_l.p50 / api_l.p50:.1f}×** | "
                        f"{kept_l.p50:.2f} ms | **{gp_l.p50 / kept_l.p50:.1f}×** |")
            print(rows[-1], flush=True)
    write_section(Path(args.results), f"## Blockers on the {args.parcels:,}-parcel city: API against psql and "
                                      "GeoPandas", [
        "",
        f"`python -m bench.blockers --parcels {args.parcels} --requests {args.requests} --limit {args.limit}` — "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores shared with other work, load average "
        f"{load_before:.2f} before and {os.getloadavg()[0]:.2f} after; {args.requests} requests a project, pages of "
        f"{args.limit:,} (the full list).",
        "",
        "| project | blockers | API p50 | API p95 | psql p50 | API / psql | GeoPandas p50 | GeoPandas / API "
        "| kept p50 | GeoPandas / kept |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "API: uvicorn, one worker, over HTTP (http.client, one kept-alive connection) with a bearer token. psql: the",
        "very statement the API runs (`gis.analysis.blockers.blocker_statement(..., as_json=True)`: PostgreSQL writes "
        "the page's items as one JSON array), parameters as literals, "
        "`\\timing`, output to /dev/null. GeoPandas: in memory, prepared footprint, the sliver rule and the stage "
        f"(same list, checked). In batches of {BATCH}, alternating. API: each page built, after an edit of the "
        "parcels everywhere (untimed), as an import makes; kept: the same page asked again, from the blocker "
        "cache (gis.platform.versioned).",
    ])


def geopandas_blockers(parcels: gpd.GeoDataFrame, footprint: shapely.Geometry, tolerance: Tolerance) -> list[str]:
    """The analyst's list: codes of the parcels overlapping ``footprint`` beyond the tolerance, not cleared."""
    idx = parcels.sindex.query(footprint, predicate="intersects")
    hit = parcels.geometry.values._data[idx]
    shapely.prepare(footprint)
    inside = shapely.contains_properly(footprint, hit)
    whole = shapely.area(hit)
    overlap = whole.copy()
    overlap[~inside] = shapely.area(shapely.intersection(hit[~inside], footprint))
    shapely.destroy_prepared(footprint)
    share = np.divide(overlap, whole, out=np.zeros_like(whole), where=whole > 0)
    keep = ((overlap >= tolerance.min_overlap_m2) & (share >= tolerance.min_share)
            & (parcels["stage"].to_numpy()[idx] != "cleared"))
    return parcels["code"].to_numpy()[idx][keep].tolist()


if __name__ == "__main__":
    main()
