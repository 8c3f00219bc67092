"""The first schema of the run history.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("experiment", sa.String(255), sa.ForeignKey("experiments.name"), nullable=False),
        sa.Column("parent_id", sa.String(300), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("run_type", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("start_time", sa.Float, nullable=True),
        sa.Column("end_time", sa.Float, nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("timings", sa.JSON, nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=True),
        sa.Column("supervisor_pid", sa.Integer, nullable=True),
        sa.Column("job_pgid", sa.Integer, nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("run_dir", sa.Text, nullable=True),
    )
    op.create_index("ix_runs_experiment_created", "runs", ["experiment", "created_at"])
    op.create_index("ix_runs_parent", "runs", ["parent_id"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "tags",
        sa.Column("run_id", sa.String(300), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=True),
    )
    op.create_table(
        "properties",
        sa.Column("run_id", sa.String(300), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "metric_series",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(300), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("values_json", sa.Text, nullable=False),
        sa.Column("steps_json", sa.Text, nullable=True),
        sa.Column("ts_json", sa.Text, nullable=False),
    )
    op.create_index("ix_metric_series_run_name", "metric_series", ["run_id", "name"])
    op.create_table(
        "artifacts",
        sa.Column("run_id", sa.String(300), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_table(
        "compute_targets",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "environments",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "environments",
        "compute_targets",
        "artifacts",
        "metric_series",
        "properties",
        "tags",
        "runs",
        "experiments",
    ):
        op.drop_table(table)
