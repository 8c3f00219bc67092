"""Datastores, dataset versions, models and what runs read and wrote.

``datastores`` keeps each registered datastore's kind and settings (never a secret; the built-in
``workspaceblobstore`` needs no row). ``dataset_versions`` keeps every dataset version a run or a
user made — registered ones under a unique (name, version), saved ones without a name — each
naming the manifest of its files in the blob store. ``models`` keeps model versions (name,
version) with their manifest and what produced them. ``run_datasets`` is the lineage: which
dataset version a run read or wrote, under which input or output name.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datastores",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("manifest_id", sa.String(64), nullable=False),
        sa.Column("locator_id", sa.String(64), nullable=True),
        sa.Column("files", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(300), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_dataset_versions_name_version", "dataset_versions", ["name", "version"], unique=True
    )
    op.create_table(
        "models",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("manifest_id", sa.String(64), nullable=False),
        sa.Column("root", sa.Text, nullable=False),
        sa.Column("is_file", sa.Boolean, nullable=False),
        sa.Column("files", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("framework", sa.String(64), nullable=True),
        sa.Column("framework_version", sa.String(64), nullable=True),
        sa.Column("run_id", sa.String(300), nullable=True),
        sa.Column("experiment", sa.String(255), nullable=True),
        sa.Column("snapshot_id", sa.String(64), nullable=True),
        sa.Column("environment_hash", sa.String(128), nullable=True),
        sa.Column("datasets", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_models_run", "models", ["run_id"])
    op.create_table(
        "run_datasets",
        sa.Column("run_id", sa.String(300), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("direction", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("mechanism", sa.String(16), nullable=False),
        sa.Column("path_on_compute", sa.Text, nullable=True),
    )
    op.create_index("ix_run_datasets_dataset", "run_datasets", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_run_datasets_dataset", "run_datasets")
    op.drop_table("run_datasets")
    op.drop_index("ix_models_run", "models")
    op.drop_table("models")
    op.drop_index("ix_dataset_versions_name_version", "dataset_versions")
    op.drop_table("dataset_versions")
    op.drop_table("datastores")
