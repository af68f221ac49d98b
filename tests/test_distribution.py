"""The schema against the rules the Citus plan (gis.domain.distribution, docs/scaling.md) relies on, read from
the migrated database's own catalogue: every table placed; every unique constraint of a distributed table
includes its distribution column; no foreign key from a reference table to a distributed one; foreign keys
between distributed tables join on their distribution columns."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gis.domain.distribution import DISTRIBUTED, DROPPED_ON_CITUS, REFERENCE, citus_setup_sql

NOT_OURS = {"alembic_version", "spatial_ref_sys"}


@pytest.fixture(scope="module")
def catalogue(engine):
    with engine.connect() as conn:
        tables = set(conn.execute(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')")).scalars()) - NOT_OURS
        uniques = conn.execute(text("""
            SELECT t.relname AS table, i.relname AS name,
                   array_agg(a.attname ORDER BY a.attname) FILTER (WHERE a.attname IS NOT NULL) AS columns
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey)
            WHERE n.nspname = current_schema() AND x.indisunique
            GROUP BY t.relname, i.relname""")).all()
        foreign = conn.execute(text("""
            SELECT c.conname AS name, t.relname AS table, r.relname AS referenced,
                   array(SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = ANY(c.conkey))
                       AS columns,
                   array(SELECT attname FROM pg_attribute WHERE attrelid = c.confrelid AND attnum = ANY(c.confkey))
                       AS referenced_columns
            FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = current_schema() AND c.contype = 'f'""")).all()
    return tables, uniques, foreign


def test_every_table_is_placed_once(catalogue):
    tables, _, _ = catalogue
    assert not set(DISTRIBUTED) & set(REFERENCE)
    assert tables == set(DISTRIBUTED) | set(REFERENCE), "place each new table in gis/domain/distribution.py"


def test_unique_constraints_of_distributed_tables_include_the_distribution_column(catalogue):
    _, uniques, _ = catalogue
    breaking = {u.name for u in uniques
                if u.table in DISTRIBUTED and DISTRIBUTED[u.table][0] not in (u.columns or [])}
    dropped = {name for name in DROPPED_ON_CITUS if not name.endswith("_fkey")}
    assert breaking == dropped  # an expression index has no plain columns: it breaks the rule too


def test_no_foreign_key_from_a_reference_table_to_a_distributed_one(catalogue):
    _, _, foreign = catalogue
    assert [f.name for f in foreign if f.table in REFERENCE and f.referenced in DISTRIBUTED] == []


def test_foreign_keys_between_distributed_tables_join_their_distribution_columns(catalogue):
    _, _, foreign = catalogue
    between = [f for f in foreign if f.table in DISTRIBUTED and f.referenced in DISTRIBUTED]
    assert between  # the children do point at the parcels: the rule below reads something
    kept = [f for f in between if f.name not in DROPPED_ON_CITUS]
    for f in kept:
        (column, group), (referenced_column, referenced_group) = DISTRIBUTED[f.table], DISTRIBUTED[f.referenced]
        pairs = dict(zip(f.columns, f.referenced_columns, strict=True))
        assert group == referenced_group and pairs.get(column) == referenced_column, f.name
    assert {f.name for f in between} - {f.name for f in kept} == {n for n in DROPPED_ON_CITUS if n.endswith("_fkey")}


def test_the_setup_statements_place_reference_tables_before_the_distributed_ones():
    statements = citus_setup_sql()
    first_distributed = next(i for i, s in enumerate(statements) if "create_distributed_table" in s)
    assert all("create_reference_table" not in s for s in statements[first_distributed:])
    assert sum("create_distributed_table" in s for s in statements) == len(DISTRIBUTED)
    for table, (_column, group) in DISTRIBUTED.items():
        (statement,) = [s for s in statements if f"create_distributed_table('{table}'," in s]
        assert (f"colocate_with => '{group}'" in statement) == (table != group), statement
