"""Settings, read from the environment (prefix ``GIS_``) in one place.

The working CRS is the one setting that decides how areas are measured: every
geometry is stored in it, so it must be a projected CRS in metres that suits
the deployment's data (the demo city: CGCS2000 3-degree Gauss-Krüger, CM 120 E).
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SQM_PER_MU = 10000.0 / 15.0


def default_data_dir() -> Path:
    """Where the service keeps its state: /var/lib/parcel-blocker for root, else under $XDG_DATA_HOME
    (~/.local/share)."""
    # root's home is mode 700, where the unprivileged postgres user cannot reach
    # a cluster; /var/lib is the conventional place for a service's state.
    if os.geteuid() == 0:
        return Path("/var/lib/parcel-blocker")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "parcel-blocker"


# The city's clock: what "today" and "the end of a day" mean (stage dates, reports, overdue checks).
DEFAULT_TIMEZONE = "Asia/Shanghai"

class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GIS_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="An external PostgreSQL+PostGIS; unset runs the embedded cluster."
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    pg_port: int = 54329
    pg_bin_dir: Path | None = None
    pg_listen_tcp: bool = Field(default=False, description="Also listen on 127.0.0.1:pg_port.")
    pg_fsync: bool = Field(default=True, description="Off only for throwaway test clusters.")
    database_name: str = "parcels"
    srid: int = Field(default=4549, description="Working CRS: projected, metres.")
    city_timezone: str = DEFAULT_TIMEZONE
    host: str = "127.0.0.1"
    port: int = 8000
    blocker_min_m2: float = 1.0
    blocker_min_share: float = 0.005
    max_json_body_bytes: int = Field(default=5 * 1024 * 1024, description="Larger JSON bodies get 413.")
    max_upload_bytes: int = Field(default=1024 * 1024 * 1024, description="Larger uploads get 413.")
    import_max_offset_m: float = Field(
        default=5000.0, gt=0, description="Imported parcels farther than this beyond the districts' extent are refused."
    )
    # Access control (gis.records.users, gis.platform.db): the service works as a non-owner login, so the database
    # itself can refuse what the service must never do (rewrite history); migrations run as the owner.
    app_db_user: str = Field(default="gis_app", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
                             description="The service's own database login (created by the migrations).")
    app_database_url: str | None = Field(
        default=None, description="External database only: URL logging in as app_db_user; unset uses database_url."
    )
    read_database_url: str | None = Field(
        default=None, description="A read replica (a hot standby of the database), logging in as app_db_user: the "
                                  "API's GET routes read there, everything else stays on the primary. One standby, "
                                  "not a balancer over several (docs/scaling.md).")
    session_hours: float = Field(default=12.0, gt=0, description="Browser sign-in lifetime.")
    auth_cache_seconds: float = Field(
        default=5.0, ge=0, le=300,
        description="How long a worker keeps a looked-up token; revocations from elsewhere take up to this long. "
                    "0: look every request up.")
    session_cookie_secure: bool = Field(
        default=False, description="Always send the session cookie over HTTPS only (it is anyway whenever the request "
                                   "came over HTTPS, directly or through a trusted proxy).")
    # Sign-in throttling (gis.records.users.login): after this many failures since the last success a user name, or a
    # client
    # address, is locked for login_lock_seconds, doubled with each further failure up to login_lock_max_seconds.
    login_max_failures: int = Field(default=5, ge=1, le=1000, description="Failed sign-ins of one user name before "
                                                                            "it is locked.")
    login_address_max_failures: int = Field(
        default=20, ge=1, le=100000, description="Failed sign-ins from one client address before it is locked (higher "
                                                 "than per user: an office may share one address).")
    login_lock_seconds: float = Field(default=2.0, gt=0, le=3600, description="The first lock; doubled per failure.")
    login_lock_max_seconds: float = Field(default=900.0, gt=0, le=86400, description="The longest lock.")
    login_attempts_keep_days: int = Field(default=90, ge=1, le=3650, description="Sign-in attempts older than this "
                                                                                 "are deleted.")
    # Reverse proxies (api.proxy): only a request arriving from one of these has its X-Forwarded-For (the client's
    # address, for throttling) and X-Forwarded-Proto (https: the Secure cookie) believed; anyone else could forge them.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Addresses or networks (CIDR) of trusted reverse proxies, comma-separated; "
                                "empty: forwarded headers are ignored.")
    document_max_bytes: int = Field(default=50 * 1024 * 1024, gt=0, description="Largest archive upload.")
    workflow_require_documents: bool = Field(
        default=False, description="Refuse a stage change while documents the current stage requires are missing."
    )
    # Imagery (gis.imagery): what counts as change after a project's freeze, and what gets flagged.
    imagery_height_threshold_m: float = Field(default=2.0, description="Height above which a pixel counts as raised.")
    imagery_change_threshold_m: float = Field(default=2.0, description="Height gain that counts as change.")
    imagery_flag_min_m2: float = Field(default=20.0, description="Changed area a parcel needs to be flagged.")
    imagery_flag_min_share: float = Field(default=0.01, description="Changed share a parcel needs to be flagged.")
    idle_land_days: int = Field(default=180, ge=1, le=36_500, description="Cleared land not supplied for more than "
                                "this many days is 长期无法净地开发 (the check's default).")
    imagery_built_classes: tuple[int, ...] = (50,)  # classification codes: ESA WorldCover's built-up
    imagery_vegetation_classes: tuple[int, ...] = (10, 20, 30, 40)  # tree, shrub, grass, cropland
    # Maps (gis.maps): no basemap unless one is configured; the pages load their scripts from map_assets_dir.
    basemap_url: str | None = Field(default=None, description="XYZ basemap template, e.g. an internal tile server "
                                    "or Tianditu with its key; unset: no basemap.")
    basemap_crs: Literal["wgs84", "gcj02"] = Field(
        default="wgs84", description="gcj02 for Gaode/AMap or Tencent tiles: the overlays are shifted to match, "
        "for display only.")
    basemap_attribution: str = Field(default="底图", description="Attribution shown for the basemap.")
    basemap_max_zoom: int = Field(default=18, ge=0, le=22)
    map_assets_dir: Path = Field(default_factory=lambda: Path(__file__).resolve().parents[2] / "node_modules",
                                 description="The npm packages (npm ci) served under /static/vendor/.")
    # Capacity (gis.platform.db, api.capacity): under overload a request waits a bounded time for a connection or a
    # tile slot, a statement runs a bounded time, and then the answer is 503 with Retry-After, never a 500
    # or a wait without end. pool_size + max_overflow is each worker's share of the server's max_connections.
    db_pool_size: int = Field(default=10, ge=1, le=500, description="Pooled connections per worker (the service).")
    db_max_overflow: int = Field(default=10, ge=0, le=500, description="Extra connections opened under load.")
    db_pool_timeout_s: float = Field(default=5.0, gt=0, le=300,
                                     description="Longest wait for a free connection; then 503.")
    db_statement_timeout_s: float = Field(default=30.0, ge=0, le=86400,
                                          description="Longest statement of the service's login; then 503. 0: none.")
    tile_concurrency: int = Field(default=4, ge=1, le=256, description="Tiles built at once per worker.")
    tile_queue_timeout_s: float = Field(default=5.0, gt=0, le=300,
                                        description="Longest wait for a tile slot; then 503.")
    render_concurrency: int = Field(default=2, ge=1, le=256,
                                    description="Map pages, map images and file downloads made at once per worker.")
    render_queue_timeout_s: float = Field(default=10.0, gt=0, le=300,
                                          description="Longest wait for a render slot; then 503.")
    retry_after_s: int = Field(default=2, ge=1, le=3600, description="Retry-After sent with a 503.")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: object) -> object:
        """A comma-separated list from the environment; each entry must be an address or a network."""
        raw = value.split(",") if isinstance(value, str) else value or ()
        items = [str(v).strip() for v in raw if str(v).strip()]  # type: ignore[union-attr]
        for item in items:
            ipaddress.ip_network(item, strict=False)  # ValueError: pydantic reports the bad entry
        return tuple(items)

    @property
    def cluster_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "log" / "postgresql.log"


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment (``GIS_*``), read once a process."""
    return Settings()


def documents_dir(data_dir: Path) -> Path:
    """Where the archive's documents are stored under the service's data folder (backups take them from here)."""
    return data_dir / "documents"
