"""Workspace discovery, creation and the reference's collections."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ferry import Experiment, Workspace
from ferry.envbuild.curated import CURATED
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


def test_a_workspace_that_ferry_pointed_at_and_that_is_gone_is_refused_not_remade(
    awkward_dir: Path,
) -> None:
    """A config ferry wrote names a folder that was a workspace: when it holds none any more
    (deleted, a disk not mounted, another machine's path) it is refused with the fixes, and
    nothing is made. A hand-written config may still name a workspace to make on first use."""
    import json
    import shutil
    import subprocess
    import sys

    ws = Workspace.create(awkward_dir / "team ws")
    config = ws.write_config(awkward_dir / "proj")
    assert json.loads(config.read_text())["made"] is True
    shutil.rmtree(ws.path)
    with pytest.raises(ConfigError, match=r"holds no workspace any more .*mount it.*ferry init"):
        Workspace.from_config(awkward_dir / "proj")
    assert not ws.path.exists()
    cli = subprocess.run(
        [sys.executable, "-c", "from ferry.cli.main import main; main()", "runs", "list"],
        cwd=awkward_dir / "proj",
        capture_output=True,
        text=True,
        env={**os.environ, "FERRY_NO_DAEMON": "1"},
        timeout=60,
    )
    assert cli.returncode != 0 and "Traceback" not in cli.stderr
    assert "holds no workspace any more" in cli.stderr and not ws.path.exists()
    # `ferry init` there starts a new one, and the config names it
    init = subprocess.run(
        [sys.executable, "-c", "from ferry.cli.main import main; main()", "init", str(awkward_dir / "proj")],
        capture_output=True, text=True, env={**os.environ, "FERRY_NO_DAEMON": "1"}, timeout=60,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert Workspace.from_config(awkward_dir / "proj").path == (awkward_dir / "proj" / ".ferry")
    hand = awkward_dir / "hand" / ".ferry" / "config.json"
    hand.parent.mkdir(parents=True)
    hand.write_text(json.dumps({"workspace": str(awkward_dir / "new ws")}))
    assert Workspace.from_config(awkward_dir / "hand").path == (awkward_dir / "new ws").resolve()


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
    assert set(workspace.environments) == set(CURATED)  # the curated ones, nothing registered
    with pytest.raises(ConfigError, match="no run"):
        workspace.get_run("alpha_1_00000000")


@pytest.mark.parametrize("name", ["a", "Exp_1-b", "9" * 255])
def test_valid_experiment_names(workspace: Workspace, name: str) -> None:
    assert Experiment(workspace, name).name == name


@pytest.mark.parametrize("name", ["", "-a", "_a", "a b", "a.b", "x" * 256, "é", None])
def test_invalid_experiment_names(workspace: Workspace, name: str) -> None:
    with pytest.raises(ExperimentNameError, match="experiment name"):
        Experiment(workspace, name)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


SUBFOLDERS = ("runs", "blobs", "envs", "cache")


@pytest.mark.usefixtures("umask_022")
def test_a_workspace_ferry_creates_is_private_under_umask_022(
    awkward_dir: Path, monkeypatch: pytest.MonkeyPatch, ferry_cli: Callable[..., int]
) -> None:
    made = Workspace.create(awkward_dir / "parent" / "ws").path
    home = awkward_dir / "home"
    monkeypatch.setenv("FERRY_HOME", str(home))
    monkeypatch.chdir(awkward_dir)
    assert Workspace.from_config().path == home.resolve()  # the default workspace
    assert ferry_cli("init", str(awkward_dir / "project")) == 0
    initialised = awkward_dir / "project" / ".ferry"
    for root in (made, home, initialised):
        assert _mode(root) == 0o700, root
        for sub in SUBFOLDERS:
            assert _mode(root / sub) == 0o700, root / sub
    assert _mode(awkward_dir / "parent") == 0o755  # folders above a workspace are not ours
    assert _mode(initialised / "config.json") & 0o077 == 0


def test_private_whatever_the_umask_and_an_existing_folder_keeps_its_mode(
    awkward_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for umask in (0o000, 0o777):
        old = os.umask(umask)
        try:
            ws = Workspace.create(awkward_dir / f"umask {umask:o}")
        finally:
            os.umask(old)
        assert {_mode(p) for p in (ws.path, *(ws.path / s for s in SUBFOLDERS))} == {0o700}
    shared = awkward_dir / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="ferry.workspace"):
        Workspace.create(shared)
        Workspace.create(shared)
    assert _mode(shared) == 0o777  # not ours to change
    assert _mode(shared / "runs") == 0o700  # but what ferry made inside is private
    assert caplog.text.count("can be written by other users") == 1  # warned once


def test_an_empty_workspace_in_config_json_is_refused(awkward_dir: Path) -> None:
    cfg = awkward_dir / "p" / ".ferry" / "config.json"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('{"workspace": ""}')
    with pytest.raises(ConfigError, match='empty "workspace"'):
        Workspace.from_config(awkward_dir / "p")
    assert not (cfg.parent / "runs").exists()


def test_a_workspace_path_that_is_not_utf8_is_refused(awkward_dir: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid UTF-8"):
        Workspace.create(str(awkward_dir) + "/ws\udcff")


@pytest.fixture
def ferry_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., int]:
    from ferry.cli.main import main

    def run(*args: str) -> int:
        try:
            main(list(args))
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    return run
