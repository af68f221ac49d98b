"""Backups that restore: the database, the archive's documents and the imagery files in one tar file.

A backup holds ``manifest.json`` (what is inside, with each file's SHA-256, and the row counts), ``database.dump``
(``pg_dump --format=custom`` by the server's own major version), ``documents/<sha256>`` (every stored document
a row refers to) and ``imagery/<layer id><suffix>`` (each registered imagery layer's file). Member names carry
no personal data: documents are named by their hash, imagery by its layer id.

A restore goes into an empty database and data folder (refused otherwise, unless ``force``): it checks every
file against the manifest before it changes anything, restores the dump in one transaction, puts the files in
place (imagery that lay in the old data folder moves to the same place in the new one), migrates the schema to
this version and checks the row counts against the manifest.

Both work with the embedded cluster and with GIS_DATABASE_URL: the client tools come from the server's major
version (``/usr/lib/postgresql/<major>/bin``, or GIS_PG_BIN_DIR).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import Connection, text

from gis.platform.config import Settings, documents_dir
from gis.platform.db import database_url, get_engine
from gis.platform.errors import Conflict, GisError, InvalidInput
from gis.platform.versioned import restart_versions

FORMAT = "parcel-blocker-backup/1"
MANIFEST = "manifest.json"
DUMP = "database.dump"
CHUNK = 1024 * 1024
# Tables whose row counts are recorded and checked after a restore.
COUNTED_TABLES = ("districts", "projects", "parcels", "parcel_events", "payments", "documents", "imagery_layers",
                  "users")
_MEMBER = re.compile(r"^(documents/[0-9a-f]{64}|imagery/[0-9]+(\.[A-Za-z0-9]{1,10})?)$")
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class BackupError(GisError):
    """A backup or restore that cannot go ahead: a tool failed, the archive is damaged."""

    status_code = 500


@dataclass
class BackupResult:
    path: Path
    counts: dict[str, int]
    documents: int
    imagery: int
    missing_imagery: list[int] = field(default_factory=list)  # layer ids whose file was not found
    size_bytes: int = 0


@dataclass
class RestoreResult:
    counts: dict[str, int]
    documents: int
    imagery: int
    moved_imagery: dict[int, str] = field(default_factory=dict)  # layer id → its new path


# ---------------------------------------------------------------------------------------------
# The client tools and how they reach the database


def _libpq(settings: Settings) -> dict[str, str]:
    """The owner's connection as libpq environment variables (a password stays out of the process list)."""
    url = database_url(settings).replace("postgresql+psycopg://", "postgresql://", 1)
    params = conninfo_to_dict(url)
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE",
             "sslmode": "PGSSLMODE"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({names[k]: str(v) for k, v in params.items() if k in names and v is not None})
    return env


def _server_major(conn: Connection) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def tool(settings: Settings, name: str, major: int) -> Path:
    """``pg_dump`` or ``pg_restore`` of the server's major version: GIS_PG_BIN_DIR, else the Debian layout,
    else the one on PATH if its version matches."""
    candidates = [settings.pg_bin_dir / name] if settings.pg_bin_dir else []
    candidates.append(Path(f"/usr/lib/postgresql/{major}/bin/{name}"))
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file():
            out = subprocess.run([str(path), "--version"], capture_output=True, text=True).stdout
            found = re.search(r"(\d+)(?:\.\d+)?", out)
            if found and int(found.group(1)) == major:
                return path
    raise BackupError(f"no {name} of PostgreSQL {major} found: install postgresql-client-{major} "
                      "or set GIS_PG_BIN_DIR")


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        # The tools' messages name objects, not row values (no data is printed on failure).
        raise BackupError(f"{Path(cmd[0]).name} failed: {(proc.stderr or proc.stdout).strip()[:2000]}")


# ---------------------------------------------------------------------------------------------
# Backup


def default_backup_path(settings: Settings, now: datetime | None = None) -> Path:
    """``<data_dir>/backups/parcel-blocker-<UTC time>.tar``."""
    now = now or datetime.now(UTC)
    return settings.data_dir / "backups" / f"parcel-blocker-{now:%Y%m%d-%H%M%S}.tar"


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _counts(conn: Connection) -> dict[str, int]:
    # Table names from the constant above, never from input.
    return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in COUNTED_TABLES}


