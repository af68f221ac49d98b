"""Named import profiles: a file's columns → parcel fields, fixed values, the CRS, reading options.

A profile is what an office saves once for the files a surveyor keeps sending in the same shape:
``{"mapping": {"宗地号": "code", "QLR": "owner_name"}, "defaults": {"kind": "land"}, "crs": 4528}``.
Mapping targets are parcel fields (``gis.io.fields.FIELDS``) or geometry columns of spreadsheets
(``wkt``, ``lon``, ``lat``, ``point_no``, ``ring_no``); ``-`` leaves a column out. Defaults fill a
field for rows (or whole files) that lack it. With ``auto`` (the default) recognised column names
are mapped too, the profile's own mapping taking precedence.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from gis.io.fields import FIELDS, IGNORE, known_target
from gis.platform.errors import InvalidInput, NotFound

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
OPTIONS = {"auto", "layer", "sheet", "encoding"}


@dataclass
class Profile:
    name: str | None = None
    description: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)  # column → field, geometry role or "-"
    defaults: dict[str, Any] = field(default_factory=dict)  # field → value
    crs: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def merged(self, mapping: dict[str, str] | None = None, defaults: dict[str, Any] | None = None,
               crs: int | None = None) -> Profile:
        """This profile with a caller's own column mapping, defaults and CRS on top."""
        return Profile(
            name=self.name, description=self.description, mapping={**self.mapping, **(mapping or {})},
            defaults={**self.defaults, **(defaults or {})}, crs=crs if crs is not None else self.crs,
            options=dict(self.options),
        )


def check_profile(profile: Profile) -> Profile:
    """Raise InvalidInput naming the first thing wrong with a profile."""
    if profile.name is not None and not NAME.match(profile.name):
        raise InvalidInput("a profile name is 1-64 letters, digits, '_', '-' or '.'", "name")
    for column, target in profile.mapping.items():
        if not str(column).strip():
            raise InvalidInput("a mapping needs a column name", "mapping")
        if target not in IGNORE and not known_target(target):
            fields = ", ".join(FIELDS)
            raise InvalidInput(f"column {column!r} maps to unknown field {target!r}; fields: {fields}, or wkt, "
                               "lon, lat, point_no, ring_no for spreadsheet geometry, or - to leave it out",
                               f"mapping.{column}")
    for name in profile.defaults:
        if name not in FIELDS or name == "code":
            raise InvalidInput(f"no default can be set for {name!r}", f"defaults.{name}")
    unknown = set(profile.options) - OPTIONS
    if unknown:
        raise InvalidInput(f"unknown options: {', '.join(sorted(unknown))}; options are {', '.join(sorted(OPTIONS))}",
                           "options")
    if profile.crs is not None and not isinstance(profile.crs, int):
        raise InvalidInput("crs is an EPSG code (a number)", "crs")
    return profile


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """``["宗地号=code", "QLR=owner_name"]`` (the CLI's --map) as a mapping."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        column, sep, target = pair.rpartition("=")
        if not sep or not column.strip():
            raise InvalidInput(f"--map takes COLUMN=FIELD, got {pair!r}", "map")
        out[column.strip()] = target.strip()
    return out


def _row_to_profile(row: Any) -> Profile:
    return Profile(name=row["name"], description=row["description"], mapping=dict(row["mapping"]),
                   defaults=dict(row["defaults"]), crs=row["crs"], options=dict(row["options"]))


def list_profiles(conn: Connection) -> list[Profile]:
    """Every saved import profile, by name."""
    rows = conn.execute(text(
        "SELECT name, description, mapping, defaults, crs, options FROM import_profiles ORDER BY name"
    )).mappings()
    return [_row_to_profile(r) for r in rows]


def get_profile(conn: Connection, name: str) -> Profile:
    """The profile named ``name``; NotFound listing the saved ones otherwise."""
    row = conn.execute(text(
        "SELECT name, description, mapping, defaults, crs, options FROM import_profiles WHERE name = :name"
    ), {"name": name}).mappings().first()
    if row is None:
        known = ", ".join(p.name for p in list_profiles(conn) if p.name) or "none saved yet"
        raise NotFound(f"no import profile {name!r} (profiles: {known})")
    return _row_to_profile(row)


def save_profile(conn: Connection, profile: Profile) -> Profile:
    """Create the profile, or replace the one of the same name."""
    check_profile(profile)
    if not profile.name:
        raise InvalidInput("a saved profile needs a name", "name")
    conn.execute(text("""
        INSERT INTO import_profiles (name, description, mapping, defaults, crs, options)
        VALUES (:name, :description, CAST(:mapping AS jsonb), CAST(:defaults AS jsonb), :crs, CAST(:options AS jsonb))
        ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description, mapping = EXCLUDED.mapping,
            defaults = EXCLUDED.defaults, crs = EXCLUDED.crs, options = EXCLUDED.options, updated_at = now()
    """), {
        "name": profile.name, "description": profile.description, "crs": profile.crs,
        "mapping": json.dumps(profile.mapping, ensure_ascii=False),
        "defaults": json.dumps(profile.defaults, ensure_ascii=False, default=str),
        "options": json.dumps(profile.options, ensure_ascii=False),
    })
    return profile


def delete_profile(conn: Connection, name: str) -> None:
    """Delete the profile named ``name``; NotFound if there is none."""
    if conn.execute(text("DELETE FROM import_profiles WHERE name = :name"), {"name": name}).rowcount == 0:
        raise NotFound(f"no import profile {name!r}")
