"""The workspace's environment registry: versions, latest, curated environments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ferry.envbuild.curated import CURATED
from ferry.environment import CondaDependencies, Environment
from ferry.errors import ConfigError


def make(name: str, *packages: str) -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=list(packages))
    return env


def test_register_numbers_versions_and_get_returns_latest_or_asked(workspace: Any) -> None:
    first = make("sk", "six==1.16.0").register(workspace)
    assert first.version == 1
    second = make("sk", "six==1.17.0").register(workspace)
    assert second.version == 2
    again = make("sk", "six==1.17.0").register(workspace)
    assert again.version == 2  # an unchanged spec is not a new version
    latest = Environment.get(workspace, "sk")
    assert latest.version == 2
    assert latest.python.conda_dependencies.pip_packages == ["six==1.17.0"]
    old = Environment.get(workspace, "sk", version=1)
    assert old.python.conda_dependencies.pip_packages == ["six==1.16.0"]
    assert Environment.get(workspace, "sk", "1").version == 1


def test_unknown_names_and_versions_are_explained(workspace: Any) -> None:
    make("sk", "six").register(workspace)
    with pytest.raises(ConfigError, match=r"'nope' is registered\. Registered: sk; curated: \d+"):
        Environment.get(workspace, "nope")
    with pytest.raises(ConfigError, match="Did you mean 'AzureML-Minimal'"):
        Environment.get(workspace, "AzureML-Minimall")
    with pytest.raises(ConfigError, match="must be a whole number"):
        Environment.get(workspace, "sk", version="latest")
    with pytest.raises(ConfigError, match=r"known versions: \[1\]"):
        Environment.get(workspace, "sk", version=5)
    with pytest.raises(ConfigError, match="labels"):
        Environment.get(workspace, "sk", label="prod")


def test_curated_environments_need_no_registration(workspace: Any) -> None:
    sk = Environment.get(workspace, "ferry-sklearn")
    assert sk.version == 1
    names = {p.split("==")[0] for p in sk.python.conda_dependencies.pip_packages}
    assert names == {"numpy", "pandas", "scikit-learn", "scipy", "matplotlib", "joblib"}
    assert all("==" in p for p in sk.python.conda_dependencies.pip_packages)
    minimal = Environment.get(workspace, "ferry-minimal")
    assert minimal.python.conda_dependencies.pip_packages == []
    assert not minimal.python.user_managed_dependencies
    with pytest.raises(ConfigError, match="only version 1"):
        Environment.get(workspace, "ferry-minimal", version=2)
    with pytest.raises(ConfigError, match="clone"):
        sk.register(workspace)
    assert sk.clone("my-sklearn").register(workspace).version == 1


def test_list_has_curated_and_latest_registered(workspace: Any) -> None:
    make("a", "six").register(workspace)
    make("a", "idna").register(workspace)
    listed = Environment.list(workspace)
    assert set(listed) == {"a", *CURATED}
    assert {"ferry-minimal", "ferry-sklearn", "AzureML-Minimal"} <= set(listed)
    assert listed["a"].version == 2


def test_from_cli_spec_takes_names_versions_and_files(workspace: Any, awkward_dir: Path) -> None:
    make("sk", "six").register(workspace)
    make("sk", "idna").register(workspace)
    assert Environment.from_cli_spec(workspace, "sk:1").version == 1
    assert Environment.from_cli_spec(workspace, "sk").version == 2
    assert Environment.from_cli_spec(workspace, "ferry-minimal").name == "ferry-minimal"
    req = awkward_dir / "requirements.txt"
    req.write_text("six\n")
    from_file = Environment.from_cli_spec(workspace, str(req))
    assert from_file.python.conda_dependencies.pip_packages == ["six"]
    conda = awkward_dir / "env.yaml"
    conda.write_text("dependencies:\n  - python=3.11\n")
    assert (
        Environment.from_cli_spec(workspace, str(conda)).python.conda_dependencies.python_version
        == "3.11"
    )
    with pytest.raises(ConfigError, match="does not exist"):
        Environment.from_cli_spec(workspace, str(awkward_dir / "missing.txt"))
    with pytest.raises(ConfigError, match="must be a number"):
        Environment.from_cli_spec(workspace, "sk:latest")
