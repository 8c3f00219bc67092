"""Environments as the reference behaves, on real runs: the default environment installs what is
added to it and builds nothing otherwise, curated names run scripts written for them, and the
reference's helpers (build_local, pip_version, from_existing_conda_environment,
get_image_details)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from ferry import Environment, Experiment, Run, RunConfiguration, ScriptRunConfig, Workspace
from ferry.envbuild.conda import CondaDependencies
from ferry.errors import ConfigError, TargetError

REPORT = """\
import json, os, sys
from azureml.core import Run
run = Run.get_context()
run.log("minor", sys.version_info[1])
print("EXE", sys.executable)
print("PREFIX", sys.prefix)
"""


def _submit(ws: Workspace, folder: Path, body: str, **kwargs) -> Run:  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return Experiment(ws, "env-reference").submit(
        ScriptRunConfig(str(folder), "train.py", **kwargs)
    )


def _log(run: Run) -> str:
    details = run.wait_for_completion(raise_on_error=False)
    text = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text(encoding="utf-8")
    assert details["status"] == "Completed", text
    return text


def test_the_default_environment_is_not_user_managed_and_builds_nothing(
    workspace: Workspace, awkward_dir: Path
) -> None:
    rc = RunConfiguration()
    assert rc.environment.python.user_managed_dependencies is False
    assert rc.to_dict()["environment"]["python"]["userManagedDependencies"] is False
    run = _submit(workspace, awkward_dir / "plain", REPORT)
    log = _log(run)
    assert f"PREFIX {sys.prefix}\n" in log, "the running interpreter: no build"
    assert run.get_metrics()["minor"] == sys.version_info[1]
    assert list(workspace.envs_dir.glob("*/ferry-env.json")) == []
    assert "ferry.environment.hash" not in run.get_properties()


def test_packages_added_to_the_default_environment_are_installed(
    workspace: Workspace, awkward_dir: Path
) -> None:
    rc = RunConfiguration()
    rc.environment.python.conda_dependencies.add_pip_package("six==1.17.0")
    rc.environment.python.conda_dependencies.add_pip_package("azureml-defaults")
    rc.script = "train.py"
    body = REPORT + "import six; print('SIX', six.__version__)\n"
    run = _submit(workspace, awkward_dir / "added", body, run_config=rc)
    log = _log(run)
    assert "SIX 1.17.0\n" in log
    built = [p.parent for p in workspace.envs_dir.glob("*/ferry-env.json")]
    assert len(built) == 1 and f"PREFIX {built[0]}\n" in log
    assert "azureml-defaults: not installed" in log
    assert "azureml" not in (built[0] / "lock.txt").read_text()
    assert run.get_metrics()["minor"] == sys.version_info[1], "the runtime's Run.get_context()"


def test_a_script_for_azureml_minimal_runs_on_python_38(
    workspace: Workspace, awkward_dir: Path
) -> None:
    env = Environment.get(workspace, "AzureML-Minimal")
    run = _submit(workspace, awkward_dir / "minimal", REPORT, environment=env)
    log = _log(run)
    assert run.get_metrics()["minor"] == 8
    assert f"PREFIX {workspace.envs_dir}" in log


def test_build_local_pip_version_and_image_details(
    workspace: Workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requirements = awkward_dir / "requirements.txt"
    requirements.write_text("six==1.17.0\n")
    env = Environment.from_pip_requirements("pinned-pip", requirements, pip_version="24.0")
    assert "pip==24.0" in env.python.conda_dependencies.pip_packages
    before = env.get_image_details(workspace)
    assert before["kind"] == "built" and before["ready"] is False and before["path"] is None
    assert before["hash"] == env.spec_hash() and "six==1.17.0" in before["packages"]
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(TargetError, match="no Docker engine answers"):
        env.build_local(workspace, useDocker=True)  # an image is built: an engine is needed
    resolved = env.build_local(workspace, useDocker=False)
    assert resolved.lock is not None and "pip==24.0" in resolved.lock.splitlines()
    after = env.get_image_details(workspace)
    assert after["ready"] is True and after["imageExistsInRegistry"] is True
    assert after["path"] == str(workspace.envs_dir / after["hash"])
    assert after["python"]["path"] == resolved.python
    assert after["python"]["version"].startswith(f"{sys.version_info[0]}.{sys.version_info[1]}.")
    assert {"pip==24.0", "six==1.17.0"} <= set(after["packages"])
    json.dumps(after)  # plain data

    default = RunConfiguration().environment.get_image_details(workspace)
    assert default["kind"] == "interpreter" and default["hash"] is None
    assert default["python"]["path"] == sys.executable and default["python"]["targetDefault"]


def _conda_stand_in(folder: Path, export: str) -> Path:
    """conda cannot be installed on this machine (neither the package index nor Debian has it):
    a stand-in executable answers ``env export`` as conda does, and records its arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "conda"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import sys, pathlib\n"
        f"pathlib.Path({str(folder / 'argv.json')!r}).write_text(__import__('json').dumps(sys.argv[1:]))\n"
        "if sys.argv[1:4] != ['env', 'export', '--name'] or sys.argv[4] != 'proj':\n"
        "    sys.exit('EnvironmentLocationNotFound: Not a conda environment: ' + sys.argv[-1])\n"
        f"sys.stdout.write({export!r})\n"
    )
    exe.chmod(0o755)
    return exe


