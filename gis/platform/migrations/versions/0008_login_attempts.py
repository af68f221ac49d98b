"""Login attempts: each sign-in by password, kept for throttling and for the admin to read.

Revision ID: 0008
Revises: 0007

One row per attempt: when, the user name as typed, the client address (behind a configured trusted
proxy, the forwarded one), whether the password was right, and whether the attempt was refused
unheard because its user name or address was locked (``locked``: the password was not checked).
``gis.records.users`` counts the failures since the last success per user name and per address to decide the
back-off, under an advisory lock per name and address, so parallel attempts from several workers
cannot slip through; it prunes rows older than the configured number of days.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE login_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    user_name text NOT NULL,
    address text,
    success boolean NOT NULL,
    locked boolean NOT NULL DEFAULT false
);
CREATE INDEX login_attempts_user_idx ON login_attempts (user_name, at);
CREATE INDEX login_attempts_address_idx ON login_attempts (address, at);
CREATE INDEX login_attempts_at_idx ON login_attempts (at);
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS login_attempts")
