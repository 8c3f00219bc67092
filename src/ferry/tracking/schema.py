"""Table definitions of the run history (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

#: The Alembic revision this code expects; opening an older database upgrades it.
HEAD_REVISION = "0005"
#: Every revision this code can upgrade from; another one means a newer ferry wrote the file.
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004", "0005")

metadata = MetaData()

experiments = Table(
    "experiments",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    # a stable id (uuid4), set when the experiment is created (0003 gave old ones theirs)
    Column("id", String(36), nullable=True),
    Column("archived_time", Float, nullable=True),
    # the number the experiment's last run took; a new run takes the next one
    Column("next_run_number", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_experiments_id", "id", unique=True),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment", String(255), ForeignKey("experiments.name"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=True),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("experiment", String(255), ForeignKey("experiments.name"), nullable=False),
    Column("parent_id", String(300), nullable=True),
    Column("status", String(32), nullable=False),
    Column("target", String(255), nullable=False),
    Column("run_type", String(64), nullable=False),
    Column("display_name", String(255), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("start_time", Float, nullable=True),
    Column("end_time", Float, nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("definition", JSON, nullable=False),
    Column("error", JSON, nullable=True),
    Column("timings", JSON, nullable=False),
    Column("snapshot", JSON, nullable=True),
    Column("supervisor_pid", Integer, nullable=True),
    Column("job_pgid", Integer, nullable=True),
    Column("host", String(255), nullable=True),
    Column("run_dir", Text, nullable=True),
    # the reference's run number: 1, 2, … per experiment, in the order runs were created
    Column("number", Integer, nullable=True),
    Column("description", Text, nullable=True),
    Index("ix_runs_experiment_created", "experiment", "created_at"),
    Index("ix_runs_parent", "parent_id"),
    Index("ix_runs_status", "status"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(300), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=True),
)

properties = Table(
    "properties",
    metadata,
    Column("run_id", String(300), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

metrics = Table(
    "metric_series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(300), nullable=False),
    Column("name", Text, nullable=False),
    Column("type", String(32), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("count", Integer, nullable=False),
    # columnar JSON arrays: one row holds a whole batch of values of one metric
    Column("values_json", Text, nullable=False),
    Column("steps_json", Text, nullable=True),
    Column("ts_json", Text, nullable=False),
    Index("ix_metric_series_run_name", "run_id", "name"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", String(300), ForeignKey("runs.id"), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("path", Text, nullable=False),
    Column("size", Integer, nullable=False),
)

compute_targets = Table(
    "compute_targets",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("config", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

environments = Table(
    "environments",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

# where ingestion of a run's spool has got to: written in the transaction that stores the records
spool_cursors = Table(
    "spool_cursors",
    metadata,
    Column("run_id", String(300), ForeignKey("runs.id"), primary_key=True),
    Column("file", String(255), primary_key=True),
    Column("offset", BigInteger, nullable=False),
)

# the team server (0004): users, tokens (the secret's SHA-256 only), the runs it supervises
users = Table(
    "users",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("admin", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_name", String(255), ForeignKey("users.name"), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    # "user" (everything the user may do) or "run:<run id>" (that run and its children)
    Column("scope", String(400), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Index("ix_tokens_user", "user_name"),
)

# runs submitted to a server, waiting for (owner NULL) or claimed by one server process
dispatch = Table(
    "dispatch",
    metadata,
    Column("run_id", String(300), ForeignKey("runs.id"), primary_key=True),
    Column("requested_at", Float, nullable=False),
    # who asked: the run's job gets a token of this user, scoped to the run
    Column("user_name", String(255), nullable=True),
    Column("owner", String(255), nullable=True),
    Column("claimed_at", Float, nullable=True),
    Index("ix_dispatch_owner", "owner"),
)

# each run's last numeric value per metric (greatest step, then latest): searches sort on it
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(300), primary_key=True),
    Column("name", String(500), primary_key=True),
    Column("value", Float, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_latest_metrics_name_value", "name", "value"),
)
