"""``ferry env``: build with progress, list, show with the lock, prune, register."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ferry.cli.app import cli
from ferry.cli.environments import env

if "env" not in cli.commands:
    cli.add_command(env)


def ferry(workspace: Any, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["-w", str(workspace.path), *args], catch_exceptions=False)
    return result


@pytest.fixture
def requirements(awkward_dir: Path) -> Path:
    path = awkward_dir / "requirements.txt"
    path.write_text("six==1.17.0\n")
    return path


def test_build_show_list_and_prune(workspace: Any, requirements: Path) -> None:
    built = ferry(workspace, "env", "build", str(requirements))
    assert built.exit_code == 0, built.output
    assert "built in" in built.output
    again = ferry(workspace, "env", "build", str(requirements))
    assert "already built" in again.output

    shown = json.loads(ferry(workspace, "env", "show", str(requirements), "--json").output)
    assert shown["built"] and shown["hash"] and shown["size"] > 0
    assert "six==1.17.0" in shown["lock"]
    assert shown["spec"]["python"]["condaDependencies"]["pipPackages"] == ["six==1.17.0"]

    listed = json.loads(ferry(workspace, "env", "list", "--json").output)
    assert {e["name"] for e in listed["environments"]} >= {"ferry-minimal", "ferry-sklearn"}
    assert [o["hash"] for o in listed["otherBuilt"]] == [shown["hash"]]
    assert ferry(workspace, "env", "list").exit_code == 0

    dry = json.loads(
        ferry(workspace, "env", "prune", "--older-than", "0", "--dry-run", "--json").output
    )
    assert [r["hash"] for r in dry["removed"]] == [shown["hash"]]
    assert Path(shown["path"]).exists()
    pruned = ferry(workspace, "env", "prune", "--older-than", "0")
    assert "removed 1 environments" in pruned.output
    assert not Path(shown["path"]).exists()


def test_register_then_show_by_name_and_version(workspace: Any, requirements: Path) -> None:
    assert (
        "registered sk:1"
        in ferry(workspace, "env", "register", str(requirements), "-n", "sk").output
    )
    text = ferry(workspace, "env", "show", "sk:1").output
    assert "six==1.17.0" in text and "no (ferry env build sk:1)" in text
    listed = json.loads(ferry(workspace, "env", "list", "--json").output)
    assert any(e["name"] == "sk" and e["version"] == 1 for e in listed["environments"])
