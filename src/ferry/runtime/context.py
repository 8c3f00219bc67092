"""``get_context()`` and the run it returns inside a job, :class:`SubmittedRun`.

The environment (``docs/runtime-protocol.md``): ``FERRY_RUN_ID``, ``FERRY_SPOOL_DIR``,
``FERRY_EXPERIMENT``, ``FERRY_PARENT_RUN_ID`` (a sweep's child job). Without ``FERRY_RUN_ID`` and
``FERRY_SPOOL_DIR`` the script runs by hand: an :class:`~.offline.OfflineRun` is returned (one
per process), or :class:`RunEnvironmentException` when ``allow_offline=False``.

A :class:`SubmittedRun` sends every record to the spool (``docs/runtime-protocol.md``).
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import history
from .offline import OfflineRun
from .run import JobExperiment, JobRun
from .spool import SpoolWriter
from .validation import check_run_id

ENV_RUN_ID = "FERRY_RUN_ID"
ENV_SPOOL_DIR = "FERRY_SPOOL_DIR"
ENV_EXPERIMENT = "FERRY_EXPERIMENT"
ENV_PARENT_RUN_ID = "FERRY_PARENT_RUN_ID"

Record = Dict[str, Any]
_RUN_ID = re.compile(r"^(?P<experiment>.+)_\d+_[0-9a-f]{8}$")
_lock = threading.Lock()
_runs: Dict[Tuple[str, str, str], JobRun] = {}
_writers: Dict[str, SpoolWriter] = {}
_offline: Optional[OfflineRun] = None


class RunEnvironmentException(RuntimeError):
    """``get_context(allow_offline=False)`` outside a ferry job (the reference's name)."""


class SubmittedRun(JobRun):
    """A run inside a submitted job, writing to the job's spool.

    ``Run.get_context()`` returns one for the job itself; ``child_run`` and ``create_children``
    return more. Records are batched in memory and written by :class:`~.spool.SpoolWriter`.

    Example::

        run = SubmittedRun("exp_1718000000_ab12cd34", JobExperiment("exp"), SpoolWriter(spool))
        run.log("loss", 0.25)
        run.flush()
    """

    def __init__(
        self,
        run_id: str,
        experiment: JobExperiment,
        writer: SpoolWriter,
        parent: Optional[JobRun] = None,
        name: Optional[str] = None,
        owned_by_supervisor: bool = False,
        family: Optional[Dict[str, JobRun]] = None,
    ) -> None:
        super().__init__(run_id, experiment, parent, name, writer.write, family)
        self._writer = writer
        self._owned_by_supervisor = owned_by_supervisor

    @property
    def spool_dir(self) -> str:
        """The spool folder this run writes to."""
        return self._writer.spool_dir

    def _store_file(self, name: str, source: Any) -> Optional[str]:
        return self._writer.copy_file_in(self._id, name, source)

    def _records(self) -> List[Record]:
        self._writer.flush()
        return history.read_spool(self._writer.spool_dir)

    def _spawn(self, run_id: str, name: Optional[str], parent: JobRun) -> JobRun:
        return SubmittedRun(
            run_id, self._experiment, self._writer, parent=parent, name=name, family=self._family
        )

    def _new_run_id(self, name: Optional[str]) -> str:
        return new_run_id(self._experiment.name)

    def flush(self, timeout_seconds: int = 300) -> None:
        """Write every buffered record of this process to the spool now."""
        self._writer.flush()


def new_run_id(experiment: str) -> str:
    """A fresh run id, ``<experiment>_<unix seconds>_<8 hex>``, unique across processes."""
    return f"{experiment}_{int(time.time())}_{os.urandom(4).hex()}"


def experiment_of(run_id: str) -> str:
    """The experiment part of a run id of the usual shape (else the whole id)."""
    match = _RUN_ID.match(run_id)
    return match.group("experiment") if match else run_id


def get_context(allow_offline: bool = True, used_for_context_manager: bool = False) -> JobRun:
    """Return the current job's run (cached per run id), or an offline run.

    ``used_for_context_manager`` is accepted for compatibility; every run is a context manager.

    Example::

        run = get_context()
        run.log("accuracy", 0.91)
    """
    return context_from(os.environ, allow_offline)


def context_from(environ: Mapping[str, str], allow_offline: bool = True) -> JobRun:
    """:func:`get_context` for an explicit environment mapping."""
    global _offline
    run_id = environ.get(ENV_RUN_ID, "")
    spool_dir = environ.get(ENV_SPOOL_DIR, "")
    if not run_id or not spool_dir:
        if not allow_offline:
            missing = [n for n, v in ((ENV_RUN_ID, run_id), (ENV_SPOOL_DIR, spool_dir)) if not v]
            raise RunEnvironmentException(
                f"not inside a ferry run: {' and '.join(missing)} not set. Submit the script "
                "with ferry, or call get_context(allow_offline=True) to run it by hand"
            )
        with _lock:
            if _offline is None:
                _offline = OfflineRun()
            return _offline
    check_run_id(run_id)
    experiment = environ.get(ENV_EXPERIMENT) or experiment_of(run_id)
    spool_dir = os.path.abspath(spool_dir)
    key = (run_id, spool_dir, experiment)
    with _lock:
        found = _runs.get(key)
        if found is not None:
            return found
        writer = _writers.get(spool_dir)
        if writer is None:
            writer = _writers[spool_dir] = SpoolWriter(spool_dir)
        parent: Optional[JobRun] = None
        family: Dict[str, JobRun] = {}
        parent_id = environ.get(ENV_PARENT_RUN_ID)
        if parent_id:
            parent = SubmittedRun(
                check_run_id(parent_id),
                JobExperiment(experiment),
                writer,
                owned_by_supervisor=True,
                family=family,
            )
        run = SubmittedRun(
            run_id,
            JobExperiment(experiment),
            writer,
            parent=parent,
            owned_by_supervisor=True,
            family=family,
        )
        _runs[key] = run
        return run


def reset() -> None:
    """Forget the cached runs and close the spool writers (flushing them).

    For tests and long-lived interpreters that run several jobs' code in turn; a job never needs
    it.
    """
    global _offline
    with _lock:
        writers = list(_writers.values())
        _runs.clear()
        _writers.clear()
        _offline = None
    for writer in writers:
        writer.close()
