"""Run history stores behind one contract (:mod:`ferry.tracking.base`)."""

from __future__ import annotations

from ferry.tracking.base import (
    AddArtifacts,
    AddProperties,
    ArtifactRecord,
    CreateRun,
    ExperimentRecord,
    MetricRecord,
    MetricSeries,
    RemoveTags,
    RunQuery,
    RunRecord,
    RunStore,
    SetStatus,
    SetTags,
    StoreOp,
)

__all__ = [
    "AddArtifacts",
    "AddProperties",
    "ArtifactRecord",
    "CreateRun",
    "ExperimentRecord",
    "MetricRecord",
    "MetricSeries",
    "RemoveTags",
    "RunQuery",
    "RunRecord",
    "RunStore",
    "SetStatus",
    "SetTags",
    "StoreOp",
    "open_store",
]


def open_store(url: str) -> RunStore:
    """Open the store for a database URL (``sqlite:///…`` or ``postgresql+psycopg://…``)."""
    from ferry.errors import ConfigError

    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme in ("sqlite", "postgresql"):
        from ferry.tracking.sql import SqlRunStore

        return SqlRunStore(url)
    raise ConfigError(
        f"unknown run store URL scheme {scheme!r} in {url!r}; use sqlite:/// or postgresql://"
    )
