"""How the schema spreads over a distributed PostgreSQL (Citus), stated once: the plan ``docs/scaling.md``
explains, and the rules ``tests/test_distribution.py`` checks the migrated schema against.

A parcel and everything hung on it (history, payments, documents, footprint overlaps) live on one shard,
distributed by the parcel id and colocated, so a parcel's card, its history and a write with its event are
single-shard (router) queries. The small, slowly changing tables every query joins (districts, projects,
standards, users) are reference tables, copied to every node.
"""

from __future__ import annotations

# Distributed tables: their distribution column and the table they are colocated with. Two groups: a parcel and
# everything hung on it, by the parcel id (bigint); an inspector's finding with its history and evidence, by the
# finding's id.
DISTRIBUTED: dict[str, tuple[str, str]] = {
    "parcels": ("id", "parcels"),
    "parcel_events": ("parcel_id", "parcels"),
    "payments": ("parcel_id", "parcels"),
    "documents": ("parcel_id", "parcels"),
    "project_parcel_overlaps": ("parcel_id", "parcels"),
    "revision_parcel_overlaps": ("parcel_id", "parcels"),
    "unit_assignments": ("parcel_id", "parcels"),
    "resettlement_households": ("parcel_id", "parcels"),
    "resettlement_allocations": ("parcel_id", "parcels"),
    "transition_payments": ("parcel_id", "parcels"),
    "land_supply": ("parcel_id", "parcels"),
    "parcel_surveys": ("parcel_id", "parcels"),
    "parcel_survey_counts": ("parcel_id", "parcels"),
    "findings": ("id", "findings"),
    "finding_events": ("finding_id", "findings"),
    "finding_documents": ("finding_id", "findings"),
}

# Reference tables: replicated to every node, so any shard joins them locally.
REFERENCE: tuple[str, ...] = (
    "dataset_notes", "districts", "document_requirements", "imagery_layers", "import_profiles", "projects",
    "project_revisions", "users", "auth_tokens", "login_attempts", "compensation_standards", "targets",
    "assisting_units", "unit_staff", "command_posts", "frontline_visits", "duty_days",
    "compensation_disclosures", "resettlement_estates", "resettlement_buildings", "resettlement_flats",
    # The tile cache's counters and edits log (migrations 0018, 0020): one row per writing statement, written in
    # the writer's transaction. Citus runs no trigger with transition tables on a distributed table, so there the
    # writers of parcels would call tile_edit_log(source, extent) themselves, and most likely those of projects
    # and districts too (docs/scaling.md: unchecked on a cluster).
    "tile_versions", "tile_edits",
)

# Constraints a distributed table cannot keep on Citus: unique ones without the distribution column (a shard checks
# only its own rows), foreign keys across colocation groups. The statement that drops each, and what keeps the
# rule there instead.
DROPPED_ON_CITUS: dict[str, tuple[str, str]] = {
    "parcels_code_key": (
        "ALTER TABLE parcels DROP CONSTRAINT parcels_code_key",
        "parcel codes stay unique through the importer, which upserts by code under its table lock "
        "(gis.records.importer), the only writer that creates parcels"),
    "resettlement_allocations_flat_active": (
        "DROP INDEX resettlement_allocations_flat_active",
        "an allocation first locks its flat's row (resettlement_flats, a reference table) and looks for an active "
        "allocation (gis.records.resettlement); the check 一房多配 finds any that slip through"),
    "findings_parcel_id_fkey": (
        "ALTER TABLE findings DROP CONSTRAINT findings_parcel_id_fkey",
        "a finding is opened only for a parcel its check flags (gis.rectification), and parcels are never deleted"),
}


def citus_setup_sql() -> list[str]:
    """The statements that distribute a migrated database on a Citus coordinator, in an order Citus accepts:
    the exceptions dropped, reference tables first (foreign keys point at them), then the parcels, then the
    tables colocated with them."""
    statements = [drop for drop, _why in DROPPED_ON_CITUS.values()]
    statements += [f"SELECT create_reference_table('{table}')" for table in REFERENCE]
    for table, (column, group) in DISTRIBUTED.items():
        colocate = "" if table == group else f", colocate_with => '{group}'"
        statements.append(f"SELECT create_distributed_table('{table}', '{column}'{colocate})")
    return statements
