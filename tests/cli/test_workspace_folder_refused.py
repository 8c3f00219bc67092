"""A mistyped ``-w`` on a command that reads is refused, naming the folder and the fix; it
neither answers from nor leaves behind a new, empty workspace. Commands that make one (submit,
init) keep working in a fresh folder with no set-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ferry.cli.app import READERS
from ferry.cli.main import cli
from ferry.workspace import Workspace

READS = [
    ["runs", "list"],
    ["runs", "show", "exp_1_deadbeef"],
    ["runs", "logs", "exp_1_deadbeef"],
    ["runs", "metrics", "exp_1_deadbeef"],
    ["experiments", "list"],
    ["target", "list"],
    ["models", "list"],
    ["data", "list"],
]


@pytest.fixture
def typo(awkward_dir: Path) -> Path:
    return awkward_dir / "wrokspace"


@pytest.mark.parametrize("command", READS, ids=" ".join)
def test_a_folder_that_does_not_exist_is_refused_and_not_made(  # type: ignore[no-untyped-def]
    ferry, typo: Path, command: list[str]
) -> None:
    res = ferry(*command, workspace=typo)
    assert res.code == 2, (res.out, res.err)
    assert res.err.count("\n") == 1 and "Traceback" not in res.err, res.err
    assert f"there is no ferry workspace in {typo} (the folder does not exist)" in res.err
    assert "-w" in res.err and "ferry init --workspace-dir" in res.err
    assert not typo.exists()


def test_the_refusal_is_one_json_object_with_the_fix(ferry, typo: Path) -> None:  # type: ignore[no-untyped-def]
    res = ferry("runs", "list", "--json", workspace=typo)
    assert res.code == 2
    answer = res.json()
    assert set(answer) == {"error", "fix"}
    assert str(typo) in answer["error"]
    assert answer["fix"].startswith("check the path given to -w/--workspace")
    assert not typo.exists()


def test_a_folder_that_holds_no_workspace_is_refused_untouched(  # type: ignore[no-untyped-def]
    ferry, awkward_dir: Path
) -> None:
    folder = awkward_dir / "just files"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    res = ferry("runs", "list", workspace=folder)
    assert res.code == 2 and "(the folder holds none)" in res.err, res.err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_project_folder_points_at_its_workspace_inside(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    project = awkward_dir / "project"
    assert ferry("init", str(project), workspace=None).code == 0
    res = ferry("runs", "list", workspace=project)
    assert res.code == 2 and f"its project's workspace is {project / '.ferry'}" in res.err
    assert ferry("runs", "list", "--json", workspace=project / ".ferry").json() == []


def test_ferry_workspace_variable_is_checked_the_same(typo: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from ferry.cli.main import main; main()", "runs", "list"],
        env={**_env(), "FERRY_WORKSPACE": str(typo)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert f"there is no ferry workspace in {typo}" in done.stderr and "FERRY_WORKSPACE" in (
        done.stderr
    )
    assert not typo.exists()


def test_submit_makes_a_workspace_in_a_fresh_folder(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    fresh = awkward_dir / "fresh ws"
    script = awkward_dir / "proj" / "train.py"
    script.parent.mkdir()
    script.write_text("print('made it')\n")
    res = ferry("submit", str(script), workspace=fresh)
    assert res.code == 0, res.err
    listed = ferry("runs", "list", "--json", workspace=fresh).json()
    assert [r["status"] for r in listed] == ["Completed"]


def test_an_initialised_workspace_without_runs_is_read(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    made = Workspace.create(awkward_dir / "empty ws")
    assert ferry("runs", "list", "--json", workspace=made.path).json() == []
    assert ferry("experiments", "list", "--json", workspace=made.path).code == 0


def test_workspace_show_still_describes_a_folder_to_be_made(ferry, typo: Path) -> None:  # type: ignore[no-untyped-def]
    """Editors ask where commands would go before the first submit makes the workspace."""
    shown = ferry("workspace", "show", "--json", workspace=typo).json()
    assert shown["chosenBy"] == "option" and Path(shown["path"]) == typo.resolve()
    assert shown["name"] == typo.name and shown["kind"] == "local"
    assert not typo.exists()  # described, not made
    text = ferry("workspace", "show", workspace=typo)
    assert text.code == 0 and str(typo.resolve()) in text.out and not typo.exists()
    made = Workspace.create(typo)  # once it is made, the same description
    assert ferry("workspace", "show", "--json", workspace=typo).json() == {
        **shown,
        "name": made.name,
    }


def test_every_guarded_name_is_a_command() -> None:
    """A renamed command must not silently drop out of the check."""
    names: set[str] = set()

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            names.add(" ".join(path))

    walk(cli, [])
    assert names >= READERS, READERS - names


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "FERRY_WORKSPACE"}
