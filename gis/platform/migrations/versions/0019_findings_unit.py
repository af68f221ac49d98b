"""A finding's responsible unit is one of the assisting units (协保单位), not free text.

Revision ID: 0019
Revises: 0018

Migration 0012 stored ``unit_code`` as text because the units' tables (0011) were not yet in the chain it was
written against. Against a reference table, the key stays valid on Citus too (a distributed table may refer to a
reference table). A code that is renamed follows; a unit still named by a finding cannot be removed.
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE findings ADD CONSTRAINT findings_unit_code_fkey FOREIGN KEY (unit_code) "
               "REFERENCES assisting_units (code) ON UPDATE CASCADE")


def downgrade() -> None:
    op.execute("ALTER TABLE findings DROP CONSTRAINT findings_unit_code_fkey")
