"""Experiment: a named group of runs in a workspace; ``submit`` starts one.

As the reference: each experiment has a stable ``id`` and mutable ``tags``; ``archive()`` hides
it from ``Experiment.list`` and ``ws.experiments`` (``ViewType`` chooses what a listing shows)
and ``reactivate()`` brings it back; ``Experiment.delete(ws, id)`` removes one.

Where ferry differs, it says so when it happens:

- The reference lets ``Experiment(ws, name)`` on an archived name create a new experiment of
  the same name. Here a name is one experiment: an archived one is opened as it is (its runs can
  be read), and ``submit``/``start_logging`` on it are refused with how to reactivate it.
- ``Experiment.delete`` deletes only an experiment without runs. The reference's service also
  deletes runs (hence its 240 s timeout), but a run history is not recoverable and ferry has no
  run deletion: an experiment with runs is refused, pointing at ``archive()``.

Example::

    exp = Experiment(ws, "diabetes")
    run = exp.submit(ScriptRunConfig("src", "train.py"), tags={"team": "a"})
    exp.tag("owner", "ana")
    [e.name for e in Experiment.list(ws, view_type=ViewType.All)]
"""

from __future__ import annotations

import builtins
import html
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError, ExperimentNameError
from ferry.run_state import run_type_matches
from ferry.status import RunStatus, parse_status
from ferry.tracking import ExperimentRecord, RunQuery

if TYPE_CHECKING:
    from ferry.interactive import InteractiveRun
    from ferry.run import Run
    from ferry.workspace import Workspace

NAME_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,254}$", re.ASCII)
#: submit() arguments of the reference that mean nothing here: accepted with a note
_NOTED_SUBMIT_ARGUMENTS = {
    "credential_passthrough": "ferry runs the job with your own identity and files",
}

log = logging.getLogger("ferry")


def validate_experiment_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ExperimentNameError(
            f"experiment name {name!r} is not valid: use 1-255 characters, starting with a letter "
            "or digit, followed by letters, digits, '_' or '-' (e.g. 'diabetes-ridge')"
        )
    return name


class ViewType:
    """Which experiments :meth:`Experiment.list` shows, by their archive state."""

    ActiveOnly = "ActiveOnly"
    All = "All"
    ArchivedOnly = "ArchivedOnly"


_VIEWS: dict[str, bool | None] = {
    ViewType.ActiveOnly: False,
    ViewType.All: None,
    ViewType.ArchivedOnly: True,
}


