"""Itemised compensation (逐项补偿): standards by class (grade) with the signing incentive's deadline, and the survey
facts each item needs, per parcel.

Revision ID: 0014
Revises: 0010

``compensation_standards`` gains ``grade`` (the class a rate is set for: a house's structure, a decoration grade, a
kind of attachment or crop; '' for one rate for all) into its unique key, so supersession runs per district, kind,
item and grade; and ``sign_by``, the last day a contract earns the signing incentive (签约奖励), for that item only.
The items (decoration, attachments, social security) and the units (per item, per m² and month, per household) the
engine prices by join the CHECK constraints, written from ``gis.records.standards`` and
``gis.domain.compensation``, where they are stated once.

``parcel_surveys`` holds one parcel's survey (调查登记) facts: structure, decoration grade, area used for business,
months of transition; ``parcel_survey_counts`` its attachments and crops by kind and quantity. Both go with the parcel.
Their bounds are CHECK constraints named here (not ``*_limits``: migration 0009 adds those of the parcels' table).
"""

import re
from datetime import date
from decimal import Decimal

from alembic import op

from gis.domain.compensation import (
    BUSINESS_AREA_M2,
    COUNT_QUANTITY,
    COUNTED,
    DECORATIONS,
    GRADED,
    MAX_GRADE,
    STRUCTURES,
    TRANSITION_MONTHS,
)
from gis.records.standards import ITEMS_BY_KIND, MAX_RATE_YUAN, UNITS, VALID_FROM_RANGE

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def _literal(value: object) -> str:
    """A constant as an SQL literal (DDL takes no bound parameters)."""
    if isinstance(value, bool):
        raise ValueError(f"not a constant this migration writes: {value!r}")
    if isinstance(value, Decimal | int | float):
        return str(Decimal(str(value)))
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str) and re.fullmatch(r"[a-z_0-9]*", value):
        return f"'{value}'"
    raise ValueError(f"not a constant this migration writes: {value!r}")


def _in(values: object) -> str:
    return ", ".join(_literal(v) for v in values)  # type: ignore[union-attr]


def _schema() -> str:
    pairs = ", ".join(f"({_literal(k)}, {_literal(i)})" for k, items in ITEMS_BY_KIND.items() for i in items)
    top = " ".join(f"WHEN {_literal(u)} THEN {_literal(v)}" for u, v in MAX_RATE_YUAN.items())
    graded = " OR ".join(f"(item = {_literal(i)} AND grade IN ({_in(v)}))" for i, v in GRADED.items())
    low, high = VALID_FROM_RANGE
    return f"""
ALTER TABLE compensation_standards
    ADD COLUMN grade text NOT NULL DEFAULT '',
    ADD COLUMN sign_by date,
    DROP CONSTRAINT compensation_standards_key,
    DROP CONSTRAINT compensation_standards_item,
    DROP CONSTRAINT compensation_standards_rate_range,
    DROP CONSTRAINT compensation_standards_unit_check,
    ADD CONSTRAINT compensation_standards_unit CHECK (unit IN ({_in(UNITS)})),
    ADD CONSTRAINT compensation_standards_key UNIQUE (district_id, kind, item, grade, valid_from),
    ADD CONSTRAINT compensation_standards_item CHECK ((kind, item) IN ({pairs})),
    ADD CONSTRAINT compensation_standards_rate_range CHECK (rate_yuan > 0 AND rate_yuan <= CASE unit {top} END),
    ADD CONSTRAINT compensation_standards_grade CHECK (
        grade = '' OR {graded} OR (item IN ({_in(COUNTED)}) AND char_length(grade) <= {_literal(MAX_GRADE)})),
    ADD CONSTRAINT compensation_standards_sign_by CHECK (
        sign_by IS NULL OR (item = 'incentive' AND sign_by BETWEEN {_literal(low)} AND {_literal(high)}));

CREATE TABLE parcel_surveys (
    parcel_id bigint PRIMARY KEY REFERENCES parcels (id) ON DELETE CASCADE,
    structure text CONSTRAINT parcel_surveys_structure CHECK (structure IN ({_in(STRUCTURES)})),
    decoration text CONSTRAINT parcel_surveys_decoration CHECK (decoration IN ({_in(DECORATIONS)})),
    business_area_m2 double precision CONSTRAINT parcel_surveys_business_area_range
        CHECK (business_area_m2 BETWEEN {_literal(BUSINESS_AREA_M2.ge)} AND {_literal(BUSINESS_AREA_M2.le)}),
    transition_months integer CONSTRAINT parcel_surveys_transition_months_range
        CHECK (transition_months BETWEEN {_literal(TRANSITION_MONTHS.ge)} AND {_literal(TRANSITION_MONTHS.le)}),
    recorded_by text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE parcel_survey_counts (
    parcel_id bigint NOT NULL REFERENCES parcels (id) ON DELETE CASCADE,
    item text NOT NULL CONSTRAINT parcel_survey_counts_item CHECK (item IN ({_in(COUNTED)})),
    grade text NOT NULL CONSTRAINT parcel_survey_counts_grade
        CHECK (char_length(grade) BETWEEN 1 AND {_literal(MAX_GRADE)}),
    quantity numeric(14, 2) NOT NULL CONSTRAINT parcel_survey_counts_quantity_range
        CHECK (quantity > {_literal(COUNT_QUANTITY.gt)} AND quantity <= {_literal(COUNT_QUANTITY.le)}),
    PRIMARY KEY (parcel_id, item, grade)
);
"""


DOWNGRADE = """
DROP TABLE parcel_survey_counts;
DROP TABLE parcel_surveys;
DELETE FROM compensation_standards WHERE grade <> '' OR item IN ('decoration', 'attachments', 'social_security')
    OR unit NOT IN ('m2', 'mu');
ALTER TABLE compensation_standards
    DROP CONSTRAINT compensation_standards_key,
    DROP CONSTRAINT compensation_standards_grade,
    DROP CONSTRAINT compensation_standards_sign_by,
    DROP CONSTRAINT compensation_standards_unit,
    ADD CONSTRAINT compensation_standards_unit_check CHECK (unit IN ('m2', 'mu')),
    DROP COLUMN grade,
    DROP COLUMN sign_by,
    ADD CONSTRAINT compensation_standards_key UNIQUE (district_id, kind, item, valid_from);
"""


def upgrade() -> None:
    op.execute(_schema())


def downgrade() -> None:
    # The item and rate constraints keep this revision's wider lists: the rows they admit beyond 0010's were deleted.
    op.execute(DOWNGRADE)
