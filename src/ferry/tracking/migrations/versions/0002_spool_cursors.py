"""Spool cursors: where ingestion of each run's spool has got to.

Stored in the same transaction as the records read, so a supervisor that dies between the two
neither loses nor repeats a record. (``runs.status`` is indexed since 0001, and environment
versions are unique by their primary key (name, version), so nothing else is needed for the
compare-and-set writes.)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spool_cursors",
        sa.Column("run_id", sa.String(300), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("file", sa.String(255), primary_key=True),
        sa.Column("offset", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("spool_cursors")
