"""The team server: users, hashed tokens, the queue of runs it supervises, and latest metrics.

``users`` and ``tokens`` authenticate every request to ``ferry server`` (a token's secret is
stored only as its SHA-256; its scope is ``user`` or ``run:<run id>``). ``dispatch`` holds the
runs submitted to a server, each claimed by one server process (a compare-and-set on
``owner``), so several processes sharing the database never start a run twice and a restarted
one starts what was waiting. ``latest_metrics`` keeps each run's last numeric value of each
metric (greatest step, then latest time), so that a search filters and sorts on metrics with an
index instead of decoding series; existing series are folded in here.

Revision ID: 0004
Revises: 0003
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BATCH = 500


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_name", sa.String(255), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(400), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    op.create_index("ix_tokens_user", "tokens", ["user_name"])
    op.create_table(
        "dispatch",
        sa.Column("run_id", sa.String(300), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("user_name", sa.String(255), nullable=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("claimed_at", sa.Float, nullable=True),
    )
    op.create_index("ix_dispatch_owner", "dispatch", ["owner"])
    op.create_table(
        "latest_metrics",
        sa.Column("run_id", sa.String(300), primary_key=True),
        sa.Column("name", sa.String(500), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_index("ix_latest_metrics_name_value", "latest_metrics", ["name", "value"])
    _backfill(op.get_bind())


def _backfill(conn: sa.engine.Connection) -> None:
    series = sa.table(
        "metric_series",
        sa.column("id", sa.Integer),
        sa.column("run_id", sa.String),
        sa.column("name", sa.String),
        sa.column("type", sa.String),
        sa.column("values_json", sa.Text),
        sa.column("steps_json", sa.Text),
        sa.column("ts_json", sa.Text),
    )
    latest_table = sa.table(
        "latest_metrics",
        sa.column("run_id", sa.String),
        sa.column("name", sa.String),
        sa.column("value", sa.Float),
        sa.column("step", sa.BigInteger),
        sa.column("ts", sa.Float),
    )
    latest: dict[tuple[str, str], tuple[int, float, float]] = {}
    found = conn.execute(
        sa.select(
            series.c.run_id,
            series.c.name,
            series.c.values_json,
            series.c.steps_json,
            series.c.ts_json,
        )
        .where(series.c.type == "scalar")
        .order_by(series.c.id)
    )
    for run_id, name, values, steps, ts in found:
        if len(name) > 500:
            continue
        decoded = json.loads(values)
        step_list = json.loads(steps) if steps else [None] * len(decoded)
        for value, step, at in zip(decoded, step_list, json.loads(ts), strict=False):
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            try:
                number = float(value)
            except OverflowError:  # an int beyond a float's range is not sortable as one
                continue
            key = (run_id, name)
            candidate = (int(step or 0), float(at), number)
            old = latest.get(key)
            if old is None or candidate[:2] >= old[:2]:
                latest[key] = candidate
    rows = [
        {"run_id": r, "name": n, "step": s, "ts": t, "value": v}
        for (r, n), (s, t, v) in latest.items()
    ]
    for start in range(0, len(rows), _BATCH):
        conn.execute(latest_table.insert(), rows[start : start + _BATCH])


def downgrade() -> None:
    op.drop_index("ix_latest_metrics_name_value", "latest_metrics")
    op.drop_table("latest_metrics")
    op.drop_index("ix_dispatch_owner", "dispatch")
    op.drop_table("dispatch")
    op.drop_index("ix_tokens_user", "tokens")
    op.drop_table("tokens")
    op.drop_table("users")
