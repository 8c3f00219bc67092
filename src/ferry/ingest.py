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
from ferry.tracking import ArtifactRecord, MetricRecord, RunRecord, RunStore

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
        metrics: list[MetricRecord] = []
        count = 0
        for line in self._lines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                log.warning("run %s: skipped a malformed spool line: %r", self.run_id, line[:200])
                continue
            count += 1
            kind = rec.get("k")
            if kind == "metric":
                metrics.append(
                    MetricRecord(
                        run_id=rec.get("run") or self.run_id,
                        name=str(rec.get("name")),
                        type=str(rec.get("type", "scalar")),
                        value=rec.get("value"),
                        step=rec.get("step"),
                        description=str(rec.get("desc") or ""),
                        ts=float(rec.get("ts") or time.time()),
                    )
                )
                continue
            if metrics:  # keep order between metrics and other records
                self.store.log_metrics(metrics)
                metrics = []
            try:
                self._apply(rec)
            except FerryError as exc:
                log.warning("run %s: spool record not applied: %s", self.run_id, exc)
        if metrics:
            self.store.log_metrics(metrics)
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
