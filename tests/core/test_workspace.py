"""Workspace discovery, creation and the reference's collections."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry import Experiment, Workspace
from ferry.errors import ConfigError, ExperimentNameError


def test_from_config_searches_upward_then_falls_back_to_ferry_home(
    awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = awkward_dir / "home"
    monkeypatch.setenv("FERRY_HOME", str(home))
    monkeypatch.chdir(awkward_dir)
    assert Workspace.from_config().path == home.resolve()
    assert (home / "ferry.db").exists() or (home / "runs").is_dir()

    ws = Workspace.create(awkward_dir / "team ws")
    ws.write_config(awkward_dir / "proj")
    deep = awkward_dir / "proj" / "a" / "b"
    deep.mkdir(parents=True)
    assert Workspace.from_config(deep).path == ws.path
    monkeypatch.chdir(deep)
    assert Workspace.from_config().path == ws.path
    assert Workspace.from_config(awkward_dir / "proj" / ".ferry" / "config.json").path == ws.path


def test_bad_config_files_are_clear_errors(awkward_dir: Path) -> None:
    cfg = awkward_dir / "p" / ".ferry" / "config.json"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('{"name": "x"}')
    with pytest.raises(ConfigError, match="must hold"):
        Workspace.from_config(awkward_dir / "p")


def test_collections_and_get_run(workspace: Workspace) -> None:
    Experiment(workspace, "alpha")
    assert list(workspace.experiments) == ["alpha"]
    assert list(workspace.compute_targets) == ["local"]
    assert set(workspace.environments) == {"ferry-minimal", "ferry-sklearn"}  # curated
    with pytest.raises(ConfigError, match="no run"):
        workspace.get_run("alpha_1_00000000")


@pytest.mark.parametrize("name", ["a", "Exp_1-b", "9" * 255])
def test_valid_experiment_names(workspace: Workspace, name: str) -> None:
    assert Experiment(workspace, name).name == name


@pytest.mark.parametrize("name", ["", "-a", "_a", "a b", "a.b", "x" * 256, "é", None])
def test_invalid_experiment_names(workspace: Workspace, name: str) -> None:
    with pytest.raises(ExperimentNameError, match="experiment name"):
        Experiment(workspace, name)
