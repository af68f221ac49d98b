"""Settings, read from the environment (prefix ``GIS_``) in one place.

The working CRS is the one setting that decides how areas are measured: every
geometry is stored in it, so it must be a projected CRS in metres that suits
the deployment's data (the demo city: CGCS2000 3-degree Gauss-Krüger, CM 120 E).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SQM_PER_MU = 10000.0 / 15.0


def default_data_dir() -> Path:
    # root's home is mode 700, where the unprivileged postgres user cannot reach
    # a cluster; /var/lib is the conventional place for a service's state.
    if os.geteuid() == 0:
        return Path("/var/lib/parcel-blocker")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "parcel-blocker"


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
    city_timezone: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = 8000
    blocker_min_m2: float = 1.0
    blocker_min_share: float = 0.005

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
    return Settings()
