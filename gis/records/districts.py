"""Districts (片区 / 乡镇街道): loaded from the planners' own files, listed, renamed, deleted — no SQL by hand.

The rules ``import_districts`` keeps:

- **Reading**: the file is read by ``gis.io.features.read_features`` (GeoPackage, zipped Shapefile in GBK or
  UTF-8, GeoJSON, KML, FlatGeobuf, DXF closed polylines) and brought into the working CRS; a file without a
  CRS gets one only when the coordinates leave no doubt, else the CRS must be declared.
- **Columns**: ``code`` and ``name`` come from the caller's mapping (column → ``code``, ``name`` or
  ``code,name`` — a DXF's ``Layer`` is often the only text a drawing has, and serves as both), else from the
  first column found under a common name (``COLUMN_NAMES``). A target found nowhere is refused, naming the
  columns the file has.
- **Values**: a code is 1-40 characters, a name 1-100 (blanks around them dropped; whole-number values
  such as 75118.0 read as 75118). One code has one name throughout the file, and after the import no two
  districts share a name (the parcel importer finds districts by code *or* name).
- **Boundaries**: several features with one code are one district, their union as a MultiPolygon. An
  invalid boundary is repaired with GEOS MakeValid ('structure' method, as the parcel import does) and the
  repair is stated in the notes with the area before and after; one with nothing of an area left is refused.
- **No overlaps**: two districts may overlap by less than ``OVERLAP_TOLERANCE_M2`` (a shared boundary
  digitised twice), never more. Checked between the file's districts and against the stored districts the
  file does not replace; a refusal names each pair (codes and names) and its overlap in m², computed in
  metres in the working CRS.
- **Replace by code**: in the caller's transaction, codes of the file are inserted (new id: the largest id
  + 1, in code order) or updated (name and boundary); districts the file does not name stay as they are. A
  boundary within 1 mm (Hausdorff) of the stored one, with the same name, is unchanged.
- **Parcels follow**: every parcel in a district the import changed, or touching the new boundary of a
  created or changed one, is given the district it overlaps most (by area; ties by code), in one
  set-based statement. A parcel that overlaps no district keeps its district (it must have one) and is
  listed as outside every district. Each parcel that changes district gets a history event
  (``attributes``, ``{"district_id": {"from": old, "to": new}}``, as an edit or a parcel import writes
  it) and version + 1.
- **All or nothing**: every refusal raises InvalidInput (422) before anything is written, and any error
  leaves the caller's transaction to roll back. A dry run does all of it in a savepoint and rolls that back,
  so it reports exactly what the import would do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from gis.io.features import POLYGONS, Features, read_features
from gis.io.fields import normalise
from gis.io.readers import file_fingerprint
from gis.platform.config import SQM_PER_MU
from gis.platform.db import working_srid
from gis.platform.errors import Conflict, InvalidInput, NotFound
from gis.records import history

log = logging.getLogger(__name__)

OVERLAP_TOLERANCE_M2 = 1.0  # overlaps below this are a shared boundary digitised twice, not an overlap
GEOMETRY_TOLERANCE_M = 0.001  # a boundary within 1 mm (Hausdorff) of the stored one is unchanged
MIN_AREA_M2 = 0.01  # a repaired boundary with less area than this has nothing of a district left
MAX_CODE_CHARS = 40
MAX_NAME_CHARS = 100
TARGETS = ("code", "name")
COLUMN_NAMES = {  # compared after gis.io.fields.normalise (NFKC, lower case, no blanks); first found wins
    "code": ("code", "district_code", "片区编码", "片区代码", "编码", "代码", "区划代码", "行政区划代码", "id"),
    "name": ("name", "district_name", "片区名称", "名称", "片区", "乡镇", "乡镇街道", "街道", "乡镇名称"),
}
MAX_NAMED = 10  # overlapping pairs named in one refusal


@dataclass(frozen=True)
class ParcelMove:
    """A parcel whose district changed: parcel code, district codes before and after."""

    code: str
    from_district: str
    to_district: str


@dataclass
class DistrictImportReport:
    """What a district import did (or, dry run, would do)."""

    file: str
    working_srid: int
    dry_run: bool = False
    crs: int | None = None  # the CRS the coordinates were read in
    mapping: dict[str, str] = field(default_factory=dict)  # file column → code / name / code,name, as used
    features: int = 0  # polygon features read
    created: list[str] = field(default_factory=list)  # district codes
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    parcels_moved: list[ParcelMove] = field(default_factory=list)
    parcels_outside: list[str] = field(default_factory=list)  # parcel codes: affected, overlapping no district
    notes: list[str] = field(default_factory=list)  # CRS assumed, repairs, features left aside
    committed: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return {"features": self.features, "districts": len(self.created) + len(self.updated) + len(self.unchanged),
                "created": len(self.created), "updated": len(self.updated), "unchanged": len(self.unchanged),
                "parcels_moved": len(self.parcels_moved), "parcels_outside": len(self.parcels_outside)}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"counts": self.counts, "overlap_tolerance_m2": OVERLAP_TOLERANCE_M2}


@dataclass
class _Draft:
    """One district of the file: its features merged."""

    code: str
    name: str
    rows: list[int]
    geoms: list[shapely.Geometry]


# ---------------------------------------------------------------------------------------------
# Import


def import_districts(
    conn: Connection,
    path: Path | str,
    *,
    mapping: dict[str, str] | None = None,
    layer: str | None = None,
    cad_layer: str | None = None,
    crs: int | None = None,
    actor: str,
    dry_run: bool = False,
    file_name: str | None = None,
) -> DistrictImportReport:
    """Load district boundaries from a planner's file into the caller's transaction (rules: module docstring).

    ``mapping``: file column → ``code``, ``name`` or ``code,name``; ``layer`` picks the layer of a
    multi-layer file and, in a DXF drawing, the CAD layer (as for projects, gis.records.projects.alignment_from_file;
    ``cad_layer`` says so explicitly); ``crs`` (EPSG code) declares the coordinates' CRS. ``actor`` signs the
    parcels' history events. Raises InvalidInput (422) for anything refused; nothing is written then.
    """
    path = Path(path)
    if layer is not None and cad_layer is None and path.suffix.lower() == ".dxf":
        layer, cad_layer = None, layer  # a DXF is one GDAL layer; its CAD layers are a field of it
    wanted = _check_mapping(mapping or {})
    srid = working_srid(conn)
    features = read_features(path, POLYGONS, working_srid=srid, layer=layer, cad_layer=cad_layer, crs=crs)
    report = DistrictImportReport(file=file_name or path.name, working_srid=srid, dry_run=dry_run,
                                  crs=features.source_srid, features=len(features.geoms), notes=list(features.notes))
    columns = _find_columns(features.attrs, wanted)
    report.mapping = _used_mapping(columns)
    drafts = _drafts(features, columns, report.notes)
    # District imports one at a time, and no other write to the districts meanwhile; readers, and parcels
    # referring to a district, go on. Taken before anything is read, so the checks see what the writes meet.
    conn.execute(text("LOCK TABLE districts IN SHARE ROW EXCLUSIVE MODE"))
    _check_names(conn, drafts)
    savepoint = conn.begin_nested() if dry_run else None
    try:
        _stage(conn, drafts, srid)
        _check_overlaps(conn)
        _classify(conn, report)
        _write_districts(conn)
        _reassign_parcels(conn, report, actor, f"片区边界导入 {file_fingerprint(path)}")
        conn.execute(text("DROP TABLE district_file, district_moves"))
    finally:
        if savepoint is not None:
            savepoint.rollback()
    report.committed = not dry_run
    return report


def _check_mapping(mapping: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """column → its targets; InvalidInput for a target that is neither code nor name, or one given twice."""
    out: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for column, value in mapping.items():
        targets = tuple(t.strip() for t in str(value).split(",") if t.strip())
        if not str(column).strip() or not targets or any(t not in TARGETS for t in targets):
            raise InvalidInput(f"column {column!r} maps to {value!r}: a district file's column maps to code, name "
                               "or code,name", f"map.{column}")
        for t in targets:
            if t in seen:
                raise InvalidInput(f"both {seen[t]!r} and {column!r} are mapped to {t}", f"map.{column}")
            seen[t] = column
        out[str(column)] = targets
    return out


def _find_columns(attrs: pd.DataFrame, wanted: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """target → the file's column: the mapped one, else the first common name found."""
    available = [str(c) for c in attrs.columns]
    listed = ", ".join(available) or "none"
    chosen: dict[str, str] = {}
    for column, targets in wanted.items():
        if column not in available:
            raise InvalidInput(f"the file has no column {column!r}; its columns: {listed}", f"map.{column}")
        chosen |= {t: column for t in targets}
    by_name: dict[str, str] = {}
    for c in available:
        by_name.setdefault(normalise(c), c)
    for target in TARGETS:
        if target in chosen:
            continue
        found = [by_name[normalise(n)] for n in COLUMN_NAMES[target]
                 if normalise(n) in by_name and by_name[normalise(n)] not in chosen.values()]
        if not found:
            raise InvalidInput(
                f"no column for the district {target} (looked for {', '.join(COLUMN_NAMES[target])}); the file's "
                f"columns: {listed}; name one with --map COLUMN={target}", "map")
        chosen[target] = found[0]
    return chosen