class Experiment:
    """A named group of runs; the entry point for submitting."""

    def __init__(
        self, workspace: Workspace, name: str, _skip_name_validation: bool = False, **_: Any
    ) -> None:
        self.workspace = workspace
        self.name = name if _skip_name_validation else validate_experiment_name(name)
        workspace.store.ensure_experiment(self.name)
        self._cached: ExperimentRecord | None = None

    # the stored experiment -----------------------------------------------------------------
    def _stored(self) -> ExperimentRecord:
        found = self.workspace.store.find_experiment(self.name)
        if found is None:  # deleted through another handle
            raise ConfigError(
                f"experiment {self.name!r} no longer exists in this workspace (it was deleted); "
                f"Experiment(ws, {self.name!r}) creates it again"
            )
        self._cached = found
        return found

    @property
    def id(self) -> str:
        """The experiment's stable id (a UUID), as given to :meth:`delete`."""
        return (self._cached or self._stored()).id

    @property
    def tags(self) -> dict[str, str | None]:
        """The experiment's tags (read now: another handle may have changed them)."""
        return dict(self._stored().tags)

    @property
    def archived_time(self) -> str | None:
        """When the experiment was archived (ISO-8601 UTC), None while it is active."""
        from ferry.run_state import iso_time

        return iso_time(self._stored().archived_time)

    def tag(self, key: str, value: str | None = None) -> None:
        """Tag the experiment with ``key`` and an optional value (tags are mutable)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Add or change tags; tags not named are left as they are."""
        if not isinstance(tags, Mapping):
            raise ConfigError(f"set_tags expects a dict of tags, got {type(tags).__name__}")
        clean = {_tag_key(k): None if v is None else str(v) for k, v in tags.items()}
        self.workspace.store.set_experiment_tags(self.name, clean)

    def remove_tags(self, tags: Iterable[str]) -> None:
        """Remove the tags named (a tag that is not set is ignored)."""
        keys = [tags] if isinstance(tags, str) else builtins.list(tags)
        self.workspace.store.remove_experiment_tags(self.name, [_tag_key(k) for k in keys])

    def archive(self) -> None:
        """Hide the experiment from :meth:`list` and ``ws.experiments``; its runs are kept and
        can still be read. New runs are refused until :meth:`reactivate`."""
        self._cached = self.workspace.store.set_experiment_archived(self.name, True)

    def reactivate(self, new_name: str | None = None) -> None:
        """Make an archived experiment active again (a no-op for an active one)."""
        if new_name is not None:  # the reference refuses it too: "Cannot rename an experiment"
            raise ConfigError(
                "Cannot rename an experiment: reactivate() takes no new_name. Submit to a new "
                f"Experiment(ws, {new_name!r}) to start another experiment"
            )
        self._cached = self.workspace.store.set_experiment_archived(self.name, False)

    @staticmethod
    def list(
        workspace: Workspace,
        experiment_name: str | None = None,
        view_type: str = ViewType.ActiveOnly,
        tags: str | Mapping[str, Any] | None = None,
    ) -> builtins.list[Experiment]:
        """The workspace's experiments by name: active ones unless ``view_type`` says
        otherwise, only ``experiment_name`` when given, only those with ``tags`` (a tag name,
        or ``{name: value}``; a None value matches any value)."""
        if view_type not in _VIEWS:
            raise ConfigError(
                f"unknown view_type {view_type!r}; use ViewType.ActiveOnly, ViewType.All or "
                "ViewType.ArchivedOnly"
            )
        wanted = _filter(tags) or {}
        found = []
        for record in workspace.store.list_experiment_records(archived=_VIEWS[view_type]):
            if experiment_name is not None and record.name != experiment_name:
                continue
            if not all(
                key in record.tags and (value is None or record.tags[key] == value)
                for key, value in wanted.items()
            ):
                continue
            experiment = Experiment(workspace, record.name, _skip_name_validation=True)
            experiment._cached = record
            found.append(experiment)
        return found

    @staticmethod
    def delete(workspace: Workspace, experiment_id: str) -> None:
        """Delete the experiment with this id; only one without runs (see the module notes)."""
        if not isinstance(experiment_id, str):
            raise ConfigError(f"experiment_id must be a str (experiment.id), got {experiment_id!r}")
        record = workspace.store.find_experiment_by_id(experiment_id)
        if record is not None:
            workspace.store.delete_experiment(record.name)
            return
        raise ConfigError(
            f"there is no experiment with id {experiment_id!r} in this workspace; "
            "Experiment.list(ws, view_type=ViewType.All) lists them with their ids"
        )

    # runs -------------------------------------------------------------------------------------
    def _refuse_if_archived(self, doing: str) -> None:
        if self._stored().archived:
            raise ConfigError(
                f"experiment {self.name!r} is archived: it takes no new runs ({doing}). "
                "Reactivate it with experiment.reactivate(), or use another experiment name"
            )

    def submit(self, config: Any, tags: Mapping[str, Any] | None = None, **kwargs: Any) -> Run:
        """Submit a ScriptRunConfig (or a sweep configuration); returns the Run at once."""
        from ferry.script_run_config import ScriptRunConfig
        from ferry.submit import submit_script

        self._refuse_if_archived("submit")
        for name, why in _NOTED_SUBMIT_ARGUMENTS.items():
            if kwargs.pop(name, None):
                log.warning("ferry: submit(%s=...) changes nothing here: %s", name, why)
        if isinstance(config, ScriptRunConfig):
            unknown = set(kwargs) - {"run_id", "_parent_run_id"}
            if unknown:
                raise ConfigError(
                    f"unknown submit arguments: {', '.join(sorted(unknown))}; a ScriptRunConfig "
                    "takes tags=, run_id= and credential_passthrough="
                )
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
        """Runs of this experiment, newest first, filtered like the reference (``type`` by the
        reference's name, e.g. ``azureml.scriptrun``, or ferry's)."""
        from ferry.run import typed_run

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
            if run_type_matches(record.run_type, type):
                yield typed_run(self, record)

    def start_logging(
        self,
        *args: Any,
        outputs: str | bool | None = None,
        snapshot_directory: str | os.PathLike[str] | None = ".",
        display_name: str | None = None,
        **kwargs: Any,
    ) -> InteractiveRun:
        """An interactive run in this process; use it as a context manager. ``outputs``: the
        folder kept when the run ends (default ``./outputs``; False for none)."""
        from ferry.interactive import start_interactive_run

        self._refuse_if_archived("start_logging")
        return start_interactive_run(
            self,
            outputs=outputs,
            snapshot_directory=Path(snapshot_directory) if snapshot_directory is not None else None,
            display_name=display_name,
        )

    # display ----------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"

    def _repr_html_(self) -> str:
        """A one-row table for Jupyter: name and workspace."""
        return (
            "<table style='width:100%'><tr><th>Name</th><th>Workspace</th></tr>"
            f"<tr><td>{html.escape(self.name)}</td>"
            f"<td>{html.escape(str(self.workspace.name))}</td></tr></table>"
        )


def _tag_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"tag names must be non-empty strings, got {key!r}")
    return key


def _filter(value: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {value: None}
    if not isinstance(value, Mapping):
        raise ConfigError(f"a tag or property filter is a name or a dict, got {value!r}")
    return {str(k): None if v is None else str(v) for k, v in value.items()}