def backup(settings: Settings, path: Path | None = None) -> BackupResult:
    """Write a backup of the database and its files to ``path`` (default ``default_backup_path``); the file
    appears whole or not at all."""
    path = Path(path) if path else default_backup_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = get_engine(settings)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".backup-") as work:
        dump = Path(work) / DUMP
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            pg_dump = tool(settings, "pg_dump", _server_major(conn))
            # One snapshot for the dump and for what the manifest records (counts, files): pg_dump imports
            # this transaction's snapshot, so rows written meanwhile are in neither.
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            facts = conn.execute(text(
                "SELECT (SELECT version_num FROM alembic_version), Find_SRID('public', 'parcels', 'geom'), "
                "current_setting('server_version')")).one()
            counts = _counts(conn)
            documents = [r[0] for r in conn.execute(text(
                "SELECT DISTINCT storage_path FROM documents WHERE storage_path IS NOT NULL ORDER BY 1"))]
            layers = conn.execute(text("SELECT id, path FROM imagery_layers ORDER BY id")).all()
            _run([str(pg_dump), "--format=custom", "--no-password", f"--snapshot={snapshot}", f"--file={dump}"],
                 _libpq(settings))
            conn.rollback()
        # Documents are written before their row commits and never changed after: the files match the snapshot.
        files: list[tuple[Path, dict[str, Any]]] = []
        for rel in documents:
            source = settings.data_dir / rel
            if not source.is_file():
                raise BackupError(f"a stored document is missing from the data folder: {rel}")
            files.append((source, {"member": rel}))
        missing = []
        for layer_id, layer_path in layers:
            source = Path(layer_path)
            if not source.is_file():
                missing.append(layer_id)
                continue
            files.append((source, {"member": f"imagery/{layer_id}{source.suffix[:11]}", "layer_id": layer_id,
                                   "original_path": str(source)}))
        entries = [entry | dict(zip(("sha256", "size"), _sha256(source), strict=True)) for source, entry in files]
        dump_sha, dump_size = _sha256(dump)
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "server_version": facts[2],
            "schema_revision": facts[0],
            "srid": int(facts[1]),
            "app_db_user": settings.app_db_user,
            "data_dir": str(settings.data_dir.resolve()),
            "counts": counts,
            "database": {"member": DUMP, "sha256": dump_sha, "size": dump_size},
            "files": entries,
            "missing_imagery": missing,
        }
        partial = Path(work) / "backup.tar"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode())
            tar.add(dump, arcname=DUMP)
            for (source, _), entry in zip(files, entries, strict=True):
                tar.add(source, arcname=entry["member"])
        os.replace(partial, path)
    return BackupResult(path=path, counts=counts, documents=len(documents), imagery=len(layers) - len(missing),
                        missing_imagery=missing, size_bytes=path.stat().st_size)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


# ---------------------------------------------------------------------------------------------
# Restore


def read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    """The backup's manifest, checked for this format and for member names this module writes."""
    try:
        manifest = json.load(_member(tar, MANIFEST))
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"not a parcel-blocker backup: no readable {MANIFEST}", where="file") from exc
    if manifest.get("format") != FORMAT:
        raise InvalidInput(f"not a backup this version reads (format {manifest.get('format')!r}, expected {FORMAT})",
                           where="file")
    for entry in manifest["files"]:
        if not _MEMBER.match(entry["member"]):
            raise InvalidInput(f"the backup names an unexpected file {entry['member']!r}", where="file")
    if not _ROLE.match(str(manifest.get("app_db_user", ""))):
        raise InvalidInput("the backup names an invalid service login", where="file")
    return manifest


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    info = tar.getmember(name)
    if not info.isfile():
        raise InvalidInput(f"{name} in the backup is not a file", where="file")
    fh = tar.extractfile(info)
    assert fh is not None  # a regular file always has a stream
    return fh


def _extract_checked(tar: tarfile.TarFile, entry: dict[str, Any], dest: Path) -> None:
    """Copy one member to ``dest``, refusing it if its SHA-256 or size is not the manifest's."""
    digest, size = hashlib.sha256(), 0
    try:
        source = _member(tar, entry["member"])
    except KeyError:
        raise InvalidInput(f"the backup lacks {entry['member']}", where="file") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    with source, dest.open("wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if digest.hexdigest() != entry["sha256"] or size != entry["size"]:
        raise InvalidInput(f"{entry['member']} in the backup is damaged (its SHA-256 does not match)", where="file")


def database_is_empty(conn: Connection) -> bool:
    """No table in the schemas this service uses (public, postgis)."""
    return not conn.execute(text(
        "SELECT EXISTS (SELECT FROM pg_tables WHERE schemaname IN ('public', 'postgis'))")).scalar_one()


def _folder_is_empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


@contextmanager
def _staging(settings: Settings) -> Iterator[Path]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=settings.data_dir, prefix=".restore-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _imagery_destination(entry: dict[str, Any], old_data_dir: Path, settings: Settings,
                         imagery_dir: Path | None) -> Path:
    """Where a layer's file goes: under ``imagery_dir`` when given; the same place in the new data folder when
    it lay in the old one; else where it was."""
    original = Path(entry["original_path"])
    if imagery_dir is not None:
        return Path(imagery_dir).resolve() / f"{entry['layer_id']}{original.suffix[:11]}"
    if original.is_relative_to(old_data_dir):
        return settings.data_dir.resolve() / original.relative_to(old_data_dir)
    return original


