"""Experiments get a stable id, tags and an archive time; runs get a number and a description.

The reference's ``Experiment.id``, ``Experiment.tags``, ``archive()``/``reactivate()`` and
``Run.number``/``Run.description``. A run's number counts the runs of its experiment from 1 in
the order they were created; the experiment keeps the last number given (``next_run_number``)
so that a new run takes the next one in the transaction that creates it. Existing experiments
get a fresh id and existing runs are numbered in creation order (ties by id); an experiment
already marked archived gets its creation time as its archive time (the real one is unknown).

Revision ID: 0003
Revises: 0002
"""

import time
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 500


def upgrade() -> None:
    op.add_column("experiments", sa.Column("id", sa.String(36), nullable=True))
    op.add_column("experiments", sa.Column("archived_time", sa.Float, nullable=True))
    op.add_column(
        "experiments",
        sa.Column("next_run_number", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column("runs", sa.Column("number", sa.Integer, nullable=True))
    op.add_column("runs", sa.Column("description", sa.Text, nullable=True))
    op.create_table(
        "experiment_tags",
        sa.Column(
            "experiment", sa.String(255), sa.ForeignKey("experiments.name"), primary_key=True
        ),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=True),
    )
    _backfill(op.get_bind())
    op.create_index("ix_experiments_id", "experiments", ["id"], unique=True)


def _backfill(conn: sa.engine.Connection) -> None:
    experiments = sa.table(
        "experiments",
        sa.column("name", sa.String),
        sa.column("id", sa.String),
        sa.column("archived", sa.Boolean),
        sa.column("archived_time", sa.Float),
        sa.column("created_at", sa.Float),
        sa.column("next_run_number", sa.Integer),
    )
    runs = sa.table(
        "runs",
        sa.column("id", sa.String),
        sa.column("experiment", sa.String),
        sa.column("created_at", sa.Float),
        sa.column("number", sa.Integer),
    )
    found = conn.execute(
        sa.select(experiments.c.name, experiments.c.archived, experiments.c.created_at)
    ).all()
    counts: dict[str, int] = {}
    numbered: list[dict[str, object]] = []
    ordered = conn.execute(
        sa.select(runs.c.id, runs.c.experiment).order_by(
            runs.c.experiment, runs.c.created_at, runs.c.id
        )
    )
    for run_id, experiment in ordered:
        counts[experiment] = counts.get(experiment, 0) + 1
        numbered.append({"rid": run_id, "n": counts[experiment]})
    update_run = (
        runs.update().where(runs.c.id == sa.bindparam("rid")).values(number=sa.bindparam("n"))
    )
    for start in range(0, len(numbered), _BATCH):
        conn.execute(update_run, numbered[start : start + _BATCH])
    for name, archived, created_at in found:
        conn.execute(
            experiments.update()
            .where(experiments.c.name == name)
            .values(
                id=str(uuid.uuid4()),
                next_run_number=counts.get(name, 0),
                archived_time=(created_at or time.time()) if archived else None,
            )
        )


def downgrade() -> None:
    op.drop_index("ix_experiments_id", "experiments")
    op.drop_table("experiment_tags")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("description")
        batch.drop_column("number")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("next_run_number")
        batch.drop_column("archived_time")
        batch.drop_column("id")
