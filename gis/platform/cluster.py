"""The embedded PostgreSQL+PostGIS cluster, run from a local data folder.

The installed PostgreSQL's own initdb and pg_ctl do the work. initdb and the
server refuse to run as root, so under root every server command runs as the
unprivileged ``postgres`` system user, which then owns the data folder.
The server listens on a unix socket in the data folder (and on loopback only
when asked), with trust authentication limited to that socket's owner.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from gis.platform.config import Settings
from gis.platform.errors import ClusterError

SERVER_USER = "postgres"

_SERVER_CONF = {
    "listen_addresses": "''",
    "unix_socket_permissions": "0700",
    "shared_buffers": "'256MB'",
    "work_mem": "'64MB'",
    "maintenance_work_mem": "'512MB'",
    "max_wal_size": "'4GB'",
    "timezone": "'UTC'",
    "logging_collector": "off",
    # Statements and their bound values stay out of the log: they carry personal data.
    "log_min_error_statement": "panic",
    "log_statement": "none",
    # Errors without DETAIL/CONTEXT lines: a failed constraint's DETAIL quotes the row, owner names included.
    "log_error_verbosity": "terse",
}


@dataclass(frozen=True)
class ClusterStatus:
    initialised: bool
    running: bool
    data_dir: Path
    url: str


def find_bin_dir(settings: Settings) -> Path:
    """The PostgreSQL binaries: pg_bin_dir if set, else the newest under /usr/lib/postgresql, else initdb's on PATH;
    ClusterError if there are none."""
    if settings.pg_bin_dir:
        return settings.pg_bin_dir
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ClusterError("PostgreSQL is not installed: no initdb found (run scripts/setup.sh).")


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    if _as_root():
        cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_server_env())
    if check and proc.returncode != 0:
        raise ClusterError(f"{Path(cmd[0]).name} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc


def _server_env() -> dict[str, str]:
    # An empty locale environment makes initdb pick SQL_ASCII; name the locale explicitly.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_"))}
    env["LANG"] = "C.UTF-8"
    return env


def _prepare_dirs(settings: Settings) -> None:
    dirs = [settings.data_dir, settings.cluster_dir, settings.socket_dir, settings.log_file.parent]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    for d in dirs[1:]:
        d.chmod(0o700)
    if not _as_root():
        return
    pw = pwd.getpwnam(SERVER_USER)
    for d in dirs:
        os.chown(d, pw.pw_uid, pw.pw_gid)
    probe = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-w", str(settings.cluster_dir)])
    if probe.returncode != 0:
        raise ClusterError(
            f"the {SERVER_USER} user cannot reach {settings.data_dir}: a parent folder is closed to it;"
            " set GIS_DATA_DIR to a folder under /var/lib or /srv"
        )


def connection_url(settings: Settings, database: str | None = None, user: str = SERVER_USER) -> str:
    """The URL over the unix socket; ``user`` is the owner by default, the service's login for normal work."""
    db = database or settings.database_name
    return f"postgresql+psycopg://{user}@/{db}?host={settings.socket_dir}&port={settings.pg_port}"


def _libpq_kwargs(settings: Settings, database: str) -> dict[str, object]:
    return {"host": str(settings.socket_dir), "port": settings.pg_port, "user": SERVER_USER, "dbname": database}


def is_initialised(settings: Settings) -> bool:
    """Whether the embedded cluster's data directory exists (initdb has run)."""
    return (settings.cluster_dir / "PG_VERSION").exists()


def is_running(settings: Settings) -> bool:
    """Whether the embedded cluster's server is up (pg_ctl status)."""
    if not is_initialised(settings):
        return False
    pg_ctl = str(find_bin_dir(settings) / "pg_ctl")
    return _run([pg_ctl, "status", "-D", str(settings.cluster_dir)], check=False).returncode == 0


