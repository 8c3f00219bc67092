"""``ferry env build --docker`` ahead of a run, and ``ferry env prune`` removing unused images."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from docker_helpers import ferry_images

from ferry.cli.app import cli
from ferry.cli.environments import env
from ferry.envbuild.docker_engine import client
from ferry.envbuild.docker_prune import use_record

if "env" not in cli.commands:  # the fast CLI adds its commands lazily
    cli.add_command(env)


def ferry(workspace: Any, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["-w", str(workspace.path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_env_build_makes_the_image_ahead_and_prune_removes_it_once_unused(
    workspace: Any, awkward_dir: Path, engine: Any
) -> None:
    requirements = awkward_dir / "requirements.txt"
    # a specification of this test's own: the session's engine keeps every image, and another
    # module's six==1.17.0 would already be built
    requirements.write_text("six>=1.17.0,<1.18\n")
    built = " ".join(ferry(workspace, "env", "build", "--docker", str(requirements)).output.split())
    assert "image ferry-env:" in built and "built in" in built, built
    assert "+ six==1.17.0" in built, "the build's own lines are shown"
    again = json.loads(
        ferry(workspace, "env", "build", "--docker", "--json", str(requirements)).output
    )
    tag = again["image"]
    assert again["builtNow"] is False and tag in ferry_images(client())
    kept = json.loads(ferry(workspace, "env", "prune", "--json").output)["images"]
    assert tag in kept["keptRecent"] and kept["removed"] == []
    old = time.time() - 40 * 86400
    os.utime(use_record(workspace.envs_dir, tag.split(":", 1)[1]), (old, old))
    dry = json.loads(ferry(workspace, "env", "prune", "--dry-run", "--json").output)["images"]
    assert dry["removed"] == [tag] and tag in ferry_images(client())
    text = ferry(workspace, "env", "prune").output
    assert f"removed image {tag}" in text
    assert tag not in ferry_images(client())
