"""Read a run's spool (see docs/runtime-protocol.md) into the run history, incrementally.

Only complete lines are consumed; the byte offset per spool file is remembered, so calling
:meth:`SpoolIngestor.poll` often is cheap and nothing is read twice.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ferry.errors import FerryError
from ferry.status import RunStatus
from ferry.tracking import ArtifactRecord, MetricRecord, MetricSeries, RunRecord, RunStore
from ferry.tracking.base import series_of

log = logging.getLogger("ferry.ingest")


def artifact_dir(workspace_path: Path, run_id: str) -> Path:
    return workspace_path / "runs" / run_id / "artifacts"


def safe_artifact_name(name: str) -> str | None:
    """The name with forward slashes, or None when it is absolute or climbs out with '..'."""
    norm = name.replace("\\", "/")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if not parts or norm.startswith("/") or ".." in parts:
        return None
    return "/".join(parts)


def _series(rec: dict[str, Any], run_id: str, now: float) -> MetricSeries:
    values = list(rec.get("values") or [])
    steps = rec.get("steps")
    ts = rec.get("ts")
    return MetricSeries(
        rec.get("run") or run_id,
        str(rec.get("name")),
        str(rec.get("type", "scalar")),
        values,
        list(steps) if isinstance(steps, list) and len(steps) == len(values) else None,
        list(ts) if isinstance(ts, list) and len(ts) == len(values) else [now] * len(values),
        str(rec.get("desc") or ""),
    )


def _decode(lines: list[bytes], run_id: str) -> list[dict[str, Any]]:
    """Parse spool lines, all at once when they are well formed (one call, much faster)."""
    try:
        records = json.loads(b"[" + b",".join(line for line in lines if line.strip()) + b"]")
        return [r for r in records if isinstance(r, dict)]
    except ValueError:
        pass
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            log.warning("run %s: skipped a malformed spool line: %r", run_id, line[:200])
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


class SpoolIngestor:
    """Incremental reader of one run's spool folder."""

    def __init__(self, store: RunStore, run_id: str, spool_dir: Path, workspace_path: Path) -> None:
        self.store = store
        self.run_id = run_id
        self.spool_dir = spool_dir
        self.workspace_path = workspace_path
        self._offsets: dict[str, int] = {}
        self._experiment: str | None = None
        self._target = "local"
        self.records = 0

    def _lines(self) -> Iterator[bytes]:
        try:
            names = sorted(n for n in os.listdir(self.spool_dir) if n.endswith(".jsonl"))
        except FileNotFoundError:
            return
        for name in names:
            path = self.spool_dir / name
            offset = self._offsets.get(name, 0)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size <= offset:
                continue
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(size - offset)
            end = data.rfind(b"\n")
            if end < 0:
                continue
            self._offsets[name] = offset + end + 1
            yield from data[: end + 1].splitlines()

    def poll(self) -> int:
        """Ingest every complete new record; returns how many were read."""
        lines = list(self._lines())
        if not lines:
            return 0
        pending: list[MetricSeries] = []
        singles: list[MetricRecord] = []
        count = 0
        now = time.time()
        for rec in _decode(lines, self.run_id):
            count += 1
            kind = rec.get("k")
            if kind == "metric":
                singles.append(
                    MetricRecord(
                        rec.get("run") or self.run_id,
                        str(rec.get("name")),
                        str(rec.get("type", "scalar")),
                        rec.get("value"),
                        rec.get("step"),
                        str(rec.get("desc") or ""),
                        float(rec.get("ts") or now),
                    )
                )
                continue
            if kind == "series":
                if singles:
                    pending.extend(series_of(singles))
                    singles = []
                pending.append(_series(rec, self.run_id, now))
                continue
            # keep order between metrics and other records (a child exists before its metrics)
            pending.extend(series_of(singles))
            singles = []
            if pending:
                self.store.log_series(pending)
                pending = []
            try:
                self._apply(rec)
            except FerryError as exc:
                log.warning("run %s: spool record not applied: %s", self.run_id, exc)
        pending.extend(series_of(singles))
        if pending:
            self.store.log_series(pending)
        self.records += count
        return count

    def _apply(self, rec: dict[str, Any]) -> None:
        kind = rec.get("k")
        run_id = rec.get("run") or self.run_id
        if kind == "tags":
            self.store.set_tags(
                run_id, {str(k): v if v is None else str(v) for k, v in rec["set"].items()}
            )
        elif kind == "untag":
            self.store.remove_tags(run_id, [str(k) for k in rec["keys"]])
        elif kind == "props":
            self.store.add_properties(run_id, {str(k): str(v) for k, v in rec["set"].items()})
        elif kind == "file":
            self._take_file(run_id, str(rec["name"]), str(rec["path"]))
        elif kind == "child":
            self._create_child(rec)
        elif kind == "status":
            status = RunStatus(rec["status"])
            error = (
                {"error": {"code": "UserError", "message": rec["error"]}}
                if rec.get("error")
                else None
            )
            self.store.set_status(run_id, status, error=error, at=rec.get("ts"))
        else:
            log.warning("run %s: unknown spool record kind %r", self.run_id, kind)

    def _take_file(self, run_id: str, name: str, rel_path: str) -> None:
        clean = safe_artifact_name(name)
        src = (self.spool_dir / rel_path).resolve()
        if clean is None or not src.is_relative_to(self.spool_dir.resolve()) or not src.is_file():
            log.warning("run %s: refused artifact %r at %r", self.run_id, name, rel_path)
            return
        dest = artifact_dir(self.workspace_path, run_id) / clean
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dest))
        self.store.add_artifacts(
            [
                ArtifactRecord(
                    run_id, clean, str(dest.relative_to(self.workspace_path)), dest.stat().st_size
                )
            ]
        )

    def _create_child(self, rec: dict[str, Any]) -> None:
        if self._experiment is None:
            parent = self.store.get_run(self.run_id)
            self._experiment, self._target = parent.experiment, parent.target
        self.store.create_run(
            RunRecord(
                id=str(rec["run"]),
                experiment=self._experiment,
                status=RunStatus.RUNNING,
                parent_id=str(rec.get("parent") or self.run_id),
                target=self._target,
                run_type="ferry.childrun",
                display_name=rec.get("name"),
                created_at=float(rec.get("ts") or time.time()),
                start_time=float(rec.get("ts") or time.time()),
                tags={str(k): v for k, v in (rec.get("tags") or {}).items()},
            )
        )
