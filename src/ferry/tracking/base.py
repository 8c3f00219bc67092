"""The run-history store contract.

One small abstract class, :class:`RunStore`; the SQLAlchemy implementation (SQLite by default,
PostgreSQL for a server) lives in :mod:`ferry.tracking.sql`. The store enforces the status
transition table of :mod:`ferry.status`; it knows nothing of HTTP, targets or the CLI.

Example::

    store = open_store("sqlite:////tmp/ws/ferry.db")
    store.create_run(RunRecord(id="exp_1_ab", experiment="exp", status=RunStatus.QUEUED))
    store.set_status("exp_1_ab", RunStatus.PREPARING)

Writers that must not lose a race say what they expect: ``set_status(id, FAILED,
expected=RunStatus.RUNNING)`` changes nothing (and raises InvalidTransition) when the run has
moved on. Spool ingestion writes through :meth:`RunStore.apply`: a batch of typed operations and
the spool cursor, in one transaction.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple

from ferry.status import RunStatus

if TYPE_CHECKING:
    from ferry.tracking.search import RunPage, RunSearch


@dataclass(frozen=True)
class RunRecord:
    """One run as the store keeps it."""

    id: str
    experiment: str
    status: RunStatus = RunStatus.NOT_STARTED
    parent_id: str | None = None
    target: str = "local"
    run_type: str = "ferry.scriptrun"
    display_name: str | None = None
    created_at: float = 0.0
    start_time: float | None = None
    end_time: float | None = None
    heartbeat_at: float | None = None
    definition: Mapping[str, Any] = field(default_factory=dict)
    error: Mapping[str, Any] | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    snapshot: Mapping[str, Any] | None = None
    supervisor_pid: int | None = None
    job_pgid: int | None = None
    host: str | None = None
    run_dir: str | None = None
    tags: Mapping[str, str | None] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    #: 1, 2, … per experiment in creation order; given by the store (a value set here is ignored)
    number: int | None = None
    description: str | None = None


#: every field of a run record, in order
RUN_FIELDS = tuple(f.name for f in fields(RunRecord))
_RUN_FIELD_SET = frozenset(RUN_FIELDS)


def run_record(values: dict[str, Any]) -> RunRecord:
    """A :class:`RunRecord` of ``values`` (field name → value, checked by the caller). When
    ``values`` holds every field it is made without the generated ``__init__``, whose keyword
    parsing and 24 frozen assignments took ~6 µs a record — a tenth of a search page's time
    where a page of 100 runs is made on the server and again on the client."""
    if values.keys() != _RUN_FIELD_SET:
        return RunRecord(**values)
    record = object.__new__(RunRecord)
    record.__dict__.update(values)
    return record


@dataclass(frozen=True)
class ExperimentRecord:
    """One experiment as the store keeps it; ``archived_time`` is None while it is active."""

    name: str
    id: str
    created_at: float
    archived_time: float | None = None
    tags: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def archived(self) -> bool:
        return self.archived_time is not None


class MetricRecord(NamedTuple):
    """One logged value; ``type`` is scalar, list, row, table, image or a JSON chart type.

    A named tuple, not a dataclass: ingestion builds hundreds of thousands of them per second.
    """

    run_id: str
    name: str
    type: str
    value: Any
    step: int | None = None
    description: str = ""
    ts: float = 0.0


class MetricSeries(NamedTuple):
    """Consecutive values of one metric of one run, stored together (columnar).

    Ingestion and queries move series, not single values: 200,000 logged values are a handful
    of rows. ``steps`` is None when no value had a step.
    """

    run_id: str
    name: str
    type: str
    values: list[Any]
    steps: list[int | None] | None
    ts: list[float]
    description: str = ""

    def records(self) -> list[MetricRecord]:
        steps = self.steps or [None] * len(self.values)
        return [
            MetricRecord(self.run_id, self.name, self.type, v, st, self.description, t)
            for v, st, t in zip(self.values, steps, self.ts, strict=False)
        ]


def series_of(records: Sequence[MetricRecord]) -> list[MetricSeries]:
    """Group single values into series (consecutive values of the same run, name, type)."""
    out: list[MetricSeries] = []
    index: dict[tuple[str, str, str, str], MetricSeries] = {}
    for r in records:
        key = (r.run_id, r.name, r.type, r.description)
        series = index.get(key)
        if series is None:
            series = index[key] = MetricSeries(r.run_id, r.name, r.type, [], [], [], r.description)
            out.append(series)
        series.values.append(r.value)
        series.ts.append(r.ts)
        assert series.steps is not None
        series.steps.append(r.step)
    return [s._replace(steps=None) if all(st is None for st in s.steps or []) else s for s in out]


@dataclass(frozen=True)
class ArtifactRecord:
    """A file kept with a run; ``path`` is relative to the workspace root."""

    run_id: str
    name: str
    path: str
    size: int


@dataclass(frozen=True)
class SetTags:
    """Set (or overwrite) tags of one run; a None value is a tag without a value."""

    run_id: str
    tags: Mapping[str, str | None]


@dataclass(frozen=True)
class RemoveTags:
    """Remove tags of one run (keys that are not set are ignored)."""

    run_id: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class AddProperties:
    """Add immutable properties to one run; changing one is refused."""

    run_id: str
    properties: Mapping[str, str]


@dataclass(frozen=True)
class AddArtifacts:
    """Index files kept with runs (replacing an entry of the same name)."""

    artifacts: tuple[ArtifactRecord, ...]


@dataclass(frozen=True)
class CreateRun:
    """Create a run (a child run made by a job); an id that exists already is refused."""

    record: RunRecord


@dataclass(frozen=True)
class SetStatus:
    """Move a run to ``status`` if the transition table allows it."""

    run_id: str
    status: RunStatus
    error: Mapping[str, Any] | None = None
    at: float | None = None


#: One write of a batch given to :meth:`RunStore.apply`.
StoreOp = MetricSeries | SetTags | RemoveTags | AddProperties | AddArtifacts | CreateRun | SetStatus


def op_run_ids(op: StoreOp) -> list[str]:
    """The runs an operation writes to (they must exist, except the one CreateRun makes)."""
    if isinstance(op, AddArtifacts):
        return list(dict.fromkeys(a.run_id for a in op.artifacts))
    if isinstance(op, CreateRun):
        return [op.record.parent_id] if op.record.parent_id else []
    return [op.run_id]


@dataclass(frozen=True)
class RunQuery:
    """Filters for :meth:`RunStore.list_runs`; ``None`` means "any"."""

    experiment: str | None = None
    parent_id: str | None = None
    top_level_only: bool = False
    tags: Mapping[str, str | None] | None = None
    properties: Mapping[str, str] | None = None
    statuses: Sequence[RunStatus] | None = None
    limit: int | None = None


class RunStore(abc.ABC):
    """Persistent run history: experiments, runs, tags, properties, metrics, artifacts, targets."""

    # experiments -------------------------------------------------------------------------
    @abc.abstractmethod
    def ensure_experiment(self, name: str) -> None:
        """Create the experiment (active, with a new id) unless it exists; archived stays so."""

    @abc.abstractmethod
    def list_experiments(self) -> list[str]:
        """The names of the active experiments (archived ones are left out), sorted."""

    @abc.abstractmethod
    def find_experiment(self, name: str) -> ExperimentRecord | None:
        """The experiment of that name, archived or not; None when there is none."""

    @abc.abstractmethod
    def list_experiment_records(self, *, archived: bool | None = False) -> list[ExperimentRecord]:
        """Experiments sorted by name: active ones (``archived=False``), archived ones
        (``True``) or all (``None``)."""

    def find_experiment_by_id(self, experiment_id: str) -> ExperimentRecord | None:
        """The experiment with that id (``experiment.id``), archived or not; None when there
        is none. Stores with an index on the id answer without listing them all."""
        for record in self.list_experiment_records(archived=None):
            if record.id == experiment_id:
                return record
        return None

    @abc.abstractmethod
    def set_experiment_archived(self, name: str, archived: bool) -> ExperimentRecord:
        """Archive (hide) or reactivate an experiment; ConfigError if there is none."""

    @abc.abstractmethod
    def set_experiment_tags(self, name: str, tags: Mapping[str, str | None]) -> None:
        """Set (or overwrite) tags of an experiment; ConfigError if there is none."""

    @abc.abstractmethod
    def remove_experiment_tags(self, name: str, keys: Iterable[str]) -> None:
        """Remove tags of an experiment (keys not set are ignored)."""

    @abc.abstractmethod
    def delete_experiment(self, name: str) -> None:
        """Delete an experiment that holds no run; ConfigError naming the count otherwise.

        The check and the delete are one statement, so a run created meanwhile is never
        orphaned: either the run's insert or the delete wins.
        """

    # runs --------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(self, record: RunRecord) -> None: ...

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord: ...

    @abc.abstractmethod
    def list_runs(self, query: RunQuery) -> list[RunRecord]: ...

    @abc.abstractmethod
    def set_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: Mapping[str, Any] | None = None,
        at: float | None = None,
        expected: RunStatus | None = None,
    ) -> RunStatus:
        """Move a run to ``status`` if the table allows it; returns the status now stored.

        The change is a compare-and-set against the status just read, so two writers racing
        from the same status (a supervisor's Completed, a reader's Failed) cannot both win: the
        loser sees the winner's status and gets :class:`~ferry.errors.InvalidTransition`, as
        for any change the table forbids. With ``expected``, the change happens only while the
        run is still in that status ("mark Failed only if still Running"). Entering Running
        records the start time, entering a terminal status records the end time.
        """

    @abc.abstractmethod
    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set plain columns: heartbeat_at, timings, snapshot, supervisor_pid, job_pgid, ..."""

    # tags and properties -----------------------------------------------------------------
    @abc.abstractmethod
    def set_tags(self, run_id: str, tags: Mapping[str, str | None]) -> None: ...

    @abc.abstractmethod
    def remove_tags(self, run_id: str, keys: Iterable[str]) -> None: ...

    @abc.abstractmethod
    def add_properties(self, run_id: str, properties: Mapping[str, str]) -> None:
        """Add immutable properties; a key already set to another value raises ConfigError."""

    # metrics and artifacts ---------------------------------------------------------------
    @abc.abstractmethod
    def log_series(self, series: Sequence[MetricSeries]) -> None:
        """Store metric values, a series at a time (the hot path of ingestion)."""

    @abc.abstractmethod
    def get_series(self, run_ids: Sequence[str], name: str | None = None) -> list[MetricSeries]:
        """The metric series of the given runs, in logging order."""

    def log_metrics(self, metrics: Sequence[MetricRecord]) -> None:
        """Store single values (grouped into series)."""
        self.log_series(series_of(metrics))

    def get_metrics(self, run_ids: Sequence[str]) -> list[MetricRecord]:
        """All metric values of the given runs, one record each, in logging order."""
        return [record for series in self.get_series(run_ids) for record in series.records()]

    @abc.abstractmethod
    def add_artifacts(self, artifacts: Sequence[ArtifactRecord]) -> None: ...

    @abc.abstractmethod
    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]: ...

    # compute targets and environments ----------------------------------------------------
    @abc.abstractmethod
    def save_target(self, name: str, kind: str, config: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def get_target(self, name: str) -> tuple[str, dict[str, Any]] | None: ...

    @abc.abstractmethod
    def list_targets(self) -> dict[str, tuple[str, dict[str, Any]]]: ...

    @abc.abstractmethod
    def delete_target(self, name: str) -> bool: ...

    @abc.abstractmethod
    def register_environment(self, name: str, spec: Mapping[str, Any]) -> int:
        """Store a new version of an environment spec; returns the version number."""

    @abc.abstractmethod
    def get_environment(self, name: str, version: int | None = None) -> tuple[int, dict[str, Any]]:
        """The given (or latest) version; raises ConfigError naming known versions."""

    @abc.abstractmethod
    def list_environments(self) -> dict[str, list[int]]: ...

    # spool ingestion -----------------------------------------------------------------------
    @abc.abstractmethod
    def apply(
        self, ops: Sequence[StoreOp], *, cursor: tuple[str, Mapping[str, int]] | None = None
    ) -> list[str]:
        """Apply ``ops`` in order, in ONE transaction, together with the spool cursor.

        ``cursor`` is ``(run_id, {spool file name: byte offset})``: where ingestion of that
        run's spool has got to, stored with the records it read so that a crash between the two
        can neither lose nor repeat a record. An op the store refuses (a transition the table
        forbids, a property changed, a run id that already exists, a run that does not exist)
        is skipped — it does not abort the others — and described in the returned warnings.
        Either every accepted op and the cursor are stored, or none (any other error is raised
        and nothing is written).
        """

    @abc.abstractmethod
    def get_spool_cursor(self, run_id: str) -> dict[str, int]:
        """The byte offsets per spool file stored by :meth:`apply` (empty when none)."""

    # search --------------------------------------------------------------------------------
    def search_runs(self, search: RunSearch) -> RunPage:
        """One page of the runs of ``search.experiments`` matching its clauses, sorted.

        This default reads every run of the experiments and filters in Python; the SQL store
        answers with one indexed query (:mod:`ferry.tracking.search_sql`).
        """
        from ferry.tracking.search import search_in_memory

        records = [
            record
            for name in dict.fromkeys(search.experiments)
            for record in self.list_runs(RunQuery(experiment=name))
        ]
        return search_in_memory(search, records, self.latest_metrics)

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Each run's latest numeric value of each metric (greatest step, then latest time)."""
        from ferry.tracking.search import latest_of_series

        found = latest_of_series(self.get_series(run_ids))
        return {run_id: found.get(run_id, {}) for run_id in run_ids}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default does nothing."""
