"""Import profiles: named, reusable field mappings from a file's columns to parcel fields.

Revision ID: 0005
Revises: 0004

Profiles live in the database rather than as files under ``layers/``: they are created at run
time (``POST /imports/profiles``, ``gis import --save-profile``) by whoever imports, must be seen
at once by the API and the CLI wherever each runs (the API may run in a container without the
repository), and are backed up and restored with the data they describe. ``layers/`` holds what is
versioned with the code.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE import_profiles (
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    description text,
    mapping jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(mapping) = 'object'),
    defaults jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(defaults) = 'object'),
    crs integer,
    options jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS import_profiles")
