"""Experiments as the reference manages them: ids, tags, archiving, listing, deleting, submit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ferry import Experiment, ScriptRunConfig, Workspace
from ferry.errors import ConfigError
from ferry.experiment import ViewType


def _any(value: Any) -> Any:
    """A value of the wrong type, passed on as a caller without a type checker would."""
    return value


def test_an_experiment_has_a_stable_id_and_mutable_tags(workspace: Workspace) -> None:
    exp = Experiment(workspace, "tagged")
    other = Experiment(workspace, "tagged")  # another handle on the same experiment
    assert exp.id == other.id and len(exp.id) == 36
    assert exp.id != Experiment(workspace, "different").id
    exp.tag("DeploymentCandidate")
    exp.tag("modifiedBy", "Master CI")
    exp.set_tags({"modifiedBy": "release pipeline", "n": 3})
    assert other.tags == {"DeploymentCandidate": None, "modifiedBy": "release pipeline", "n": "3"}
    other.remove_tags(["n", "never-set"])
    other.remove_tags("DeploymentCandidate")
    assert exp.tags == {"modifiedBy": "release pipeline"}


def test_archived_experiments_are_hidden_and_come_back(workspace: Workspace) -> None:
    for name in ("alpha", "beta", "gamma"):
        Experiment(workspace, name)
    beta = Experiment(workspace, "beta")
    beta.archive()
    assert beta.archived_time is not None and beta.archived_time.endswith("Z")
    assert sorted(workspace.experiments) == ["alpha", "gamma"]
    assert [e.name for e in Experiment.list(workspace)] == ["alpha", "gamma"]
    assert [e.name for e in Experiment.list(workspace, view_type=ViewType.ArchivedOnly)] == ["beta"]
    names = [e.name for e in Experiment.list(workspace, view_type=ViewType.All)]
    assert names == ["alpha", "beta", "gamma"]
    assert Experiment(workspace, "beta").archived_time is not None  # opening keeps it archived
    beta.reactivate()
    assert beta.archived_time is None
    assert sorted(workspace.experiments) == ["alpha", "beta", "gamma"]


def test_list_filters_by_name_and_tags(workspace: Workspace) -> None:
    Experiment(workspace, "a").set_tags({"team": "x", "stage": "dev"})
    Experiment(workspace, "b").set_tags({"team": "y"})
    Experiment(workspace, "c")
    assert [e.name for e in Experiment.list(workspace, experiment_name="b")] == ["b"]
    assert [e.name for e in Experiment.list(workspace, tags="team")] == ["a", "b"]
    assert [e.name for e in Experiment.list(workspace, tags={"team": "x"})] == ["a"]
    assert [e.name for e in Experiment.list(workspace, tags={"team": None, "stage": "dev"})] == [
        "a"
    ]
    assert Experiment.list(workspace, experiment_name="nope") == []
    listed = Experiment.list(workspace, experiment_name="a")[0]
    assert listed.id == Experiment(workspace, "a").id and listed.tags["stage"] == "dev"


def test_only_an_empty_experiment_is_deleted(workspace: Workspace) -> None:
    empty = Experiment(workspace, "empty")
    Experiment.delete(workspace, empty.id)
    assert [e.name for e in Experiment.list(workspace, view_type=ViewType.All)] == []
    used = Experiment(workspace, "used")
    with used.start_logging(snapshot_directory=None, outputs=False) as run:
        run.log("x", 1)
    with pytest.raises(ConfigError, match=r"'used' holds 1 run; .*archive\(\)"):
        Experiment.delete(workspace, used.id)
    assert run.get_metrics() == {"x": 1}  # nothing of it went


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e, ws: e.archive(), "there is no experiment 'gone'"),
        (lambda e, ws: e.reactivate(), "there is no experiment 'gone'"),
        (lambda e, ws: e.tag("a", "b"), "there is no experiment 'gone'"),
        (lambda e, ws: e.remove_tags(["a"]), "there is no experiment 'gone'"),
        (lambda e, ws: e.tags, "no longer exists in this workspace"),
        (lambda e, ws: Experiment.delete(ws, e.id), "there is no experiment with id"),
    ],
)
def test_changing_a_deleted_experiment_is_a_clear_error(
    workspace: Workspace, change: Callable[[Experiment, Workspace], object], message: str
) -> None:
    gone = Experiment(workspace, "gone")
    _ = gone.id
    Experiment.delete(workspace, gone.id)
    with pytest.raises(ConfigError, match=message):
        change(gone, workspace)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ws: Experiment.list(ws, view_type="Everything"), "unknown view_type"),
        (lambda ws: Experiment.list(ws, tags=_any(["a"])), "a name or a dict"),
        (lambda ws: Experiment.delete(ws, "not-an-id"), "no experiment with id 'not-an-id'"),
        (lambda ws: Experiment.delete(ws, _any(5)), "experiment_id must be a str"),
        (lambda ws: Experiment(ws, "e").reactivate(new_name="f"), "Cannot rename an experiment"),
        (lambda ws: Experiment(ws, "e").set_tags(_any("a")), "set_tags expects a dict"),
        (lambda ws: Experiment(ws, "e").tag(_any(5)), "tag names must be non-empty"),
        (lambda ws: Experiment(ws, "e").remove_tags([""]), "tag names must be non-empty"),
    ],
)
def test_bad_experiment_input_is_a_clear_error(
    workspace: Workspace, call: Callable[[Workspace], object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        call(workspace)


def test_an_archived_experiment_takes_no_new_runs_until_reactivated(
    workspace: Workspace, awkward_dir: Path
) -> None:
    (awkward_dir / "t.py").write_text("print('ran')\n")
    exp = Experiment(workspace, "shelved")
    exp.archive()
    with pytest.raises(ConfigError, match=r"'shelved' is archived: .*reactivate"):
        exp.submit(ScriptRunConfig(str(awkward_dir), "t.py"))
    with pytest.raises(ConfigError, match="'shelved' is archived"):
        Experiment(workspace, "shelved").start_logging(snapshot_directory=None)
    assert list(exp.get_runs()) == []
    exp.reactivate()
    run = exp.submit(ScriptRunConfig(str(awkward_dir), "t.py"))
    assert run.wait_for_completion()["status"] == "Completed"


def test_submit_passes_the_reference_arguments_through_with_a_note(
    workspace: Workspace, awkward_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (awkward_dir / "t.py").write_text("print('ran')\n")
    exp = Experiment(workspace, "passthrough")
    with caplog.at_level(logging.WARNING, logger="ferry"):
        run = exp.submit(ScriptRunConfig(str(awkward_dir), "t.py"), credential_passthrough=True)
    assert any(
        "submit(credential_passthrough=...) changes nothing" in r.message for r in caplog.records
    )
    assert run.wait_for_completion()["status"] == "Completed"
    with pytest.raises(ConfigError, match="unknown submit arguments: colour"):
        exp.submit(ScriptRunConfig(str(awkward_dir), "t.py"), colour="blue")
