"""Load: N concurrent clients on blockers, tiles, maps and exports for a fixed time; /health probed throughout.

    python -m bench.load --parcels 5000 --clients 32 64 128 --duration 25 [--mix tiles=14,blockers=3,maps=2,exports=1]

For each N, the service (uvicorn, one worker, as `gis serve` runs it) is started afresh over the demo city
and N clients (asyncio + httpx, each on a kept-alive connection of its own) send requests back to back for
``--duration`` seconds, each picking its next request from the mix. Reported per N: requests a second,
latency p50 and p99 (of every answer, errors included), the answers by status, the 503s that came without
Retry-After (should be none), and, from a prober in a process of its own that asks /health every
``--probe-every`` seconds, the slowest /health answer and its statuses.

The clients run in ``--procs`` processes (their own event loops), each client with an httpx client of its own
(one shared pool serialises its connections: the clients, not the server, were the bottleneck), so the load
generator is not what is measured. The prober runs at a higher priority (nice -10, when allowed): a monitor
runs on another machine, and here it must not be starved of CPU by the very clients it watches.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import subprocess
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.common import (
    DEFAULT_DATA_DIR,
    ROOT,
    api_server,
    bench_settings,
    bench_token,
    ensure_city,
    uvicorn_process,
    write_section,
)
from gis.platform.db import get_engine

DEFAULT_MIX = "tiles=14,blockers=3,maps=2,exports=1"
TILE_ZOOMS = (14, 15, 16, 17)


@dataclass
class Targets:
    """What the clients may ask for, drawn from the loaded city."""

    tiles: list[str]
    blockers: list[str]
    maps: list[str]
    exports: list[str]


def city_targets(settings, tiles_per_zoom: int = 200, seed: int = 7) -> Targets:
    """Tiles where the parcels are (around parcels drawn at random: a map is looked at where there is something
    to see), and each project's blockers, maps and downloads."""
    with get_engine(settings).connect() as conn:
        conn.execute(text("SELECT setseed(:s)"), {"s": seed / 100})
        points = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_PointOnSurface(geom), 4326) AS p FROM parcels "
            "ORDER BY random() LIMIT :n) x"), {"n": tiles_per_zoom}).all()
        projects = [r[0] for r in conn.execute(text("SELECT id FROM projects ORDER BY id"))]
        districts = [r[0] for r in conn.execute(text("SELECT code FROM districts ORDER BY id"))]
    tiles = [f"/tiles/parcels/{z}/{x}/{y}.mvt"
             for z in TILE_ZOOMS for x, y in (tile_of(lon, lat, z) for lon, lat in points)]
    return Targets(
        tiles=tiles,
        blockers=[f"/projects/{p}/blockers?limit=100" for p in projects],
        maps=[f"/projects/{p}/map" for p in projects] + [f"/projects/{p}/map.png" for p in projects],
        exports=[f"/parcels/export?format=csv&district={d}" for d in districts]
        + [f"/projects/{p}/blockers?format=xlsx" for p in projects],
    )


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def parse_mix(value: str) -> dict[str, int]:
    mix = {}
    for part in value.split(","):
        name, _, weight = part.partition("=")
        if name not in Targets.__dataclass_fields__:
            raise SystemExit(f"--mix: unknown family {name!r}; families are {', '.join(Targets.__dataclass_fields__)}")
        mix[name] = int(weight or 1)
    return mix


# ---------------------------------------------------------------------------------------------
# In the client processes


@dataclass
class Sample:
    family: str
    status: str  # the HTTP status, or the exception's name when there was no answer
    ms: float
    retry_after: bool = True


async def _client(http: httpx.AsyncClient, targets: Targets, mix: dict[str, int], until: float,
                  rng: random.Random, out: list[Sample]) -> None:
    families, weights = list(mix), list(mix.values())
    while time.monotonic() < until:
        family = rng.choices(families, weights)[0]
        path = rng.choice(getattr(targets, family))
        t0 = time.perf_counter()
        try:
            r = await http.get(path)
            await r.aclose()
            out.append(Sample(family, str(r.status_code), (time.perf_counter() - t0) * 1000,
                              r.status_code != 503 or "retry-after" in r.headers))
        except httpx.HTTPError as exc:
            out.append(Sample(family, type(exc).__name__, (time.perf_counter() - t0) * 1000))


