"""The migrated database is the schema declared in ``gis.domain.schema``: Alembic's comparison finds no drift, and
finds it when a migration adds a column the declaration lacks."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from gis.domain.schema import metadata, personal_columns

NOT_OURS = {"spatial_ref_sys", "alembic_version"}  # PostGIS's own table and Alembic's


def _include(_obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
    return not (type_ == "table" and name in NOT_OURS)


def _drift(conn: Connection, srid: int) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"include_object": _include, "compare_type": True,
                                                     "compare_server_default": True})
    # Alembic only warns where a generated column's expression differs (or the column is not generated): an error.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return compare_metadata(context, metadata(srid))


def test_the_migrated_database_is_the_declared_schema(settings, engine):
    with engine.connect() as conn:
        assert _drift(conn, settings.srid) == []


def test_a_column_added_by_a_migration_alone_is_drift(settings, engine):
    with engine.connect() as conn, conn.begin() as tx:
        conn.execute(text("ALTER TABLE parcels ADD COLUMN resettlement_note text"))
        drift = _drift(conn, settings.srid)
        tx.rollback()
    assert [(d[0], d[2], d[3].name) for d in drift] == [("remove_column", "parcels", "resettlement_note")]


def test_a_generated_column_made_plain_is_drift(settings, engine):
    with engine.connect() as conn, conn.begin() as tx:
        conn.execute(text("ALTER TABLE parcels ALTER COLUMN centre_3857 DROP EXPRESSION"))
        with pytest.raises(UserWarning, match="centre_3857"):
            _drift(conn, settings.srid)
        tx.rollback()


def test_a_geometry_in_another_crs_is_drift(settings, engine):
    with engine.connect() as conn:
        assert [d[0][0] for d in _drift(conn, 4326) if isinstance(d, list)][:1] == ["modify_type"]


def test_personal_data_is_marked_in_the_schema():
    assert personal_columns() == ("owner_name", "owner_id_number", "owner_phone")