def restore(settings: Settings, path: Path, *, force: bool = False, imagery_dir: Path | None = None) -> RestoreResult:
    """Restore the backup at ``path`` into the configured database and data folder.

    Refused (Conflict) when the database has tables or the documents folder has files, unless ``force``, which
    first drops the schemas public and postgis. Every file is checked against the manifest before anything is
    changed; the dump is restored in one transaction.
    """
    from gis.platform import cluster, migrate  # alembic: loaded only here

    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", where="file")
    try:
        tar = tarfile.open(path, "r:")
    except tarfile.TarError as exc:
        raise InvalidInput(f"{path.name} is not a backup archive (tar): {exc}", where="file") from None
    with tar, _staging(settings) as work:
        manifest = read_manifest(tar)
        if manifest["srid"] != settings.srid:
            raise InvalidInput(f"the backup stores geometry in EPSG:{manifest['srid']} but GIS_SRID is "
                               f"{settings.srid}; set GIS_SRID={manifest['srid']}", where="file")
        if manifest["app_db_user"] != settings.app_db_user:
            raise InvalidInput(f"the backup's service login is {manifest['app_db_user']!r} but GIS_APP_DB_USER is "
                               f"{settings.app_db_user!r}; set it to the backup's", where="file")
        if not settings.database_url:
            cluster.start(settings)
        engine = get_engine(settings)
        docs = documents_dir(settings.data_dir)
        with engine.connect() as conn:
            empty = database_is_empty(conn)
            major = _server_major(conn)
            conn.rollback()
        if not force and not (empty and _folder_is_empty(docs)):
            raise Conflict("the database or the documents folder is not empty; restore into a new data folder "
                           "or database, or pass --force to replace what is there")
        pg_restore = tool(settings, "pg_restore", major)
        # Every file checked before anything changes.
        _extract_checked(tar, manifest["database"], work / DUMP)
        staged = []
        for entry in manifest["files"]:
            _extract_checked(tar, entry, work / entry["member"])
            staged.append(entry)
        with engine.begin() as conn:
            if not empty:
                conn.execute(text("DROP SCHEMA IF EXISTS postgis CASCADE"))
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            _ensure_login(conn, manifest["app_db_user"])
        engine.dispose()  # pooled sessions hold the old search path and catalog
        _run([str(pg_restore), "--no-owner", "--single-transaction", "--exit-on-error", "--no-password",
              f"--dbname={_libpq(settings)['PGDATABASE']}", str(work / DUMP)], _libpq(settings))
        old_data_dir = Path(manifest["data_dir"])
        moved: dict[int, str] = {}
        documents = imagery = 0
        for entry in staged:
            if "layer_id" in entry:
                dest = _imagery_destination(entry, old_data_dir, settings, imagery_dir)
                _place(work / entry["member"], dest, entry["sha256"], force)
                if str(dest) != entry["original_path"]:
                    moved[entry["layer_id"]] = str(dest)
                imagery += 1
            else:
                _place(work / entry["member"], settings.data_dir / entry["member"], entry["sha256"], force)
                documents += 1
        with engine.begin() as conn:
            # A database-level setting is not in a dump: the same search path the first migration set.
            conn.execute(text("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = public, postgis', "
                              "current_database()); END $$"))
            for layer_id, new_path in moved.items():
                conn.execute(text("UPDATE imagery_layers SET path = :p WHERE id = :id"),
                             {"p": new_path, "id": layer_id})
        engine.dispose()
        migrate.upgrade(settings)  # a backup from an older version gets this version's schema
        with engine.connect() as conn:
            restart_versions(conn)
            counts = _counts(conn)
            conn.execute(text("ANALYZE"))
            conn.commit()
        expected = {t: manifest["counts"][t] for t in COUNTED_TABLES if t in manifest["counts"]}
        if {t: counts[t] for t in expected} != expected:
            raise BackupError(f"the restored database does not hold what the backup recorded: {counts} != {expected}")
    return RestoreResult(counts=counts, documents=documents, imagery=imagery, moved_imagery=moved)


def _place(staged: Path, dest: Path, sha: str, force: bool) -> None:
    """Move a checked file into place; an identical file already there is kept, a different one only replaced
    with ``force``."""
    if dest.exists():
        if _sha256(dest)[0] == sha:
            return
        if not force:
            raise Conflict(f"{dest} exists with other contents; pass --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staged), dest)


def _ensure_login(conn: Connection, role: str) -> None:
    """The service's login, which the dump's grants name, created if this server lacks it (a new cluster)."""
    if not _ROLE.match(role):
        raise InvalidInput(f"invalid service login {role!r}", where="app_db_user")
    exists = conn.execute(text("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :r)"), {"r": role}).scalar_one()
    if not exists:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))  # DDL takes no parameters; the name was checked above
