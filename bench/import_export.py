"""Importing and exporting N parcels: this service against GDAL's ogr2ogr doing the same.

    python -m bench.import_export --parcels 1000000 [--data-dir DIR] [--results bench/RESULTS.md]

Export: the parcel list (every parcel field, the district, the areas in m² and mu) from PostGIS
to a GeoPackage — ``gis export parcels --format gpkg`` against ``ogr2ogr -f GPKG`` reading the
very same SELECT over the unix socket.
Import: that GeoPackage into PostGIS — ``gis import`` (every row checked, districts looked up,
upserted by code with a history event each, project overlaps refreshed, one transaction) into an
empty parcels table (a bulk load: the command line runs as the tables' owner, so parcels' indexes and
foreign keys are built again at the end rather than kept up row by row), against ``ogr2ogr -f
PostgreSQL`` loading it into a new table (COPY, then the GiST index): a plain load with no checks.
Then ``gis import`` of the same file again, where every parcel is compared with the stored one and
found unchanged.

Each command is its own process, run in turn on the same PostgreSQL cluster, under GNU time
(``/usr/bin/time -f '%e %M'``): wall time and peak resident memory of the process. The
database server's own memory is not counted on either side. The N-parcel demo city is kept in
``--data-dir`` between runs (default /var/tmp/parcel-blocker-bench-io, apart from the other
benchmarks' city so the two never reload each other's).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyogrio
from sqlalchemy import text

from bench.common import ROOT, bench_settings, ensure_city, write_section
from gis.io.export import FORMATS, parcel_query
from gis.platform import cluster, migrate
from gis.platform.config import SQM_PER_MU, Settings
from gis.platform.db import get_engine

DEFAULT_DATA_DIR = Path(os.environ.get("GIS_BENCH_IO_DIR", "/var/tmp/parcel-blocker-bench-io"))


@dataclass
class Run:
    label: str
    tool: str
    seconds: float
    peak_mb: float
    command: str


def measure(label: str, tool: str, cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``cmd`` under GNU time: wall time and the peak RSS of that process (and the children it waits for).

    GNU time forks the command from its own small process, so the benchmark's memory (the generated city)
    does not count; Linux keeps a process's high-water mark across exec, which os.wait4 here would report.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", out.name, *cmd], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        seconds, kilobytes = out.read().split()[-2:]
    run = Run(label, tool, float(seconds), int(kilobytes) / 1024, " ".join(cmd))
    print(f"{label:<28} {tool:<10} {run.seconds:8.1f} s {run.peak_mb:8.0f} MB", flush=True)
    return run


def pg_dsn(settings: Settings, database: str) -> str:
    return f"PG:host={settings.socket_dir} port={settings.pg_port} dbname={database} user={cluster.SERVER_USER}"


def prepare_targets(settings: Settings) -> tuple[Settings, Settings]:
    """Empty databases for the two imports: ours with the districts and projects, ogr2ogr's with PostGIS only."""
    ours = settings.model_copy(update={"database_name": "bench_import"})
    ogr = settings.model_copy(update={"database_name": "bench_ogr"})
    for s in (ours, ogr):
        cluster.start(s)
        migrate.upgrade(s)
    with get_engine(ours).begin() as conn:
        conn.execute(text("TRUNCATE project_parcel_overlaps, documents, payments, parcel_events, parcels, projects, "
                          "districts CASCADE"))
    with get_engine(settings).connect() as src, get_engine(ours).begin() as dst:
        for table, columns in (("districts", "id, code, name, geom"),
                               ("projects", "id, code, name, kind, centerline, corridor_width_m, boundary, footprint, "
                                            "freeze_date, deadline")):
            rows = src.execute(text(f"SELECT {columns} FROM {table}")).mappings().all()
            names = columns.split(", ")
            dst.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + n for n in names)})"),
                        [dict(r) for r in rows])
    with get_engine(ogr).begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS parcels_ogr"))
    for s in (ours, ogr):
        with get_engine(s).connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return ours, ogr


