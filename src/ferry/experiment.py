"""Experiment: a named group of runs in a workspace; ``submit`` starts one.

Example::

    run = Experiment(ws, "diabetes").submit(ScriptRunConfig("src", "train.py"), tags={"team": "a"})
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError, ExperimentNameError
from ferry.status import RunStatus, parse_status
from ferry.tracking import RunQuery

if TYPE_CHECKING:
    from ferry.run import Run
    from ferry.workspace import Workspace

NAME_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,254}$", re.ASCII)


def validate_experiment_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ExperimentNameError(
            f"experiment name {name!r} is not valid: use 1-255 characters, starting with a letter "
            "or digit, followed by letters, digits, '_' or '-' (e.g. 'diabetes-ridge')"
        )
    return name


class Experiment:
    """A named group of runs; the entry point for submitting."""

    def __init__(
        self, workspace: Workspace, name: str, _skip_name_validation: bool = False, **_: Any
    ) -> None:
        self.workspace = workspace
        self.name = name if _skip_name_validation else validate_experiment_name(name)
        workspace.store.ensure_experiment(self.name)

    def submit(self, config: Any, tags: Mapping[str, Any] | None = None, **kwargs: Any) -> Run:
        """Submit a ScriptRunConfig (or a sweep configuration); returns the Run at once."""
        from ferry.script_run_config import ScriptRunConfig
        from ferry.submit import submit_script

        if isinstance(config, ScriptRunConfig):
            unknown = set(kwargs) - {"run_id", "_parent_run_id"}
            if unknown:
                raise ConfigError(f"unknown submit arguments: {', '.join(sorted(unknown))}")
            return submit_script(
                self,
                config,
                tags=tags,
                run_id=kwargs.get("run_id"),
                parent_run_id=kwargs.get("_parent_run_id"),
            )
        submit_fn = getattr(config, "_ferry_submit", None)
        if callable(submit_fn):
            run: Run = submit_fn(self, tags=tags, **kwargs)
            return run
        raise ConfigError(
            f"cannot submit a {type(config).__name__}; submit a ScriptRunConfig (or a sweep config)"
        )

    def get_runs(
        self,
        type: str | None = None,
        tags: str | Mapping[str, Any] | None = None,
        properties: str | Mapping[str, Any] | None = None,
        include_children: bool = False,
        status: str | RunStatus | None = None,
    ) -> Iterator[Run]:
        """Runs of this experiment, newest first, filtered like the reference."""
        from ferry.run import Run

        records = self.workspace.store.list_runs(
            RunQuery(
                experiment=self.name,
                top_level_only=not include_children,
                tags=_filter(tags),
                properties=_filter(properties),
                statuses=[status if isinstance(status, RunStatus) else parse_status(status)]
                if status
                else None,
            )
        )
        for record in records:
            if type is None or record.run_type == type:
                yield Run(self, record.id, _record=record)

    def start_logging(
        self,
        *args: Any,
        outputs: str | None = None,
        snapshot_directory: str | os.PathLike[str] | None = ".",
        display_name: str | None = None,
        **kwargs: Any,
    ) -> Run:
        """An interactive run in this process; use it as a context manager."""
        from ferry.interactive import start_interactive_run

        return start_interactive_run(
            self,
            outputs=outputs,
            snapshot_directory=Path(snapshot_directory) if snapshot_directory is not None else None,
            display_name=display_name,
        )

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"


def _filter(value: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {value: None}
    return {str(k): None if v is None else str(v) for k, v in value.items()}
