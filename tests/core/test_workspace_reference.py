"""The reference's workspace forms: its config.json, Workspace(sub, rg, name), its attributes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ferry import Workspace
from ferry.errors import ConfigError

REFERENCE = {"subscription_id": "0000-sub", "resource_group": "rg-ml", "workspace_name": "ws-demo"}


def _home() -> Path:
    return Path(os.environ["FERRY_HOME"])


@pytest.mark.parametrize("folder", [".azureml", "aml_config", ""])
def test_the_references_config_json_opens_the_named_workspace(
    folder: str, awkward_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (awkward_dir / folder).mkdir(parents=True, exist_ok=True)
    (awkward_dir / folder / "config.json").write_text(json.dumps(REFERENCE))
    nested = awkward_dir / "notebooks" / "deep"
    nested.mkdir(parents=True)
    ws = Workspace.from_config(nested)  # searched upward, as the reference does
    assert ws.name == "ws-demo"
    assert ws.path == (_home() / "workspaces" / "ws-demo").resolve()
    assert (ws.subscription_id, ws.resource_group, ws.location) == ("0000-sub", "rg-ml", "local")
    assert "is kept in" in capsys.readouterr().err  # where it lives, said once
    again = Workspace.from_config(nested)
    assert again.path == ws.path and "is kept in" not in capsys.readouterr().err
    details = ws.get_details()
    assert details["name"] == "ws-demo" and details["location"] == "local"
    assert "rg-ml" in details["id"] and details["workspaceid"] == again.get_details()["workspaceid"]


def test_the_reference_constructor_and_get(awkward_dir: Path) -> None:
    ws = Workspace("sub", "rg", "named-ws")
    assert ws.path == (_home() / "workspaces" / "named-ws").resolve()
    assert (ws.path / "runs").is_dir()
    assert Workspace.get("named-ws").path == ws.path
    created = Workspace.create(
        name="made-ws", subscription_id="s", resource_group="r", location="eastus2",
        create_resource_group=True,
    )  # fmt: skip
    assert created.location == "eastus2" and created.name == "made-ws"


def test_ferrys_own_config_wins_over_the_references(awkward_dir: Path) -> None:
    (awkward_dir / ".azureml").mkdir()
    (awkward_dir / ".azureml" / "config.json").write_text(json.dumps(REFERENCE))
    mine = Workspace.create(awkward_dir / "mine")
    mine.write_config(awkward_dir)
    assert Workspace.from_config(awkward_dir).path == mine.path


def test_a_training_config_json_is_not_a_workspace(awkward_dir: Path) -> None:
    (awkward_dir / "config.json").write_text(json.dumps({"lr": 0.1}))
    assert Workspace.from_config(awkward_dir).path == _home().resolve()


def test_file_name_and_a_file_path(awkward_dir: Path) -> None:
    (awkward_dir / ".azureml").mkdir()
    (awkward_dir / ".azureml" / "other.json").write_text(json.dumps(REFERENCE))
    assert Workspace.from_config(awkward_dir, _file_name="other.json").name == "ws-demo"
    assert Workspace.from_config(awkward_dir / ".azureml" / "other.json").name == "ws-demo"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{", "not valid JSON"),
        (json.dumps({"subscription_id": "s"}), "workspace_name"),
        (json.dumps([1, 2]), "workspace_name"),
    ],
)
def test_a_broken_reference_config_is_named(awkward_dir: Path, content: str, match: str) -> None:
    (awkward_dir / ".azureml").mkdir()
    (awkward_dir / ".azureml" / "config.json").write_text(content)
    with pytest.raises(ConfigError, match=match):
        Workspace.from_config(awkward_dir)


@pytest.mark.parametrize("name", ["a", "-bad", "x" * 40, "sp ace", "../up"])
def test_a_bad_workspace_name_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="workspace name"):
        Workspace("sub", "rg", name)


def test_half_a_reference_constructor_is_refused() -> None:
    with pytest.raises(ConfigError, match="workspace's name"):
        Workspace("sub", "rg")
