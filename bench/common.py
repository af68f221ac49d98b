"""What the benchmarks share: a cluster with an N-parcel demo city, a real API server, a token.

Benchmarks are commands, not tests: ``python -m bench.<name> --help``. The city is kept in
``--data-dir`` between runs (loading 1,000,000 parcels takes minutes), reloaded when N differs.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text

from gis.platform import cluster, migrate
from gis.platform.config import Settings
from gis.platform.db import get_engine

DEFAULT_DATA_DIR = Path(os.environ.get("GIS_BENCH_DIR", "/var/tmp/parcel-blocker-bench"))
ROOT = Path(__file__).resolve().parents[1]


def bench_settings(data_dir: Path = DEFAULT_DATA_DIR) -> Settings:
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o755)
    return Settings(data_dir=data_dir, database_url=None, database_name="bench")


def loaded_parcels(settings: Settings) -> int | None:
    with get_engine(settings).connect() as conn:
        value = conn.execute(text("SELECT value->>'parcels' FROM dataset_notes WHERE key = 'demo'")).scalar()
    return int(value) if value else None


def ensure_city(settings: Settings, parcels: int, seed: int = 42) -> dict[str, float]:
    """The N-parcel demo city loaded (timed when it had to be loaded: generate, load, analyse)."""
    cluster.start(settings)
    migrate.upgrade(settings)
    if loaded_parcels(settings) == parcels:
        return {}
    from gis.demo.generator import generate_city
    from gis.demo.load import load_city

    t0 = time.perf_counter()
    city = generate_city(parcels, seed=seed, srid=settings.srid)
    t1 = time.perf_counter()
    with get_engine(settings).begin() as conn:
        load_city(conn, city)
    t2 = time.perf_counter()
    with get_engine(settings).connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    t3 = time.perf_counter()
    loaded = {"generate_s": t1 - t0, "load_s": t2 - t1, "analyse_s": t3 - t2, "total_s": t3 - t0}
    print(f"demo city of {parcels:,} parcels: " + ", ".join(f"{k} {v:.1f}" for k, v in loaded.items()), flush=True)
    return loaded


def bench_token(settings: Settings, name: str = "bench-admin", role: str = "admin") -> str:
    """A fresh API token for a benchmark user of ``role`` (the user is made anew on every run)."""
    from gis.records.users import add_user

    with get_engine(settings).begin() as conn:
        conn.execute(text("DELETE FROM auth_tokens WHERE user_id IN (SELECT id FROM users WHERE name = :n)"),
                     {"n": name})
        conn.execute(text("DELETE FROM users WHERE name = :n"), {"n": name})
        return add_user(conn, name, role).token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def uvicorn_process(app: str, *, cwd: Path, env: dict[str, str], ready_path: str, workers: int = 1,
                    factory: bool = False) -> Iterator[str]:
    """``app`` under uvicorn in its own process on a free loopback port, once ``ready_path`` answers 200;
    yields the base URL and stops the process afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, *(["--factory"] if factory else []), "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        cwd=cwd, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a loaded 2-core machine starts the app slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + ready_path, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{app} did not come up")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def api_server(settings: Settings, workers: int = 1) -> Iterator[str]:
    """The service under uvicorn in its own process, as deployed; yields its base URL."""
    env = {**os.environ, "GIS_DATA_DIR": str(settings.data_dir), "GIS_DATABASE_NAME": settings.database_name}
    with uvicorn_process("api.app:create_app", cwd=ROOT, env=env, ready_path="/health", workers=workers,
                         factory=True) as base:
        yield base


@dataclass
class Latency:
    samples_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.samples_ms, n=20)[-1]

    def row(self) -> str:
        return f"p50 {self.p50:.2f} ms, p95 {self.p95:.2f} ms (n={len(self.samples_ms)})"


def write_section(path: Path, heading: str, lines: list[str]) -> None:
    """``lines`` as the section of the results file under ``heading`` (a '## ' line): in place of the
    section whose heading starts so, or appended; the other sections are kept. A path of '-' prints it only."""
    if str(path) == "-":
        print("\n".join([heading, *lines]))
        return
    previous = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    section = "\n".join([heading, *lines]).rstrip()
    if heading in previous:
        start = previous.index(heading)
        end = previous.find("\n## ", start + 1)
        updated = previous[:start] + section + ("\n" + previous[end:] if end != -1 else "")
    else:
        updated = previous.rstrip() + "\n\n" + section
    path.write_text(updated.rstrip() + "\n", encoding="utf-8")
    print(f"results written to {path}")
