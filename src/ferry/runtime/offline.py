"""The offline run: what ``Run.get_context()`` returns when a script runs outside ferry.

It prints what it would log, in the reference's ``_OfflineRun`` wording (``Attempted to log scalar
metric loss:`` then the value on the next line, ``Attempted to add tag k with value v``,
``Attempted to track file n at p`` …), and keeps every record in memory, so unlike the reference
it supports the whole API: ``step=``, ``create_children``, ``get_metrics``, ``parent``,
``experiment``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from .run import JobExperiment, JobRun
from .validation import artifact_parts

Record = Dict[str, Any]
OFFLINE_EXPERIMENT = "offline"


class OfflineRun(JobRun):
    """A run that prints instead of logging; id ``OfflineRun_<uuid4>``.

    Example::

        run = OfflineRun()
        run.log("loss", 0.5)        # prints "Attempted to log scalar metric loss:\\n0.5"
        run.get_metrics()           # {"loss": 0.5}
        run.child_run("a").id       # "OfflineRun_….a"
    """

    _offline = True

    def __init__(
        self,
        run_id: Optional[str] = None,
        experiment: Optional[str] = None,
        parent: Optional[JobRun] = None,
        name: Optional[str] = None,
        *,
        _ledger: Optional[List[Record]] = None,
        _family: Optional[Dict[str, JobRun]] = None,
    ) -> None:
        import uuid  # only offline: keep it off a job's import time

        ledger: List[Record] = [] if _ledger is None else _ledger
        super().__init__(
            run_id or f"OfflineRun_{uuid.uuid4()}",
            JobExperiment(experiment or OFFLINE_EXPERIMENT),
            parent,
            name,
            ledger.append,
            _family,
        )
        self._ledger = ledger

    def _store_file(self, name: str, source: Any) -> Optional[str]:
        artifact_parts(name)  # the same validation as inside a job; nothing is copied
        return None

    def _records(self) -> List[Record]:
        return list(self._ledger)

    def _spawn(self, run_id: str, name: Optional[str], parent: JobRun) -> JobRun:
        return OfflineRun(
            run_id,
            self._experiment.name,
            parent,
            name,
            _ledger=self._ledger,
            _family=self._family,
        )

    def _new_run_id(self, name: Optional[str]) -> str:
        base = f"{self._id}.{name if name else os.urandom(4).hex()}"
        run_id, n = base, 1
        while run_id in self._family:  # the reference reused "<id>.<name>"; keep ids unique
            n += 1
            run_id = f"{base}_{n}"
        return run_id
