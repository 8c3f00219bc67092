"""A scripted target for fast tests: the supervisor, ingestion, liveness and the CLI without a job.

``FakeTarget`` starts no process. Its attach configuration is a script — how long preparing and
running take, what the "job" writes to its log, spool, ./outputs and ./logs, how it exits — and
it plays that script inside the supervisor's own process, so a whole run takes milliseconds and
the supervisor can run in the test's process (:func:`supervise_here`).

Example::

    ComputeTarget.attach(ws, "fake", FakeCompute.attach_configuration(
        log=["hello"], spool=[{"k": "metric", "name": "acc", "value": 0.9}], exit_code=0))
    run = Experiment(ws, "e").submit(ScriptRunConfig("src", "t.py", compute_target="fake"))
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferry.errors import ConfigError, TargetError
from ferry.spec import JobSpec, PrepareContext
from ferry.status import RunStatus
from ferry.targets.base import Prepared, Started, Target

KIND = "fake"

_KEYS = {
    "prepare_seconds": (int, float),
    "prepare_error": (str,),
    "run_seconds": (int, float),
    "exit_code": (int,),
    "log": (list,),
    "spool": (list,),
    "spool_lines": (list,),
    "files": (dict,),
    "outputs": (dict,),
    "logs": (dict,),
    "ignore_cancel": (bool,),
    "late_log": (list,),
    "wait_for": (str,),
    "watchdog_notes": (bool,),
}


@dataclass
class FakeCompute:
    """The attach configuration of a :class:`FakeTarget` (its script)."""

    script: dict[str, Any] = field(default_factory=dict)
    kind: str = field(default=KIND, init=False)

    @classmethod
    def attach_configuration(cls, **script: Any) -> FakeCompute:
        return cls(dict(FakeTarget.validate_config(script)))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.script)


class FakeTarget(Target):
    """Plays a script instead of running a job (see the module docstring)."""

    kind = KIND

    def __init__(self, name: str, config: Mapping[str, Any], workspace: Any) -> None:
        super().__init__(name, config, workspace)
        self._started = 0.0
        self._canceled_at: float | None = None
        self._grace = 0.0
        self._wd: Path | None = None
        self._job: JobSpec | None = None  # until its late log lines are written
        self._job_path: Path | None = None

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        for key, value in config.items():
            if key not in _KEYS:
                raise ConfigError(f"unknown fake target setting {key!r}; known: {sorted(_KEYS)}")
            if not isinstance(value, _KEYS[key]) or isinstance(value, bool) != (bool in _KEYS[key]):
                raise ConfigError(f"fake target setting {key!r} has the wrong type: {value!r}")
        return dict(config)

    def prepare(self, job: JobSpec, ctx: PrepareContext) -> Prepared:
        ctx.log("fake: preparing")
        deadline = time.monotonic() + float(self.config.get("prepare_seconds", 0))
        while time.monotonic() < deadline and not ctx.cancelled():
            time.sleep(0.01)
        if self.config.get("prepare_error"):
            raise TargetError(str(self.config["prepare_error"]))
        self._wd = job.run_dir / "fake-wd"
        for sub in ("outputs", "logs"):
            (self._wd / sub).mkdir(parents=True, exist_ok=True)
        return Prepared()

    def start(self, job: JobSpec) -> Started:
        assert self._wd is not None
        self._started = time.monotonic()
        self._job = job
        self._job_path = job.log_path
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(job.log_path, "a", encoding="utf-8") as fh:
            for line in self.config.get("log", []):
                fh.write(f"{line}\n")
        job.spool_dir.mkdir(parents=True, exist_ok=True)
        for name, text in (self.config.get("files") or {}).items():
            path = job.spool_dir / "files" / job.run_id / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(text), encoding="utf-8")
        lines = [
            json.dumps({"run": job.run_id, "ts": time.time(), **rec})
            for rec in self.config.get("spool", [])
        ] + [str(line) for line in self.config.get("spool_lines", [])]
        if lines:
            with open(job.spool_dir / "fake-1.jsonl", "a", encoding="utf-8") as fh:
                fh.write("".join(f"{line}\n" for line in lines))
        for folder in ("outputs", "logs"):
            for name, text in (self.config.get(folder) or {}).items():
                path = self._wd / folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(str(text), encoding="utf-8")
        return Started(host=os.uname().nodename)

    def poll(self) -> int | None:
        now = time.monotonic()
        if self._canceled_at is not None:
            stubborn = bool(self.config.get("ignore_cancel"))
            if not stubborn or now >= self._canceled_at + self._grace:
                return -15 if not stubborn else -9
        if now - self._started < float(self.config.get("run_seconds", 0)):
            return None
        flag = self.config.get("wait_for")
        if flag and not os.path.exists(flag):
            return None
        if self._job is not None and self.config.get("late_log"):
            with open(self._job.log_path, "a", encoding="utf-8") as fh:
                fh.write("".join(f"{line}\n" for line in self.config["late_log"]))
            self._job = None
        return int(self.config.get("exit_code", 0))

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None and time.monotonic() < deadline:
            time.sleep(min(0.01, timeout))
        return code

    def cancel(self, grace_seconds: float) -> None:
        if self._canceled_at is None:
            self._canceled_at, self._grace = time.monotonic(), grace_seconds

    def collect_outputs(self, dest: Path) -> None:
        if self._wd is None:
            return
        outputs = self._wd / "outputs"
        if outputs.is_dir() and any(outputs.iterdir()):
            outputs.rename(dest)

    def watched_dirs(self) -> dict[str, Path]:
        return {"logs": self._wd / "logs"} if self._wd is not None else {}

    def note(self, text: str) -> bool:
        """With ``watchdog_notes``, plays a job's watchdog: it takes ferry's lines while the job
        runs and refuses them once the job has ended (its control pipe is closed)."""
        if (
            not self.config.get("watchdog_notes")
            or self._job_path is None
            or self.poll() is not None
        ):
            return False
        with open(self._job_path, "a", encoding="utf-8") as fh:
            fh.write(text.rstrip("\n") + "\n")
        return True


class RecordingContext:
    """A :class:`~ferry.spec.PrepareContext` for calling ``prepare`` directly in tests: keeps
    the log lines and waits; ``cancel()`` makes ``cancelled()`` true."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.waits: list[str] = []
        self._cancelled = False

    def log(self, line: str) -> None:
        self.lines.append(line)

    def waiting(self, reason: str) -> None:
        self.waits.append(reason)

    def resumed(self) -> None:
        self.waits.append("resumed")

    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True


def supervise_here(workspace: Any, run_id: str) -> RunStatus:
    """Run a recorded run's supervisor in this process (no detached process): for tests."""
    from ferry.supervisor import Supervisor

    return Supervisor(workspace, run_id).run()