def _initdb(settings: Settings) -> None:
    initdb = str(find_bin_dir(settings) / "initdb")
    _run([
        initdb, "-D", str(settings.cluster_dir), "-U", SERVER_USER, "-E", "UTF8", "--locale=C.UTF-8",
        "--auth-local=trust", "--auth-host=reject", *([] if settings.pg_fsync else ["--no-sync"]),
    ])
    conf = dict(_SERVER_CONF)
    conf["port"] = str(settings.pg_port)
    conf["unix_socket_directories"] = f"'{settings.socket_dir}'"
    if settings.pg_listen_tcp:
        conf["listen_addresses"] = "'127.0.0.1'"
    if not settings.pg_fsync:
        conf.update(fsync="off", synchronous_commit="off", full_page_writes="off")
    lines = "".join(f"{k} = {v}\n" for k, v in conf.items())
    conf_path = settings.cluster_dir / "postgresql.conf"
    with conf_path.open("a", encoding="utf-8") as fh:
        fh.write("\n# parcel-blocker embedded cluster\n" + lines)
    if settings.pg_listen_tcp:
        with (settings.cluster_dir / "pg_hba.conf").open("a", encoding="utf-8") as fh:
            fh.write("host all all 127.0.0.1/32 trust\n")


def start(settings: Settings) -> ClusterStatus:
    """Initialise the cluster if needed, start it if stopped, create the database. Idempotent."""
    _prepare_dirs(settings)
    if not is_initialised(settings):
        _initdb(settings)
    if not is_running(settings):
        pg_ctl = str(find_bin_dir(settings) / "pg_ctl")
        _run([pg_ctl, "start", "-w", "-t", "60", "-D", str(settings.cluster_dir), "-l", str(settings.log_file)])
    _create_database(settings)
    return status(settings)


def start_standby(primary: Settings, standby: Settings) -> ClusterStatus:
    """Start ``standby``'s cluster as a hot standby of ``primary``'s (both embedded, on this machine): a read replica
    for ``read_database_url``. The first time, pg_basebackup copies the primary and its WAL stream keeps the copy
    current; after that the standby only starts. Idempotent."""
    _prepare_dirs(standby)
    if not is_initialised(standby):
        basebackup = str(find_bin_dir(standby) / "pg_basebackup")
        _run([basebackup, "-D", str(standby.cluster_dir), "-h", str(primary.socket_dir), "-p", str(primary.pg_port),
              "-U", SERVER_USER, "--wal-method=stream", "--write-recovery-conf", "--checkpoint=fast"])
        # postgresql.auto.conf is read last: the copy's own socket and port, over the primary's in postgresql.conf.
        with (standby.cluster_dir / "postgresql.auto.conf").open("a", encoding="utf-8") as fh:
            fh.write(f"port = {standby.pg_port}\nunix_socket_directories = '{standby.socket_dir}'\n"
                     "hot_standby = on\n")
    if not is_running(standby):
        pg_ctl = str(find_bin_dir(standby) / "pg_ctl")
        _run([pg_ctl, "start", "-w", "-t", "60", "-D", str(standby.cluster_dir), "-l", str(standby.log_file)])
    return status(standby)


def _create_database(settings: Settings) -> None:
    with psycopg.connect(**_libpq_kwargs(settings, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.database_name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.database_name)))


def stop(settings: Settings) -> ClusterStatus:
    """Stop the server (fast shutdown: sessions are ended, data is flushed). Idempotent."""
    if is_running(settings):
        pg_ctl = str(find_bin_dir(settings) / "pg_ctl")
        _run([pg_ctl, "stop", "-w", "-t", "60", "-m", "fast", "-D", str(settings.cluster_dir)])
    return status(settings)


def status(settings: Settings) -> ClusterStatus:
    """The embedded cluster: initialised, running, data directory, connection URL."""
    return ClusterStatus(
        initialised=is_initialised(settings),
        running=is_running(settings),
        data_dir=settings.data_dir,
        url=connection_url(settings),
    )
