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
    Computed,
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
FLOORS = Limit(ge=1, le=100)  # a building's floors, a flat's floor
PRICE_YUAN = Limit(ge=0, le=1_000_000)  # a price per m², a monthly fee
PAID_YUAN = Limit(gt=0, le=1_000_000)  # one month's transitional fee
DIFFERENCE_YUAN = Limit(ge=-MAX_YUAN, le=MAX_YUAN)  # a price difference, paid either way
ORDER = Limit(ge=1, le=1_000_000)  # a place in a queue
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
        Column("grade", Text, nullable=False, server_default=text("''::text")),
        Column("sign_by", Date),
        UniqueConstraint("district_id", "kind", "item", "grade", "valid_from", name="compensation_standards_key"),
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
    _units_and_dispatch(md, srid)
    Table(
        # 亮底征收: the days a project's compensation was published (gis.records.disclosures; migration 0013).
        "compensation_disclosures", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
        Column("published_on", Date, nullable=False, info={"label": "公示日期", "limits": PAST_DAY}),
        Column("note", Text, info={"label": "说明", "limits": NOTE}),
        Column("recorded_by", Text, nullable=False),
        Column("recorded_at", TZ, nullable=False, server_default=NOW),
        UniqueConstraint("project_id", "published_on", name="compensation_disclosures_key"),
    )
    Table(
        "findings", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("check_name", Text, nullable=False, info={"label": "核查项"}),
        Column("check_params", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("parcel_id", BigInteger, ForeignKey("parcels.id"), nullable=False),
        Column("district_id", Integer, ForeignKey("districts.id"), nullable=False),
        Column("unit_code", Text, ForeignKey("assisting_units.code", onupdate="CASCADE"), info={"label": "责任单位"}),
        Column("summary", Text, info={"label": "问题摘要"}),
        Column("detail", JSONB),
        Column("deadline", Date, nullable=False, info={"label": "整改期限"}),
        Column("status", Text, nullable=False, server_default=text("'open'::text"), info={"label": "状态"}),
        Column("note", Text, info={"label": "备注"}),
        Column("created_by", Text, nullable=False),
        Column("created_at", TZ, nullable=False, server_default=NOW),
        Column("updated_at", TZ, nullable=False, server_default=NOW),
        Index("findings_district_idx", "district_id", "status"),
        Index("findings_parcel_idx", "parcel_id"),
    )
    Table(
        "finding_events", md,
        Column("finding_id", Integer, ForeignKey("findings.id"), nullable=False),
        Column("id", BigInteger, Identity(always=True), nullable=False),
        Column("at", TZ, nullable=False, server_default=NOW),
        Column("actor", Text, nullable=False),
        Column("kind", Text, nullable=False),
        Column("status_from", Text),
        Column("status_to", Text),
        Column("changes", JSONB),
        Column("note", Text),
        PrimaryKeyConstraint("finding_id", "id"),
    )
    Table(
        "finding_documents", md,
        Column("finding_id", Integer, ForeignKey("findings.id"), nullable=False),
        Column("id", BigInteger, Identity(always=True), nullable=False),
        Column("filename", Text, nullable=False),
        Column("sha256", Text, nullable=False),
        Column("size_bytes", BigInteger, nullable=False),
        Column("storage_path", Text),
        Column("uploaded_by", Text, nullable=False),
        Column("uploaded_at", TZ, nullable=False, server_default=NOW),
        PrimaryKeyConstraint("finding_id", "id"),
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
        # The box's centre in Web Mercator, by which the low-zoom tiles count a parcel (migration 0021).
        Column("centre_3857", _geom("POINT", 3857), Computed(
            "ST_Transform(ST_SetSRID(ST_MakePoint((ST_XMin(geom) + ST_XMax(geom)) / 2, "
            "(ST_YMin(geom) + ST_YMax(geom)) / 2), ST_SRID(geom)), 3857)", persisted=True)),
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
    # The survey facts itemised compensation needs (gis.records.surveys; bounds in gis.domain.compensation, kept by
    # migration 0014's named CHECK constraints).
    Table(
        "parcel_surveys", md,
        Column("parcel_id", BigInteger, ForeignKey("parcels.id", ondelete="CASCADE"), primary_key=True),
        Column("structure", Text, info={"label": "房屋结构"}),
        Column("decoration", Text, info={"label": "装修等级"}),
        Column("business_area_m2", Double, info={"label": "经营面积（㎡）"}),
        Column("transition_months", Integer, info={"label": "过渡期（月）"}),
        Column("recorded_by", Text),
        Column("recorded_at", TZ, nullable=False, server_default=NOW),
    )
    Table(
        "parcel_survey_counts", md,
        Column("parcel_id", BigInteger, ForeignKey("parcels.id", ondelete="CASCADE"), primary_key=True),
        Column("item", Text, primary_key=True, info={"label": "补偿科目"}),
        Column("grade", Text, primary_key=True, info={"label": "种类"}),
        Column("quantity", Numeric(14, 2), nullable=False, info={"label": "数量"}),
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
    _resettlement_tables(md)
    # Raised by the statement triggers on each table the tiles draw (migrations 0018, 0020), which log each writing
    # statement's version and the box it wrote in (tile_edits); gis.maps.tile_cache reads both. ``base``: the
    # version of a tile no logged edit meets.
    Table("tile_versions", md, Column("source", Text, primary_key=True),
          Column("version", BigInteger, nullable=False, server_default=text("0")),
          Column("base", BigInteger, nullable=False, server_default=text("0")))
    Table(
        "tile_edits", md,
        Column("version", BigInteger, nullable=False),
        Column("source", Text, ForeignKey("tile_versions.source"), nullable=False),
        Column("extent", _geom("POLYGON", srid), nullable=False),
        PrimaryKeyConstraint("source", "version"),
        Index("tile_edits_extent_idx", "extent", postgresql_using="gist"),
    )
    return md


def _resettlement_tables(md: MetaData) -> None:
    """Resettlement (安置) and cleared land's supply (migration 0017 writes the bounds' CHECKs)."""
    def recorded() -> tuple[Column, Column]:
        return Column("recorded_by", Text), Column("recorded_at", TZ, nullable=False, server_default=NOW)

    Table(
        "resettlement_estates", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("code", Text, nullable=False, unique=True, info={"label": "安置小区编号", "limits": CODE}),
        Column("name", Text, nullable=False, info={"label": "安置小区", "limits": Limit(max_length=100)}),
        Column("district_id", Integer, ForeignKey("districts.id"), nullable=False),
        *recorded(),
    )
    Table(
        "resettlement_buildings", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("estate_id", Integer, ForeignKey("resettlement_estates.id"), nullable=False),
        Column("name", Text, nullable=False, info={"label": "楼栋", "limits": Limit(max_length=40)}),
        Column("floors", Integer, nullable=False, info={"label": "层数", "limits": FLOORS}),
        UniqueConstraint("estate_id", "name", name="resettlement_buildings_key"),
    )
    Table(
        "resettlement_flats", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("building_id", Integer, ForeignKey("resettlement_buildings.id"), nullable=False),
        Column("number", Text, nullable=False, info={"label": "房号", "limits": Limit(max_length=20)}),
        Column("floor", Integer, nullable=False, info={"label": "楼层", "limits": FLOORS}),
        Column("area_m2", Numeric(8, 2), nullable=False, info={"label": "面积（㎡）", "limits": Limit(gt=0, le=1000)}),
        Column("unit_price_yuan", Numeric(12, 2), nullable=False,
               info={"label": "结算单价（元/㎡）", "limits": PRICE_YUAN}),
        UniqueConstraint("building_id", "number", name="resettlement_flats_key"),
    )
    Table(
        "resettlement_households", md,
        Column("parcel_id", BigInteger, ForeignKey("parcels.id"), primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id")),
        Column("choice", Text, nullable=False, info={"label": "安置方式"}),
        Column("agreement_on", Date, nullable=False, info={"label": "协议日期", "limits": PAST_DAY}),
        Column("old_value_yuan", Numeric(14, 2), info={"label": "被征收房屋价值（元）", "limits": RATE}),
        Column("transition_from", Date, info={"label": "过渡起始日", "limits": PAST_DAY}),
        Column("promised_months", Integer, info={"label": "约定过渡期（月）", "limits": Limit(ge=1, le=120)}),
        Column("monthly_fee_yuan", Numeric(12, 2), info={"label": "临时安置费（元/月）", "limits": PRICE_YUAN}),
        Column("keys_on", Date, info={"label": "交房日期", "limits": PAST_DAY}),
        Column("note", Text, info={"label": "备注", "limits": NOTE}),
        *recorded(),
        Index("resettlement_households_project_idx", "project_id", "agreement_on"),
    )
    Table(
        "resettlement_allocations", md,
        Column("parcel_id", BigInteger, ForeignKey("resettlement_households.parcel_id"), nullable=False),
        Column("id", BigInteger, Identity(), nullable=False),
        Column("flat_id", Integer, ForeignKey("resettlement_flats.id"), nullable=False),
        Column("selection_order", Integer, nullable=False, info={"label": "选房顺序号", "limits": ORDER}),
        Column("selected_on", Date, nullable=False, info={"label": "选房日期", "limits": PAST_DAY}),
        Column("settled_on", Date, info={"label": "差价结算日期", "limits": PAST_DAY}),
        Column("difference_yuan", Numeric(14, 2), info={"label": "结算差价（元）", "limits": DIFFERENCE_YUAN}),
        Column("cancelled_on", Date, info={"label": "撤销日期", "limits": PAST_DAY}),
        *recorded(),
        PrimaryKeyConstraint("parcel_id", "id"),
        # One active allocation per flat and per household: a flat allocated twice is refused here.
        Index("resettlement_allocations_flat_active", "flat_id", unique=True,
              postgresql_where=text("cancelled_on IS NULL")),
        Index("resettlement_allocations_household_active", "parcel_id", unique=True,
              postgresql_where=text("cancelled_on IS NULL")),
    )
    Table(
        "transition_payments", md,
        Column("parcel_id", BigInteger, ForeignKey("resettlement_households.parcel_id"), primary_key=True),
        Column("month_no", Integer, primary_key=True, autoincrement=False,
               info={"label": "过渡月份", "limits": Limit(ge=1, le=1200)}),
        Column("paid_on", Date, nullable=False, info={"label": "发放日期", "limits": PAST_DAY}),
        Column("amount_yuan", Numeric(12, 2), nullable=False, info={"label": "金额（元）", "limits": PAID_YUAN}),
        *recorded(),
    )
    Table(
        "land_supply", md,
        Column("parcel_id", BigInteger, ForeignKey("parcels.id"), primary_key=True),
        Column("method", Text, nullable=False, info={"label": "供地方式"}),
        Column("supplied_on", Date, nullable=False, info={"label": "供地日期", "limits": PAST_DAY}),
        Column("receiving_project", Text, nullable=False, info={"label": "受让项目", "limits": Limit(max_length=100)}),
        Column("note", Text, info={"label": "备注", "limits": NOTE}),
        *recorded(),
    )


def _units_and_dispatch(md: MetaData, srid: int) -> None:
    """Assisting units, their staff and assignments; command posts, their visits and duty days (migration 0011).
    Their bounds are CHECK constraints written by that migration from gis.records.units and gis.records.dispatch."""
    Table(
        "assisting_units", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("code", Text, nullable=False, unique=True, info={"label": "单位代码"}),
        Column("name", Text, nullable=False, info={"label": "协保单位"}),
        Column("recorded_by", Text),
        Column("recorded_at", TZ, nullable=False, server_default=NOW),
    )
    Table(
        "unit_staff", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("unit_id", Integer, ForeignKey("assisting_units.id", ondelete="CASCADE"), nullable=False),
        Column("name", Text, nullable=False, info={"label": "协保人员", "personal": True}),
        Column("phone", Text, info={"label": "联系电话", "personal": True}),
        Column("title", Text, info={"label": "职务"}),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        Column("recorded_at", TZ, nullable=False, server_default=NOW),
        UniqueConstraint("unit_id", "name", name="unit_staff_key"),
    )
    Table(
        "unit_assignments", md,
        Column("parcel_id", BigInteger, ForeignKey("parcels.id", ondelete="CASCADE"), nullable=False),
        Column("id", BigInteger, Identity(always=True), nullable=False),
        Column("unit_id", Integer, ForeignKey("assisting_units.id"), nullable=False),
        Column("staff_id", Integer, ForeignKey("unit_staff.id")),
        Column("assigned_on", Date, nullable=False, info={"label": "分配日期"}),
        Column("ended_on", Date, info={"label": "调整日期"}),
        Column("assigned_by", Text, nullable=False),
        Column("note", Text, info={"label": "备注"}),
        Column("recorded_at", TZ, nullable=False, server_default=NOW),
        PrimaryKeyConstraint("parcel_id", "id"),
        Index("unit_assignments_open_idx", "parcel_id", unique=True, postgresql_where=text("ended_on IS NULL")),
        Index("unit_assignments_unit_idx", "unit_id", "assigned_on"),
    )
    Table(
        "command_posts", md,
        Column("id", Integer, Identity(), primary_key=True),
        Column("district_id", Integer, ForeignKey("districts.id", ondelete="CASCADE"), nullable=False, unique=True),
        Column("name", Text, nullable=False, info={"label": "指挥分部"}),
        Column("commander", Text, nullable=False, info={"label": "指挥长", "personal": True}),
        Column("deputies", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]"),
               info={"label": "副指挥长", "personal": True}),
        Column("established_on", Date, nullable=False, info={"label": "成立日期"}),
        Column("geom", _geom("POINT", srid), nullable=False),
        Column("recorded_at", TZ, nullable=False, server_default=NOW),
    )
    Table(
        "frontline_visits", md,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("post_id", Integer, ForeignKey("command_posts.id", ondelete="CASCADE"), nullable=False),
        Column("visited_on", Date, nullable=False, info={"label": "调度日期"}),
        Column("leader", Text, nullable=False, info={"label": "带队领导", "personal": True}),
        Column("leader_role", Text, nullable=False, info={"label": "职务"}),
        Column("attendees", Text, info={"label": "参加人员", "personal": True}),
        Column("place", Text, info={"label": "地点"}),
        Column("geom", _geom("POINT", srid), nullable=False),
        Column("problems", Text, info={"label": "发现问题"}),
        Column("decisions", Text, info={"label": "议定事项"}),
        Column("follow_up", Text, info={"label": "跟踪落实"}),
        Column("recorded_by", Text, nullable=False),
        Column("recorded_at", TZ, nullable=False, server_default=NOW),
        Index("frontline_visits_post_idx", "post_id", "visited_on"),
    )
    Table(
        "duty_days", md,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("post_id", Integer, ForeignKey("command_posts.id", ondelete="CASCADE"), nullable=False),
        Column("duty_on", Date, nullable=False, info={"label": "值班日期"}),
        Column("person", Text, nullable=False, info={"label": "现场办公人员", "personal": True}),
        Column("note", Text, info={"label": "备注"}),
        Column("recorded_by", Text, nullable=False),
        Column("recorded_at", TZ, nullable=False, server_default=NOW),
        UniqueConstraint("post_id", "duty_on", "person", name="duty_days_key"),
    )


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