async def _clients(base: str, token: str, n: int, targets: Targets, mix: dict[str, int], duration: float,
                   start_at: float, seed: int) -> list[Sample]:
    # A client of its own for each: httpx's shared pool serialises many connections behind one lock, which
    # made the clients, not the server, the bottleneck (3 s of client-side wait on 0.2 s served).
    out: list[Sample] = []
    https = [httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"},
                               limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(120.0))
             for _ in range(n)]
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        until = time.monotonic() + duration
        await asyncio.gather(*(_client(http, targets, mix, until, random.Random(seed * 1000 + i), out)
                               for i, http in enumerate(https)))
    finally:
        for http in https:
            await http.aclose()
    return out


def run_clients(base: str, token: str, n: int, targets: Targets, mix: dict[str, int], duration: float,
                start_at: float, seed: int) -> list[Sample]:
    """``n`` clients in this process's own event loop, from the wall-clock ``start_at``."""
    return asyncio.run(_clients(base, token, n, targets, mix, duration, start_at, seed))


def probe_health(base: str, duration: float, every: float, start_at: float) -> list[tuple[str, float]]:
    """(status, ms) of GET /health every ``every`` seconds for ``duration``, on a connection of its own."""
    out = []
    try:  # a monitor runs elsewhere: here it must not be starved of CPU by the clients it watches
        os.nice(-10)
    except OSError:
        pass
    time.sleep(max(0.0, start_at - time.time()))
    until = time.monotonic() + duration
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.monotonic() < until:
            t0 = time.perf_counter()
            try:
                status = str(http.get("/health").status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
                print(f"health probe at {time.monotonic() - until + duration:.1f} s: {exc!r}", flush=True)
            ms = (time.perf_counter() - t0) * 1000
            out.append((status, ms))
            time.sleep(max(0.0, every - ms / 1000))
    return out


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class Outcome:
    clients: int
    duration: float
    samples: list[Sample]
    health: list[tuple[str, float]]
    statuses: Counter = field(init=False)

    def __post_init__(self) -> None:
        self.statuses = Counter(s.status for s in self.samples)

    def pct(self, q: float, samples: list[Sample] | None = None) -> float:
        ms = sorted(s.ms for s in (self.samples if samples is None else samples))
        return ms[min(len(ms) - 1, int(q * len(ms)))] if ms else float("nan")

    def row(self) -> str:
        ok = [s for s in self.samples if s.status.startswith("2")]
        health_ms = [ms for _, ms in self.health]
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        no_retry = sum(1 for s in self.samples if not s.retry_after)
        health_statuses = ", ".join(f"{k}: {v}" for k, v in sorted(Counter(st for st, _ in self.health).items()))
        return (f"| {self.clients} | {len(self.samples) / self.duration:.1f} | {len(ok) / self.duration:.1f} | "
                f"{self.pct(0.5):.0f} ms | {self.pct(0.99):.0f} ms | {self.pct(0.5, ok):.0f} ms | "
                f"{self.pct(0.99, ok):.0f} ms | {statuses} | {no_retry} | "
                f"{max(health_ms):.0f} ms (p50 {statistics.median(health_ms):.0f}, n={len(health_ms)}; "
                f"{health_statuses}) |")

    def by_family(self) -> str:
        parts = []
        for family in sorted({s.family for s in self.samples}):
            mine = [s for s in self.samples if s.family == family]
            counts = Counter(s.status for s in mine)
            parts.append(f"{family} {len(mine) / self.duration:.1f}/s p50 {self.pct(0.5, mine):.0f} ms "
                         f"p99 {self.pct(0.99, mine):.0f} ms "
                         f"({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))})")
        return f"- {self.clients} clients: " + "; ".join(parts)


def measure(base: str, token: str, targets: Targets, mix: dict[str, int], clients: int, duration: float,
            procs: int, probe_every: float) -> Outcome:
    start_at = time.time() + 3.0  # every process ready (imports, connections) before the clock starts
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    with ProcessPoolExecutor(max_workers=procs + 1) as pool:
        prober = pool.submit(probe_health, base, duration, probe_every, start_at)
        jobs = [pool.submit(run_clients, base, token, n, targets, mix, duration, start_at, seed)
                for seed, n in enumerate(shares) if n]
        samples = [s for job in jobs for s in job.result()]
        health = prober.result()
    return Outcome(clients, duration, samples, health)


def serve(settings, checkout: Path) -> AbstractContextManager[str]:
    """The service of ``checkout`` (this one: ``bench.common.api_server``) over the bench database."""
    if checkout.resolve() == ROOT:
        return api_server(settings)
    env = {**os.environ, "GIS_DATA_DIR": str(settings.data_dir), "GIS_DATABASE_NAME": settings.database_name}
    return uvicorn_process("api.app:create_app", cwd=checkout, env=env, ready_path="/health", factory=True)


def _commit(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h"], capture_output=True,
                          text=True).stdout.strip() or "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=5000)
    ap.add_argument("--clients", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--duration", type=float, default=25.0, help="Seconds of load for each N.")
    ap.add_argument("--mix", default=DEFAULT_MIX, help="Families and weights of the requests.")
    ap.add_argument("--procs", type=int, default=2, help="Client processes.")
    ap.add_argument("--probe-every", type=float, default=0.2, help="Seconds between /health probes.")
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    ap.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true", help="Print only; leave the results file alone.")
    ap.add_argument("--checkout", default=str(ROOT), help="Serve the code of this checkout (e.g. one from before "
                    "a change, to compare); default this one.")
    args = ap.parse_args()
    mix = parse_mix(args.mix)
    settings = bench_settings(Path(args.data_dir))
    ensure_city(settings, args.parcels)
    token = bench_token(settings, role="viewer")
    targets = city_targets(settings)
    load_before = os.getloadavg()[0]
    rows, families = [], []
    for n in args.clients:
        with serve(settings, Path(args.checkout)) as base:  # afresh for each N: no queue spills into the next
            httpx.get(base + targets.tiles[0], headers={"Authorization": f"Bearer {token}"}, timeout=60)
            outcome = measure(base, token, targets, mix, n, args.duration, args.procs, args.probe_every)
        rows.append(outcome.row())
        families.append(outcome.by_family())
        print(rows[-1], flush=True)
        print(families[-1], flush=True)
    other = Path(args.checkout).resolve() != ROOT
    command = (f"python -m bench.load --parcels {args.parcels} --clients {' '.join(map(str, args.clients))} "
               f"--duration {args.duration:g} --mix {args.mix} --procs {args.procs}"
               + (f" --checkout {args.checkout}" if other else ""))
    lines = [
        "",
        f"`{command}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores shared with other work, "
        f"load average {load_before:.2f} before and {os.getloadavg()[0]:.2f} after. Settings: pool "
        f"{settings.db_pool_size}+{settings.db_max_overflow} (wait {settings.db_pool_timeout_s:g} s), statement "
        f"limit {settings.db_statement_timeout_s:g} s, {settings.tile_concurrency} tile slots (wait "
        f"{settings.tile_queue_timeout_s:g} s), {settings.render_concurrency} render slots (wait "
        f"{settings.render_queue_timeout_s:g} s), Retry-After {settings.retry_after_s} s.",
        "",
        "| clients | answers/s | 2xx/s | p50 | p99 | 2xx p50 | 2xx p99 | answers by status | 503 without Retry-After "
        "| /health slowest |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
        *rows,
        "",
        "By family:",
        "",
        *families,
        "",
        f"uvicorn, one worker (as `gis serve`), started afresh for each N over the {args.parcels:,}-parcel demo "
        f"city; the clients are httpx on asyncio in {args.procs} processes, each client on its own kept-alive "
        "connection, a viewer's bearer token; /health is asked from a process of its own every "
        f"{args.probe_every:g} s. Latencies are of every answer, 503s included.",
    ]
    if not args.no_write:
        served = f", served from {args.checkout} at {_commit(Path(args.checkout))}" if other else ""
        write_section(Path(args.results), f"## Load: {', '.join(map(str, args.clients))} concurrent clients on "
                      f"{args.mix}{served} (bench/load.py)", lines)


if __name__ == "__main__":
    main()
