"""Tables of the asset store (SQLAlchemy Core, on the run history's metadata); migration 0005
creates them.

No column holds a secret or file contents: datastores keep settings, dataset versions and
models keep the id of a manifest in the workspace's blob store.
"""

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
    String,
    Table,
    Text,
)

from ferry.tracking.schema import metadata

datastores = Table(
    "datastores",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("config", JSON, nullable=False),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=True),
    Column("version", Integer, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("manifest_id", String(64), nullable=False),
    Column("locator_id", String(64), nullable=True),
    Column("files", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("description", Text, nullable=True),
    Column("tags", JSON, nullable=False),
    Column("run_id", String(300), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_dataset_versions_name_version", "name", "version", unique=True),
)

models = Table(
    "models",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("manifest_id", String(64), nullable=False),
    Column("root", Text, nullable=False),
    Column("is_file", Boolean, nullable=False),
    Column("files", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("description", Text, nullable=True),
    Column("tags", JSON, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("framework", String(64), nullable=True),
    Column("framework_version", String(64), nullable=True),
    Column("run_id", String(300), nullable=True),
    Column("experiment", String(255), nullable=True),
    Column("snapshot_id", String(64), nullable=True),
    Column("environment_hash", String(128), nullable=True),
    Column("datasets", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_models_run", "run_id"),
)

run_datasets = Table(
    "run_datasets",
    metadata,
    Column("run_id", String(300), ForeignKey("runs.id"), primary_key=True),
    Column("direction", String(8), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("dataset_id", String(64), nullable=False),
    Column("mechanism", String(16), nullable=False),
    Column("path_on_compute", Text, nullable=True),
    Index("ix_run_datasets_dataset", "dataset_id"),
)
