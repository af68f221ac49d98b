"""How the schema spreads over a distributed PostgreSQL (Citus), stated once: the plan ``docs/scaling.md``
explains, and the rules ``tests/test_distribution.py`` checks the migrated schema against.

A parcel and everything hung on it (history, payments, documents, footprint overlaps) live on one shard,
distributed by the parcel id and colocated, so a parcel's card, its history and a write with its event are
single-shard (router) queries. The small, slowly changing tables every query joins (districts, projects,
standards, users) are reference tables, copied to every node.
"""

from __future__ import annotations

# Distributed tables and their distribution column; all in one colocation group (the parcel id, bigint).
DISTRIBUTED: dict[str, str] = {
    "parcels": "id",
    "parcel_events": "parcel_id",
    "payments": "parcel_id",
    "documents": "parcel_id",
    "project_parcel_overlaps": "parcel_id",
    "revision_parcel_overlaps": "parcel_id",
    "unit_assignments": "parcel_id",
    "resettlement_households": "parcel_id",
    "resettlement_allocations": "parcel_id",
    "transition_payments": "parcel_id",
    "land_supply": "parcel_id",
}

# Reference tables: replicated to every node, so any shard joins them locally.
REFERENCE: tuple[str, ...] = (
    "dataset_notes", "districts", "document_requirements", "imagery_layers", "import_profiles", "projects",
    "project_revisions", "users", "auth_tokens", "login_attempts", "compensation_standards", "targets",
    "assisting_units", "unit_staff", "command_posts", "frontline_visits", "duty_days",
    "compensation_disclosures", "resettlement_estates", "resettlement_buildings", "resettlement_flats",
)

# Unique constraints a distributed table cannot keep on Citus (a shard can only check its own rows): the statement
# that drops each, and what keeps the rule there instead.
DROPPED_ON_CITUS: dict[str, tuple[str, str]] = {
    "parcels_code_key": (
        "ALTER TABLE parcels DROP CONSTRAINT parcels_code_key",
        "parcel codes stay unique through the importer, which upserts by code under its table lock "
        "(gis.records.importer), the only writer that creates parcels"),
    "resettlement_allocations_flat_active": (
        "DROP INDEX resettlement_allocations_flat_active",
        "an allocation first locks its flat's row (resettlement_flats, a reference table) and looks for an active "
        "allocation (gis.records.resettlement); the check 一房多配 finds any that slip through"),
}


def citus_setup_sql() -> list[str]:
    """The statements that distribute a migrated database on a Citus coordinator, in an order Citus accepts:
    the exceptions dropped, reference tables first (foreign keys point at them), then the parcels, then the
    tables colocated with them."""
    statements = [drop for drop, _why in DROPPED_ON_CITUS.values()]
    statements += [f"SELECT create_reference_table('{table}')" for table in REFERENCE]
    anchor = next(iter(DISTRIBUTED))
    for table, column in DISTRIBUTED.items():
        colocate = "" if table == anchor else f", colocate_with => '{anchor}'"
        statements.append(f"SELECT create_distributed_table('{table}', '{column}'{colocate})")
    return statements