def test_from_existing_conda_environment_reads_its_packages(
    awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = (
        "name: proj\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.10.13=hd12c33a_0\n"
        "  - numpy=1.26.4=py310hb13e2d6_0\n  - pip:\n    - six==1.17.0\n"
        "variables:\n  OMP_NUM_THREADS: '2'\nprefix: /opt/conda/envs/proj\n"
    )
    exe = _conda_stand_in(awkward_dir / "bin", export)
    monkeypatch.setenv("FERRY_CONDA_EXE", str(exe))
    env = Environment.from_existing_conda_environment("copied", "proj")
    deps = env.python.conda_dependencies
    assert env.name == "copied" and not env.python.user_managed_dependencies
    assert deps.python_version == "3.10.13"
    assert deps.conda_packages == ["numpy=1.26.4"] and deps.pip_packages == ["six==1.17.0"]
    assert deps.channels == ["conda-forge"] and env.environment_variables == {
        "OMP_NUM_THREADS": "2"
    }
    args = json.loads((awkward_dir / "bin" / "argv.json").read_text())
    assert args == ["env", "export", "--name", "proj", "--no-builds"]
    with pytest.raises(ConfigError, match="could not export the conda environment 'nope'"):
        Environment.from_existing_conda_environment("copied", "nope")


def test_from_existing_conda_environment_without_conda_says_how_to_get_micromamba(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable in ("FERRY_CONDA_EXE", "MAMBA_EXE", "CONDA_EXE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        Environment.from_existing_conda_environment("copied", "proj")
    message = str(info.value)
    assert "needs conda or micromamba" in message and "install micromamba" in message
    assert "micromamba-installation" in message and "from_conda_specification" in message


def test_the_reference_default_conda_dependencies_stay_as_written() -> None:
    """The machinery drops azureml-defaults; the environment itself keeps what the user wrote
    (saved files and run definitions show it as the reference would)."""
    deps = CondaDependencies.create(pip_packages=["azureml-defaults", "scikit-learn"])
    env = Environment("kept")
    env.python.conda_dependencies = deps
    assert Environment.from_dict(env.to_dict()).python.conda_dependencies.pip_packages == [
        "azureml-defaults",
        "scikit-learn",
    ]
    alone = Environment("alone")
    alone.python.conda_dependencies = CondaDependencies.create(pip_packages=["scikit-learn"])
    assert env.spec_hash() == alone.spec_hash()
