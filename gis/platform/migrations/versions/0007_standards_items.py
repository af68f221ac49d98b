"""Compensation standards per payment item, over time: each holds from its date until the next one.

Revision ID: 0007
Revises: 0006

Standards are kept per district × parcel kind × payment item (补偿科目), each with the day it takes
effect. A new standard of the same district, kind and item supersedes the earlier one from its own
date, so a standard's end is not stored: it is the day before its successor's ``valid_from``
(``gis.records.standards`` derives it), and cannot disagree with it. ``valid_to`` is dropped. An end stored
with no successor from the next day (a gap, or a last standard that ended) cannot be expressed so; the
migration then stops rather than lose it silently.

Rows that existed get the base item of their kind, the one the demo city pays and the above-standard
check priced: house → house_value (房屋价值补偿, per m²), land → land (土地补偿, per mu).

The limits (rate per unit, dates, items of each kind) come from ``gis.records.standards``, where they are
stated once and the import and the API read them; changing one needs a new migration replacing the
named constraint. Who recorded a standard, and when, is kept. The service's login may add and correct
standards but not delete them (as with project revisions). Still a Citus reference table: CHECK
constraints and a unique key on the table itself, no triggers.
"""

import re
from datetime import date
from decimal import Decimal

from alembic import op

from gis.records.standards import BASE_ITEM, ITEMS_BY_KIND, MAX_NOTE, MAX_RATE_YUAN, VALID_FROM_RANGE

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _literal(value: object) -> str:
    """A constant of gis.records.standards as an SQL literal (DDL takes no bound parameters)."""
    if isinstance(value, Decimal | int):
        return str(Decimal(value))
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str) and re.fullmatch(r"[a-z_0-9]+", value):
        return f"'{value}'"
    raise ValueError(f"not a constant this migration writes: {value!r}")


def _base_item(kind: str = "kind") -> str:
    return "CASE " + kind + " " + " ".join(f"WHEN {_literal(k)} THEN {_literal(i)}"
                                          for k, i in BASE_ITEM.items()) + " END"


GAPS = """
DO $$ BEGIN
    IF EXISTS (
        SELECT 1 FROM (
            SELECT valid_to, lead(valid_from) OVER (PARTITION BY district_id, kind ORDER BY valid_from) AS next_from
            FROM compensation_standards
        ) s
        WHERE s.valid_to IS NOT NULL AND (s.next_from IS NULL OR s.valid_to < s.next_from - 1)
    ) THEN
        RAISE EXCEPTION 'compensation_standards: a standard ends (valid_to) with no successor from the next day; '
            'a standard now holds until the next one. Add the successor (or clear valid_to), then migrate again';
    END IF;
END $$;
"""


def _schema() -> str:
    pairs = ", ".join(f"({_literal(k)}, {_literal(i)})" for k, items in ITEMS_BY_KIND.items() for i in items)
    top = " ".join(f"WHEN {_literal(u)} THEN {_literal(v)}" for u, v in MAX_RATE_YUAN.items())
    low, high = VALID_FROM_RANGE
    return f"""
ALTER TABLE compensation_standards ADD COLUMN item text;
UPDATE compensation_standards SET item = {_base_item()};
ALTER TABLE compensation_standards
    ALTER COLUMN item SET NOT NULL,
    DROP COLUMN valid_to,
    DROP CONSTRAINT compensation_standards_district_id_kind_valid_from_key,
    DROP CONSTRAINT compensation_standards_rate_yuan_check,
    ADD COLUMN note text,
    ADD COLUMN recorded_by text,
    ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT compensation_standards_key UNIQUE (district_id, kind, item, valid_from),
    ADD CONSTRAINT compensation_standards_item CHECK ((kind, item) IN ({pairs})),
    ADD CONSTRAINT compensation_standards_rate_range CHECK (rate_yuan > 0 AND rate_yuan <= CASE unit {top} END),
    ADD CONSTRAINT compensation_standards_valid_from_range
        CHECK (valid_from BETWEEN {_literal(low)} AND {_literal(high)}),
    ADD CONSTRAINT compensation_standards_note_length CHECK (length(note) <= {_literal(MAX_NOTE)});
"""


DOWNGRADE = f"""
DELETE FROM compensation_standards WHERE item <> {_base_item()};
ALTER TABLE compensation_standards ADD COLUMN valid_to date;
UPDATE compensation_standards s SET valid_to = n.next_from - 1
FROM (SELECT id, lead(valid_from) OVER (PARTITION BY district_id, kind ORDER BY valid_from) AS next_from
      FROM compensation_standards) n
WHERE n.id = s.id;
ALTER TABLE compensation_standards
    DROP CONSTRAINT compensation_standards_key,
    DROP CONSTRAINT compensation_standards_item,
    DROP CONSTRAINT compensation_standards_rate_range,
    DROP CONSTRAINT compensation_standards_valid_from_range,
    DROP CONSTRAINT compensation_standards_note_length,
    DROP COLUMN item,
    DROP COLUMN note,
    DROP COLUMN recorded_by,
    DROP COLUMN recorded_at,
    ADD CONSTRAINT compensation_standards_rate_yuan_check CHECK (rate_yuan > 0),
    ADD CONSTRAINT compensation_standards_district_id_kind_valid_from_key UNIQUE (district_id, kind, valid_from);
"""


def _role() -> str:
    # DDL takes no bound parameters; the name comes from the validated setting and is checked again here.
    role = str(op.get_context().config.attributes.get("app_db_user", "gis_app"))
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError(f"invalid app_db_user {role!r}")
    return role


def _privileges(statement: str) -> str:
    role = _role()
    return f"""DO $$ BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            {statement.format(role=role)};
        END IF; END $$"""


def upgrade() -> None:
    op.execute(GAPS)
    op.execute(_schema())
    op.execute(_privileges('REVOKE DELETE, TRUNCATE ON compensation_standards FROM "{role}"'))


def downgrade() -> None:
    op.execute(_privileges('GRANT DELETE, TRUNCATE ON compensation_standards TO "{role}"'))
    op.execute(DOWNGRADE)
