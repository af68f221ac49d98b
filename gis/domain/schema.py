"""The database's tables, declared once (SQLAlchemy Core with GeoAlchemy2 geometries).

The migrations stay hand-written; ``tests/test_schema.py`` compares the migrated database with ``metadata``
(Alembic's ``compare_metadata``) and fails on any drift, so a column added to a migration alone, or here alone,
is caught. Geometry columns take the working CRS, chosen when the database is created, hence ``metadata(srid)``.
A column's ``info`` carries what people see of it: ``label`` (Chinese) and ``personal`` (masked for roles that
may not see personal data, never logged); and ``limits`` (``gis.domain.limits.Limit``), the bounds every value must
keep,
which the API's models, the importer and the database's CHECK constraints all take from here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP

from gis.domain.limits import (
    AREA_M2,
    AREA_MU,
    CORRIDOR_WIDTH_M,
    DAY,
    MAX_YUAN,
    NOTE,
    PAST_DAY,
    PERSON_TEXT,
    YUAN,
    Limit,
)
from gis.domain.stages import ALL_STAGES, KIND_LABELS_ZH, STAGE_LABELS_ZH, STAGES
from gis.domain.workflow import DATE_COLUMNS

NOW = text("now()")
CODE = Limit(max_length=64)  # a parcel's code (不动产单元号 are 28 characters)
HOUSEHOLDS = Limit(ge=0, le=10_000)  # households on one parcel: a large estate has a few thousand
RATE = Limit(ge=0, le=MAX_YUAN)
TZ = TIMESTAMP(timezone=True)


def _geom(kind: str, srid: int) -> Geometry:
    # Spatial indexes are declared by name below, as the migrations name them.
    return Geometry(kind, srid=srid, spatial_index=False)


def _personal(label: str, limits: Limit) -> dict[str, object]:
    return {"label": label, "personal": True, "limits": limits}


# A parcel's fields by what an edit does with them (gis.records.parcels, the importer, the demo city): the facts
# recorded about it, and the flags an editor sets; its stage, stage dates, key and geometry are handled apart.
PARCEL_ATTRIBUTES = ("kind", "district_id", "owner_name", "owner_id_number", "owner_phone", "households",
                     "floor_area_m2", "land_area_mu")
PARCEL_FLAGS = ("holdout", "legacy", "holdout_note")


@cache
def metadata(srid: int) -> MetaData:
    """Every table of the service, with geometries in ``srid`` (the working CRS)."""
    md = MetaData()
    Table("dataset_notes", md, Column("key", Text, primary_key=True), Column("value", JSONB, nullable=False))
    Table(
        "districts", md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("code", Text, nullable=False, unique=True, info={"label": "片区代码"}),
        Column("name", Text, nullable=False, info={"label": "片区"}),
        Column("geom", _geom("MULTIPOLYGON", srid), nullable=False),
        Index("districts_geom_idx", "geom", postgresql_using="gist"),
    )
    Table("document_requirements", md, Column("stage", Text, primary_key=True), Column("kind", Text, primary_key=True))
    Table(
        "imagery_layers", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("name", Text, nullable=False),
        Column("kind", Text, nullable=False),
        Column("acquired_on", Date, nullable=False),
        Column("path", Text, nullable=False, unique=True),
        Column("crs", Text, nullable=False),
        Column("width", Integer, nullable=False),
        Column("height", Integer, nullable=False),
        Column("band_count", Integer, nullable=False),
        Column("dtype", Text, nullable=False),
        Column("nodata", Double),
        Column("resolution", ARRAY(Double), nullable=False),
        Column("value_range", ARRAY(Double)),
        Column("is_cog", Boolean, nullable=False),
        Column("size_bytes", BigInteger, nullable=False),
        Column("min_zoom", Integer, nullable=False),
        Column("max_zoom", Integer, nullable=False),
        Column("attribution", Text),
        Column("registered_at", TZ, nullable=False, server_default=NOW),
        Column("footprint", _geom("MULTIPOLYGON", srid), nullable=False),
        Index("imagery_layers_kind_idx", "kind", "acquired_on"),
        Index("imagery_layers_footprint_idx", "footprint", postgresql_using="gist"),
    )
    Table(
        "import_profiles", md,
        Column("name", Text, primary_key=True),
        Column("description", Text),
        Column("mapping", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("defaults", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("crs", Integer),
        Column("options", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", TZ, nullable=False, server_default=NOW),
        Column("updated_at", TZ, nullable=False, server_default=NOW),
    )
    Table(
        "projects", md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("code", Text, nullable=False, unique=True, info={"label": "项目编号"}),
        Column("name", Text, nullable=False, info={"label": "项目名称", "limits": Limit(max_length=100)}),
        Column("kind", Text, nullable=False, info={"label": "项目类型"}),
        Column("centerline", _geom("MULTILINESTRING", srid)),
        Column("corridor_width_m", Double, info={"label": "中线宽度（米）", "limits": CORRIDOR_WIDTH_M}),
        Column("boundary", _geom("MULTIPOLYGON", srid)),
        Column("footprint", _geom("MULTIPOLYGON", srid), nullable=False),
        Column("freeze_date", Date, info={"label": "冻结日期", "limits": DAY}),
        Column("deadline", Date, info={"label": "完成节点", "limits": DAY}),
        Column("revision", Integer, nullable=False, server_default=text("1")),
        Column("archived_at", TZ),
        Column("archived_by", Text),
        Index("projects_footprint_idx", "footprint", postgresql_using="gist"),
    )
    Table(
        "users", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("name", Text, nullable=False, unique=True),
        Column("role", Text, nullable=False),
        Column("district_ids", ARRAY(Integer), nullable=False, server_default=text("'{}'::integer[]")),
        Column("password_hash", Text),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        Column("created_at", TZ, nullable=False, server_default=NOW),
    )
    Table(
        "auth_tokens", md,
        Column("token_hash", Text, primary_key=True),
        Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        Column("kind", Text, nullable=False),
        Column("created_at", TZ, nullable=False, server_default=NOW),
        Column("expires_at", TZ),
        Index("auth_tokens_user_idx", "user_id"),
    )
    Table(
        "login_attempts", md,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("at", TZ, nullable=False, server_default=NOW),
        Column("user_name", Text, nullable=False),
        Column("address", Text),
        Column("success", Boolean, nullable=False),
        Column("locked", Boolean, nullable=False, server_default=text("false")),
        Index("login_attempts_user_idx", "user_name", "at"),
        Index("login_attempts_address_idx", "address", "at"),
        Index("login_attempts_at_idx", "at"),
    )
    Table(
        "compensation_standards", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("district_id", Integer, ForeignKey("districts.id"), nullable=False),
        Column("kind", Text, nullable=False),
        Column("unit", Text, nullable=False),
        Column("rate_yuan", Numeric(14, 2), nullable=False),
        Column("valid_from", Date, nullable=False),
        Column("item", Text, nullable=False),
        Column("note", Text),
        Column("recorded_by", Text),
        Column("recorded_at", TZ, nullable=False, server_default=NOW),
        UniqueConstraint("district_id", "kind", "item", "valid_from", name="compensation_standards_key"),
    )
    Table(
        "targets", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("district_id", Integer, ForeignKey("districts.id", ondelete="CASCADE"), nullable=False),
        Column("year", Integer, nullable=False),
        Column("quarter", Integer),
        Column("project_id", Integer, ForeignKey("projects.id")),
        Column("house_m2", Numeric(12, 2)),
        Column("land_mu", Numeric(12, 4)),
        Column("parcels", Integer),
        Column("recorded_by", Text),
        Column("recorded_at", TZ, nullable=False, server_default=NOW),
        UniqueConstraint("district_id", "year", "quarter", "project_id", name="targets_key",
                         postgresql_nulls_not_distinct=True),
    )
    Table(
        "parcels", md,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("code", Text, nullable=False, unique=True, info={"label": "地块编号", "limits": CODE}),
        Column("kind", Text, nullable=False, info={"label": "类型"}),
        Column("district_id", Integer, ForeignKey("districts.id"), nullable=False),
        Column("owner_name", Text, info=_personal("权利人", PERSON_TEXT)),
        Column("owner_id_number", Text, info=_personal("身份证号", PERSON_TEXT)),
        Column("owner_phone", Text, info=_personal("联系电话", PERSON_TEXT)),
        Column("households", Integer, nullable=False, server_default=text("1"),
               info={"label": "户数", "limits": HOUSEHOLDS}),
        Column("floor_area_m2", Double, info={"label": "房屋面积（㎡）", "limits": AREA_M2}),
        Column("land_area_mu", Double, info={"label": "土地面积（亩）", "limits": AREA_MU}),
        Column("stage", Text, nullable=False, server_default=text("'surveyed'::text"), info={"label": "阶段"}),
        Column("stage_since", Date, info={"label": "本阶段起始日", "limits": PAST_DAY}),
        Column("holdout", Boolean, nullable=False, server_default=text("false"), info={"label": "钉子户"}),
        Column("legacy", Boolean, nullable=False, server_default=text("false"), info={"label": "历史遗留"}),
        Column("holdout_note", Text, info={"label": "备注", "limits": NOTE}),
        *(Column(column, Date, info={"limits": PAST_DAY}) for column in DATE_COLUMNS.values()),
        Column("version", Integer, nullable=False, server_default=text("1")),
        Column("updated_at", TZ, nullable=False, server_default=NOW),
        Column("geom", _geom("MULTIPOLYGON", srid), nullable=False),
        Index("parcels_district_idx", "district_id"),
        Index("parcels_stage_idx", "stage"),
        Index("parcels_geom_idx", "geom", postgresql_using="gist"),
    )
    Table(
        "project_revisions", md,
        Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
        Column("revision", Integer, primary_key=True, autoincrement=False),
        Column("effective_from", Date, nullable=False, info={"limits": DAY}),
        Column("centerline", _geom("MULTILINESTRING", srid)),
        Column("corridor_width_m", Double, info={"limits": CORRIDOR_WIDTH_M}),
        Column("boundary", _geom("MULTIPOLYGON", srid)),
        Column("footprint", _geom("MULTIPOLYGON", srid), nullable=False),
        Column("created_by", Text, nullable=False),
        Column("created_at", TZ, nullable=False, server_default=NOW),
        Column("note", Text, info={"limits": NOTE}),
    )
    Table(
        "documents", md,
        Column("parcel_id", BigInteger, ForeignKey("parcels.id"), nullable=False),
        Column("id", BigInteger, Identity(always=True), nullable=False),
        Column("kind", Text, nullable=False),
        Column("filename", Text, nullable=False, info={"limits": Limit(max_length=255)}),
        Column("sha256", Text, nullable=False),
        Column("size_bytes", BigInteger, nullable=False),
        Column("storage_path", Text),
        Column("uploaded_by", Text, nullable=False),
        Column("uploaded_at", TZ, nullable=False, server_default=NOW),
        PrimaryKeyConstraint("parcel_id", "id"),
    )
    Table(
        "parcel_events", md,
        Column("parcel_id", BigInteger, ForeignKey("parcels.id"), nullable=False),
        Column("id", BigInteger, Identity(always=True), nullable=False),
        Column("at", TZ, nullable=False, server_default=NOW),
        Column("actor", Text, nullable=False),
        Column("kind", Text, nullable=False),
        Column("stage_from", Text),
        Column("stage_to", Text),
        Column("changes", JSONB),
        Column("note", Text),
        PrimaryKeyConstraint("parcel_id", "id"),
        Index("parcel_events_stage_idx", "parcel_id", "at", postgresql_where=text("stage_to IS NOT NULL")),
    )
    Table(
        "payments", md,
        Column("parcel_id", BigInteger, ForeignKey("parcels.id"), nullable=False),
        Column("id", BigInteger, Identity(always=True), nullable=False),
        Column("project_id", Integer, ForeignKey("projects.id")),
        Column("paid_on", Date, nullable=False, info={"limits": PAST_DAY}),
        Column("amount_yuan", Numeric(14, 2), nullable=False, info={"limits": YUAN}),
        Column("item", Text, nullable=False),
        Column("basis_area", Double, info={"limits": AREA_M2}),
        Column("basis_unit", Text),
        Column("rate_yuan", Numeric(14, 2), info={"limits": RATE}),
        Column("note", Text, info={"limits": NOTE}),
        Column("created_at", TZ, nullable=False, server_default=NOW),
        Column("recorded_by", Text),
        PrimaryKeyConstraint("parcel_id", "id"),
    )
    Table(
        "project_parcel_overlaps", md,
        Column("parcel_id", BigInteger, ForeignKey("parcels.id", ondelete="CASCADE"), primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
        Column("overlap_m2", Double, nullable=False),
        Column("share", Double, nullable=False),
        Column("computed_at", TZ, nullable=False, server_default=NOW),
        Index("project_parcel_overlaps_project_idx", "project_id", "overlap_m2"),
    )
    Table(
        "revision_parcel_overlaps", md,
        Column("parcel_id", BigInteger, ForeignKey("parcels.id", ondelete="CASCADE"), primary_key=True),
        Column("project_id", Integer, primary_key=True),
        Column("revision", Integer, primary_key=True),
        Column("overlap_m2", Double, nullable=False),
        Column("share", Double, nullable=False),
        ForeignKeyConstraint(["project_id", "revision"],
                             ["project_revisions.project_id", "project_revisions.revision"]),
        Index("revision_parcel_overlaps_revision_idx", "project_id", "revision"),
    )
    # Raised by a statement trigger on each table the tiles draw (migration 0018); gis.maps.tile_cache reads it.
    Table("tile_versions", md, Column("source", Text, primary_key=True),
          Column("version", BigInteger, nullable=False, server_default=text("0")))
    return md


def personal_columns(table: str = "parcels") -> tuple[str, ...]:
    """The columns of ``table`` holding personal data (``info["personal"]``); the same in any working CRS."""
    return tuple(c.name for c in metadata(4326).tables[table].columns if c.info.get("personal"))


def labels(table: str = "parcels") -> dict[str, Any]:
    """The words people read, for clients that draw their own tables and maps (notebooks, desktop GIS): the
    stages in workflow order with their Chinese labels, the parcel kinds, and ``table``'s columns with their
    labels and whether they hold personal data."""
    return {
        "stages": [{"code": s, "label": STAGE_LABELS_ZH[s], "dispute": s not in STAGES} for s in ALL_STAGES],
        "kinds": [{"code": k, "label": v} for k, v in KIND_LABELS_ZH.items()],
        "columns": [{"name": c.name, "label": c.info["label"], "personal": bool(c.info.get("personal"))}
                    for c in metadata(4326).tables[table].columns if "label" in c.info],
    }