def _used_mapping(columns: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for target in TARGETS:
        column = columns[target]
        out[column] = f"{out[column]},{target}" if column in out else target
    return out


def _text(value: Any) -> str:
    """A cell as text: blanks dropped, a whole number without its '.0' (a code read as a float)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _drafts(features: Features, columns: dict[str, str], notes: list[str]) -> list[_Draft]:
    """The file's districts, in the order their codes first appear; values and boundaries checked."""
    codes = [_text(v) for v in features.attrs[columns["code"]]]
    names = [_text(v) for v in features.attrs[columns["name"]]]
    drafts: dict[str, _Draft] = {}
    for i, row in enumerate(int(r) for r in features.rows):
        code, name = codes[i], names[i]
        _check_value(code, "code", columns["code"], MAX_CODE_CHARS, row)
        _check_value(name, "name", columns["name"], MAX_NAME_CHARS, row)
        geom = _valid_boundary(features.geoms[i], row, code, notes)
        draft = drafts.get(code)
        if draft is None:
            drafts[code] = _Draft(code, name, [row], [geom])
            continue
        if draft.name != name:
            raise InvalidInput(f"code {code} is given two names: {draft.name!r} (feature {draft.rows[0]}) and "
                               f"{name!r} (feature {row})", f"feature {row}")
        draft.rows.append(row)
        draft.geoms.append(geom)
    return list(drafts.values())


def _check_value(value: str, target: str, column: str, limit: int, row: int) -> None:
    if not value:
        raise InvalidInput(f"feature {row} has no {target} (column {column!r} is blank)", f"feature {row}")
    if len(value) > limit:
        raise InvalidInput(f"feature {row}: the {target} {value[:limit]}… is longer than {limit} characters",
                           f"feature {row}")


def _valid_boundary(geom: shapely.Geometry, row: int, code: str, notes: list[str]) -> shapely.Geometry:
    """The boundary, or its repair by GEOS MakeValid (said in the notes); InvalidInput when no area is left."""
    if shapely.is_valid(geom):
        return geom
    reason = shapely.is_valid_reason(geom)
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    polygons = [p for p in shapely.get_parts(fixed) if p.geom_type in ("Polygon", "MultiPolygon")]
    repaired = shapely.union_all(polygons) if polygons else None
    if repaired is None or repaired.area < MIN_AREA_M2:
        raise InvalidInput(f"feature {row} ({code}): the boundary is invalid ({reason}) and nothing of it is an "
                           "area", f"feature {row}")
    notes.append(f"feature {row} ({code}): invalid boundary ({reason}) repaired with GEOS MakeValid (method "
                 f"'structure'): area {abs(shapely.area(geom)):,.2f} m² as drawn → {repaired.area:,.2f} m²")
    return repaired


def _multipolygon(geoms: list[shapely.Geometry]) -> shapely.MultiPolygon:
    union = shapely.union_all(geoms) if len(geoms) > 1 else geoms[0]
    parts = [p for p in shapely.get_parts(union) if p.geom_type == "Polygon"]
    return shapely.MultiPolygon(parts)


def _check_names(conn: Connection, drafts: list[_Draft]) -> None:
    """After the import no two districts may share a name (the parcel importer finds districts by name)."""
    final = {code: name for code, name in conn.execute(text("SELECT code, name FROM districts"))}
    final |= {d.code: d.name for d in drafts}
    owner: dict[str, str] = {}
    for code, name in sorted(final.items()):
        other = owner.setdefault(normalise(name), code)
        if other != code:
            raise InvalidInput(f"two districts would be named {name!r}: {other} and {code}", "name")


_STAGE_SQL = """
CREATE TEMP TABLE district_file (
    code text PRIMARY KEY,
    name text NOT NULL,
    features text NOT NULL,
    geom geometry NOT NULL,
    district_id integer,
    status text
) ON COMMIT DROP
"""


def _stage(conn: Connection, drafts: list[_Draft], srid: int) -> None:
    """The file's districts into a temporary table, where PostGIS does the rest."""
    conn.execute(text("DROP TABLE IF EXISTS district_file, district_moves"))
    conn.execute(text(_STAGE_SQL))
    conn.execute(
        text("INSERT INTO district_file (code, name, features, geom) "
             "VALUES (:code, :name, :features, ST_GeomFromWKB(:wkb, :srid))"),
        [{"code": d.code, "name": d.name, "features": ", ".join(map(str, d.rows)), "srid": srid,
          "wkb": shapely.to_wkb(_multipolygon(d.geoms))} for d in drafts],
    )


# The stored districts the file replaces are set aside first (MATERIALIZED): compared before being left out,
# each would cost an intersection test of two whole boundaries, for nothing.
_OVERLAPS_SQL = """
WITH kept AS MATERIALIZED (
    SELECT d.code, d.name, d.geom FROM districts d
    WHERE NOT EXISTS (SELECT FROM district_file f WHERE f.code = d.code)
)
SELECT a_code, a_name, a_features, b_code, b_name, b_features, m2
FROM (
    SELECT a.code AS a_code, a.name AS a_name, a.features AS a_features,
           b.code AS b_code, b.name AS b_name, b.features AS b_features,
           ST_Area(ST_Intersection(a.geom, b.geom)) AS m2
    FROM district_file a JOIN district_file b ON a.code < b.code AND ST_Intersects(a.geom, b.geom)
    UNION ALL
    SELECT a.code, a.name, a.features, k.code, k.name, NULL, ST_Area(ST_Intersection(a.geom, k.geom))
    FROM district_file a JOIN kept k ON ST_Intersects(a.geom, k.geom)
) pairs
WHERE m2 >= :tolerance
ORDER BY m2 DESC, a_code, b_code
"""


def _check_overlaps(conn: Connection) -> None:
    """InvalidInput naming every pair of districts that would overlap by the tolerance or more."""
    pairs = conn.execute(text(_OVERLAPS_SQL), {"tolerance": OVERLAP_TOLERANCE_M2}).mappings().all()
    if not pairs:
        return

    def side(code: str, name: str, rows: str | None) -> str:
        where = f"features {rows}" if rows is not None and "," in rows else (
            f"feature {rows}" if rows is not None else "stored, not in the file")
        return f"{code} ({name}; {where})"

    named = [f"{side(p['a_code'], p['a_name'], p['a_features'])} and {side(p['b_code'], p['b_name'], p['b_features'])}"
             f" overlap by {p['m2']:,.2f} m²" for p in pairs[:MAX_NAMED]]
    more = f"; and {len(pairs) - MAX_NAMED} more pairs" if len(pairs) > MAX_NAMED else ""
    raise InvalidInput(f"districts may not overlap (by {OVERLAP_TOLERANCE_M2:g} m² or more): {'; '.join(named)}"
                       f"{more}", "geometry")


def _classify(conn: Connection, report: DistrictImportReport) -> None:
    """created / updated / unchanged for each district of the file, and the ids of the new ones."""
    # The Hausdorff distance costs vertices × vertices (seconds for a city district): only for boundaries
    # whose bounding boxes agree within the tolerance, as those of an unchanged one must.
    conn.execute(text("""
        UPDATE district_file f SET district_id = d.id,
               status = CASE WHEN d.name <> f.name THEN 'updated'
                             WHEN d.geom = f.geom THEN 'unchanged'
                             WHEN greatest(abs(ST_XMin(d.geom) - ST_XMin(f.geom)),
                                           abs(ST_YMin(d.geom) - ST_YMin(f.geom)),
                                           abs(ST_XMax(d.geom) - ST_XMax(f.geom)),
                                           abs(ST_YMax(d.geom) - ST_YMax(f.geom))) > :tolerance THEN 'updated'
                             WHEN ST_HausdorffDistance(d.geom, f.geom) <= :tolerance THEN 'unchanged'
                             ELSE 'updated' END
        FROM districts d WHERE d.code = f.code
    """), {"tolerance": GEOMETRY_TOLERANCE_M})
    # New ids after the largest there is, in code order (the id is a plain integer key; the table is locked).
    conn.execute(text("""
        UPDATE district_file f SET status = 'created', district_id = n.id
        FROM (SELECT code, (SELECT coalesce(max(id), 0) FROM districts) + row_number() OVER (ORDER BY code) AS id
              FROM district_file WHERE district_id IS NULL) n
        WHERE f.code = n.code
    """))
    for status, code in conn.execute(text("SELECT status, code FROM district_file ORDER BY code")):
        getattr(report, status).append(code)


def _write_districts(conn: Connection) -> None:
    conn.execute(text("""
        UPDATE districts d SET name = f.name, geom = ST_Multi(f.geom)
        FROM district_file f WHERE f.district_id = d.id AND f.status = 'updated'
    """))
    conn.execute(text("""
        INSERT INTO districts (id, code, name, geom)
        SELECT district_id, code, name, ST_Multi(geom) FROM district_file WHERE status = 'created' ORDER BY district_id
    """))


# The parcels whose district may change: those in a changed district, and those touching the new boundary
# of a created or changed one (a parcel that touches neither keeps every overlap it had). Each gets the
# district it overlaps most. Districts drive the joins (few, each met by the parcels' GiST index), so
# PostGIS prepares each boundary once instead of once per parcel; ST_Covers spares the intersection where
# a parcel lies wholly inside.
_MOVES_SQL = """
CREATE TEMP TABLE district_moves ON COMMIT DROP AS
WITH changed AS (
    SELECT district_id AS id, geom FROM district_file WHERE status <> 'unchanged'
), affected AS (
    SELECT p.id FROM parcels p WHERE p.district_id IN (SELECT id FROM changed)
    UNION
    SELECT p.id FROM changed c JOIN parcels p ON ST_Intersects(c.geom, p.geom)
), shares AS (
    SELECT p.id, d.id AS district_id, d.code,
           CASE WHEN ST_Covers(d.geom, p.geom) THEN ST_Area(p.geom)
                ELSE ST_Area(ST_Intersection(d.geom, p.geom)) END AS m2
    FROM districts d JOIN parcels p ON ST_Intersects(d.geom, p.geom)
    WHERE p.id IN (SELECT id FROM affected)
), best AS (
    SELECT DISTINCT ON (id) id, district_id FROM shares WHERE m2 > 0 ORDER BY id, m2 DESC, code
)
SELECT p.id, p.code, p.district_id AS from_id, b.district_id AS to_id
FROM affected a JOIN parcels p ON p.id = a.id LEFT JOIN best b ON b.id = a.id
"""


def _reassign_parcels(conn: Connection, report: DistrictImportReport, actor: str, note: str) -> None:
    """Parcels to the district they overlap most: history events first (they read the old value), then one
    UPDATE; the report lists the moves and the parcels left outside every district."""
    conn.execute(text(_MOVES_SQL))
    params = {"actor": actor, "note": note}
    history.record_selected(conn, """
        SELECT id, :actor, 'attributes', NULL, NULL,
               jsonb_build_object('district_id', jsonb_build_object('from', from_id, 'to', to_id)), :note
        FROM district_moves WHERE to_id <> from_id
    """, params)
    conn.execute(text("""
        UPDATE parcels p SET district_id = m.to_id, version = p.version + 1, updated_at = now()
        FROM district_moves m WHERE p.id = m.id AND m.to_id <> m.from_id
    """))
    report.parcels_moved = [ParcelMove(*r) for r in conn.execute(text("""
        SELECT m.code, f.code, t.code
        FROM district_moves m JOIN districts f ON f.id = m.from_id JOIN districts t ON t.id = m.to_id
        WHERE m.to_id <> m.from_id ORDER BY m.code
    """))]
    report.parcels_outside = list(conn.execute(text(
        "SELECT code FROM district_moves WHERE to_id IS NULL ORDER BY code")).scalars())


# ---------------------------------------------------------------------------------------------
# List, rename, delete


def list_districts(conn: Connection, *, with_geometry: bool = False) -> list[dict[str, Any]]:
    """Every district by code: id, code, name, parcels in it, area in m² and mu (measured in the working CRS),
    and with ``with_geometry`` its boundary as a GeoJSON MultiPolygon in WGS 84."""
    geometry = ", ST_AsGeoJSON(ST_Transform(d.geom, 4326), 7) AS geometry" if with_geometry else ""
    rows = conn.execute(text(f"""
        SELECT d.id, d.code, d.name, ST_Area(d.geom) AS area_m2,
               (SELECT count(*) FROM parcels p WHERE p.district_id = d.id) AS parcels {geometry}
        FROM districts d ORDER BY d.code
    """)).mappings()
    out = []
    for r in rows:
        item = {"id": r["id"], "code": r["code"], "name": r["name"], "parcels": r["parcels"],
                "area_m2": round(r["area_m2"], 2), "area_mu": round(r["area_m2"] / SQM_PER_MU, 4)}
        if with_geometry:
            item["geometry"] = json.loads(r["geometry"])
        out.append(item)
    return out


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("a district's name cannot be blank", "name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"a district's name is at most {MAX_NAME_CHARS} characters", "name")
    return name


def rename_district(conn: Connection, code: str, name: str, actor: str) -> dict[str, Any]:
    """Give a district a new name (1-100 characters, not another district's). NotFound (404) for an unknown
    code, Conflict (409) for a name taken. Districts keep no history table: the rename is logged with
    ``actor``."""
    name = _check_name(name)
    row = conn.execute(text("SELECT id, name FROM districts WHERE code = :code FOR UPDATE"),
                       {"code": code}).first()
    if row is None:
        raise NotFound(f"no district with code {code!r}")
    for other_code, other_name in conn.execute(text("SELECT code, name FROM districts WHERE id <> :id"),
                                               {"id": row.id}):
        if normalise(other_name) == normalise(name):
            raise Conflict(f"district {other_code} is already named {other_name!r}", "name")
    conn.execute(text("UPDATE districts SET name = :name WHERE id = :id"), {"name": name, "id": row.id})
    log.info("district %s renamed from %r to %r by %s", code, row.name, name, actor)
    return next(d for d in list_districts(conn) if d["code"] == code)


def delete_district(conn: Connection, code: str) -> None:
    """Delete a district that nothing refers to. NotFound (404) for an unknown code; Conflict (409) while
    parcels lie in it, users edit it (district editors; users.district_ids) or compensation standards are set
    for it — the message says how many of each."""
    # FOR UPDATE first: a parcel being added to the district meanwhile holds a key-share lock on this row,
    # so the counts below are taken once it has committed (or rolled back), and none can be added after.
    row = conn.execute(text("SELECT id, name FROM districts WHERE code = :code FOR UPDATE"),
                       {"code": code}).first()
    if row is None:
        raise NotFound(f"no district with code {code!r}")
    parcels = conn.execute(text("SELECT count(*) FROM parcels WHERE district_id = :id"), {"id": row.id}).scalar_one()
    users = conn.execute(text("SELECT name FROM users WHERE :id = ANY(district_ids) ORDER BY name"),
                         {"id": row.id}).scalars().all()
    standards = conn.execute(text("SELECT count(*) FROM compensation_standards WHERE district_id = :id"),
                             {"id": row.id}).scalar_one()
    uses = []
    if parcels:
        uses.append(f"{parcels} parcels lie in it (re-import the districts or move the parcels first)")
    if users:
        uses.append(f"{len(users)} users edit it ({', '.join(users[:MAX_NAMED])})")
    if standards:
        uses.append(f"{standards} compensation standards are set for it")
    if uses:
        raise Conflict(f"district {code} ({row.name}) is still in use: {'; '.join(uses)}", "code")
    conn.execute(text("DELETE FROM districts WHERE id = :id"), {"id": row.id})


# Filters naming districts (blockers, exports, search): by code, name or id, and never an unknown one.
DISTRICT_REFS_SQL = "(d.code = ANY(:districts) OR d.name = ANY(:districts) OR CAST(d.id AS text) = ANY(:districts))"
_KNOWN_REFS = """
SELECT r FROM unnest(CAST(:refs AS text[])) AS r
WHERE NOT EXISTS (SELECT FROM districts d WHERE d.code = r OR d.name = r OR CAST(d.id AS text) = r)
"""


def check_districts(conn: Connection, refs: Sequence[str], where: str = "district") -> None:
    """Refuse a filter naming a district that does not exist (by code, name or id): a misspelt district would
    otherwise answer "nothing", which reads as "no parcels there"."""
    if not refs:
        return
    unknown = conn.execute(text(_KNOWN_REFS), {"refs": list(refs)}).scalars().first()
    if unknown is not None:
        names = ", ".join(conn.execute(text("SELECT code || ' ' || name FROM districts ORDER BY code")).scalars())
        raise InvalidInput(f"unknown district {unknown!r}; districts: {names}", where)