def export_sql() -> str:
    """The SELECT ``gis export parcels`` runs, as ogr2ogr reads it (geometry as a column, no bound values)."""
    statement, _params = parcel_query()
    return (statement.text.replace(":sqm_per_mu", repr(SQM_PER_MU))
            .replace("ST_AsBinary(p.geom) AS geom", "p.geom"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    ap.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS),
                    help="export formats to measure (the whole city's parcels and a project's blockers); default all")
    ap.add_argument("--exports-only", action="store_true", help="skip the imports")
    args = ap.parse_args()
    settings = bench_settings(Path(args.data_dir))
    loaded = ensure_city(settings, args.parcels)
    load_before = os.getloadavg()[0]
    ours_db, ogr_db = prepare_targets(settings)
    gis = [sys.executable, "-c", "from cli import main; main()"]
    env = {**os.environ, "GIS_DATA_DIR": str(settings.data_dir), "GIS_DATABASE_NAME": settings.database_name}
    work = Path(tempfile.mkdtemp(prefix="pb-bench-io-", dir="/var/tmp"))
    ours_file, ogr_file = work / "ours.gpkg", work / "ogr.gpkg"
    runs = [
        measure("start-up only (gis --help)", "gis", [*gis, "--help"], env),
        measure("export PostGIS → GPKG", "gis", [*gis, "export", "parcels", "--format", "gpkg", "-o", str(ours_file),
                                                  "--reveal-personal"], env),
        measure("export PostGIS → GPKG", "ogr2ogr", ["ogr2ogr", "-f", "GPKG", str(ogr_file),
                                                     pg_dsn(settings, settings.database_name), "-sql", export_sql(),
                                                     "-nln", "parcels"]),
    ]
    for path in (ours_file, ogr_file):
        info = pyogrio.read_info(path)
        assert info["features"] == args.parcels, (path, info["features"])
    # Every other format of the whole city, and a project's whole blocker list in every format, as a planner
    # downloads them: memory must not grow with the list.
    for fmt in args.formats:
        if fmt != "gpkg":
            target = work / f"parcels{FORMATS[fmt].suffix}"
            runs.append(measure(f"export PostGIS → {fmt.upper()}", "gis",
                                [*gis, "export", "parcels", "--format", fmt, "-o", str(target), "--reveal-personal"],
                                env))
            target.unlink()
    blocker_count = 0
    for fmt in args.formats:
        target = work / f"blockers{FORMATS[fmt].suffix}"
        runs.append(measure(f"blockers of hsr → {fmt.upper()} (whole list)", "gis",
                            [*gis, "blockers", "hsr", "--format", fmt, "-o", str(target)], env))
        if fmt == "gpkg":
            blocker_count = pyogrio.read_info(target)["features"]
        target.unlink()
    import_env = {**env, "GIS_DATABASE_NAME": ours_db.database_name}
    runs += [] if args.exports_only else [
        measure("import GPKG → PostGIS", "gis", [*gis, "import", str(ours_file), "--actor", "bench"], import_env),
        measure("import GPKG → PostGIS", "ogr2ogr", [
            "ogr2ogr", "-f", "PostgreSQL", pg_dsn(ogr_db, ogr_db.database_name), str(ours_file), "-nln", "parcels_ogr",
            "-lco", "GEOMETRY_NAME=geom", "-lco", "FID=id", "-overwrite"]),
        measure("re-import, all unchanged", "gis", [*gis, "import", str(ours_file), "--actor", "bench"], import_env),
    ]
    if not args.exports_only:
        with get_engine(ours_db).connect() as conn:
            counts = conn.execute(text("SELECT (SELECT count(*) FROM parcels), (SELECT count(*) FROM parcel_events)"
                                       )).one()
        with get_engine(ogr_db).connect() as conn:
            ogr_count = conn.execute(text("SELECT count(*) FROM parcels_ogr")).scalar_one()
        assert counts[0] == ogr_count == args.parcels, (counts, ogr_count)
    sizes = {p.name: p.stat().st_size / 1e6 for p in (ours_file, ogr_file)} | {"blockers": blocker_count}
    for p in (ours_file, ogr_file):
        p.unlink()
    work.rmdir()
    write_results(Path(args.results), args.parcels, runs, sizes, loaded, (load_before, os.getloadavg()[0]))


def write_results(path: Path, parcels: int, runs: list[Run], sizes: dict[str, float], loaded: dict,
                  load: tuple[float, float]) -> None:
    ogr_version = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout.strip()
    by = {(r.label, r.tool): r for r in runs}
    lines = [
        "",
        f"`python -m bench.import_export {' '.join(sys.argv[1:])}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
        f"{ogr_version}; pyogrio's GDAL {pyogrio.__gdal_version_string__}; load average {load[0]:.2f} before and "
        f"{load[1]:.2f} after (the machine is shared).",
        "",
        "| operation | tool | wall time | peak RSS | time vs ogr2ogr | memory vs ogr2ogr |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        base = by.get((r.label, "ogr2ogr"))
        ratio = f"{r.seconds / base.seconds:.2f}×" if base and r.tool != "ogr2ogr" else ""
        mem = f"{r.peak_mb / base.peak_mb:.2f}×" if base and r.tool != "ogr2ogr" else ""
        lines.append(f"| {r.label} | {r.tool} | {r.seconds:.1f} s | {r.peak_mb:.0f} MB | {ratio} | {mem} |")
    lines += [
        "",
        "The gis rows include the command line's start-up (Python importing the command modules; rasterio,",
        "matplotlib and alembic load only in the commands that use them): the first row measures it alone.",
        "",
        f"GeoPackage sizes: gis {sizes['ours.gpkg']:.0f} MB, ogr2ogr {sizes['ogr.gpkg']:.0f} MB. "
        f"The high-speed rail's blocker list held {sizes['blockers']:,.0f} parcels. "
        + ("City generated and loaded for this run: " + ", ".join(f"{k} {v:.0f} s" for k, v in loaded.items()) + "."
           if loaded else "The city was already loaded."),
        "",
        "Commands:",
        "",
        *(f"- {r.tool}, {r.label}: `{_short(r.command)}`" for r in runs),
        "",
    ]
    write_section(path, f"## Import and export of {parcels:,} parcels: gis against ogr2ogr", lines)


def _short(command: str) -> str:
    command = " ".join(command.replace(sys.executable + " -c from cli import main; main()", "gis").split())
    return command if len(command) < 300 else command[:140] + " … " + command[-100:]


if __name__ == "__main__":
    main()
