"""Backups that restore: build data, ``gis db backup``, destroy the data folder, ``gis db restore`` into a new one;
the counts, the history and the documents' SHA-256 are identical, and the service's login works on the result."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from gis.imagery.layers import register_layer
from gis.platform import cluster
from gis.platform.backup import COUNTED_TABLES, restore
from gis.platform.db import get_app_engine, get_engine
from gis.platform.errors import InvalidInput
from gis.records.documents import store_document
from gis.records.users import Principal, Role
from tests.conftest import add_parcel, make_temp_dir
from tests.worlds import WORLD_ORIGIN, insert_two_districts, settings_for

HISTORY_SQL = ("SELECT id, parcel_id, at::text, actor, kind, stage_from, stage_to, changes::text "
               "FROM parcel_events ORDER BY id")


def gis(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIS_")}
    env |= {"GIS_DATA_DIR": str(data_dir), "GIS_PG_FSYNC": "false", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_city(data_dir: Path) -> None:
    """Two districts, parcels with their history and payments, documents (one file shared by two rows) and an
    imagery layer whose file lies in the data folder."""
    s = settings_for(data_dir)
    with get_engine(s).begin() as conn:
        insert_two_districts(conn, s.srid)
    parcels = [add_parcel(s, 1, stage="signed", owner="张三"), add_parcel(s, 1, stage="paid", paid_yuan=120000.0),
               add_parcel(s, 2, stage="surveyed")]
    admin = Principal("backup-test", Role.admin)
    contents = [b"%PDF-1.4 contract one", b"%PDF-1.4 appraisal two", b"%PDF-1.4 contract one"]
    with get_engine(s).begin() as conn:
        for pid, kind, body in zip(parcels, ["contract", "appraisal_report", "contract"], contents, strict=True):
            store_document(conn, pid, kind=kind, filename=f"{kind}.pdf", chunks=[body], data_dir=data_dir,
                           max_bytes=10**6, principal=admin)
    tif = data_dir / "imagery" / "ortho-2025.tif"
    tif.parent.mkdir(parents=True)
    x, y = WORLD_ORIGIN
    with rasterio.open(tif, "w", driver="GTiff", width=50, height=50, count=3, dtype="uint8", crs=f"EPSG:{s.srid}",
                       transform=from_origin(x + 100, y + 900, 10, 10)) as dst:
        dst.write(np.random.default_rng(1).integers(0, 255, (3, 50, 50), dtype=np.uint8))
    with get_engine(s).begin() as conn:
        register_layer(conn, tif, acquired_on=date(2025, 5, 1), kind="orthophoto")


def snapshot(data_dir: Path) -> dict:
    """What must survive: row counts, the whole history, each document row with its file's SHA-256, imagery."""
    with get_engine(settings_for(data_dir)).connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in COUNTED_TABLES}
        history = [tuple(r) for r in conn.execute(text(HISTORY_SQL))]
        documents = [(r.id, r.parcel_id, r.kind, r.sha256, sha256(data_dir / r.storage_path))
                     for r in conn.execute(text("SELECT * FROM documents ORDER BY id"))]
        imagery = [(r.id, Path(r.path).relative_to(data_dir).as_posix(), sha256(Path(r.path)))
                   for r in conn.execute(text("SELECT id, path FROM imagery_layers ORDER BY id"))]
        parcels = [tuple(r) for r in conn.execute(text(
            "SELECT id, code, owner_name, stage, version, ST_AsBinary(geom) FROM parcels ORDER BY id"))]
        versions = dict(conn.execute(text("SELECT source, version FROM tile_versions")).all())
        bases = dict(conn.execute(text("SELECT source, base FROM tile_versions")).all())
        edits = conn.execute(text("SELECT count(*) FROM tile_edits")).scalar_one()
    return {"counts": counts, "history": history, "documents": documents, "imagery": imagery, "parcels": parcels,
            "versions": versions, "bases": bases, "edits": edits}


@pytest.fixture(scope="module")
def round_trip():
    source, target, out = (make_temp_dir(p) for p in ("pb-backup-src-", "pb-backup-dst-", "pb-backup-out-"))
    try:
        gis(source, "db", "up")
        build_city(source)
        before = snapshot(source)
        archive = out / "nightly.tar"
        gis(source, "db", "backup", str(archive))
        cluster.stop(settings_for(source))
        shutil.rmtree(source)  # destroyed: the cluster, the documents, the imagery
        restored = gis(target, "db", "restore", str(archive))
        yield before, snapshot(target), archive, target, restored
    finally:
        for path in (source, target):
            cluster.stop(settings_for(path))
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def test_restore_gives_back_the_same_counts_history_and_documents(round_trip):
    before, after, *_ = round_trip
    assert before["counts"]["parcels"] == 3 and before["counts"]["documents"] == 3
    assert before["counts"]["parcel_events"] > 3 and before["counts"]["payments"] == 1
    assert after["counts"] == before["counts"]
    assert after["history"] == before["history"]
    assert after["parcels"] == before["parcels"]
    assert after["documents"] == before["documents"]
    assert all(doc[3] == doc[4] for doc in after["documents"])  # each file's hash is its row's
    assert after["imagery"] == before["imagery"]  # moved with the data folder, same bytes


def test_the_restored_data_versions_are_past_any_the_lost_database_handed_out(round_trip):
    """Kept tiles and blocker pages, and browsers' ETags, name data by version (gis.platform.versioned): restored,
    the counters restart at the clock in microseconds, far past the few thousand the lost database could have
    reached after its backup, and become each table's base, so nothing kept before the restore matches."""
    before, after, *_ = round_trip
    assert before["edits"] > 0 and after["edits"] == 0
    assert after["versions"].keys() == before["versions"].keys() == {"parcels", "projects", "districts"}
    for source, version in before["versions"].items():
        assert after["versions"][source] == after["bases"][source] > version + 10**15


def test_the_archive_holds_a_manifest_and_no_personal_names(round_trip):
    _, _, archive, *_ = round_trip
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[:2] == ["manifest.json", "database.dump"]
    assert len([n for n in names if n.startswith("documents/")]) == 2  # one file for the two identical uploads
    assert len([n for n in names if n.startswith("imagery/")]) == 1
    assert not any("张三" in n or "contract" in n for n in names)


def test_the_service_login_works_on_the_restored_database(round_trip):
    *_, target, _ = round_trip
    engine = get_app_engine(settings_for(target))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM parcels")).scalar_one() == 3
    with pytest.raises(ProgrammingError), engine.begin() as conn:  # history stays append-only
        conn.execute(text("DELETE FROM parcel_events"))


def test_a_restore_into_a_database_that_is_not_empty_is_refused(round_trip):
    before, _, archive, target, _ = round_trip
    refused = gis(target, "db", "restore", str(archive), check=False)
    assert refused.returncode == 1
    assert "not empty" in refused.stderr
    assert snapshot(target)["counts"] == before["counts"]


def test_a_damaged_archive_changes_nothing(round_trip):
    _, _, archive, target, _ = round_trip
    damaged = archive.with_name("damaged.tar")
    data = bytearray(archive.read_bytes())
    at = data.index(b"%PDF-1.4 appraisal two")
    data[at] ^= 0xFF
    damaged.write_bytes(bytes(data))
    s = settings_for(target, database_name="scratch")
    cluster.start(s)
    with pytest.raises(InvalidInput, match="damaged"):
        restore(s, damaged, force=True)
    with get_engine(s).connect() as conn:
        assert not conn.execute(text("SELECT EXISTS (SELECT FROM pg_tables WHERE schemaname = 'public')")).scalar()
