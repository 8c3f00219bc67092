"""Building environments with uv: pins honoured, cached, isolated, failures clear and clean."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from envbuild_helpers import pip_env, run_python

from ferry.envbuild import EnvCache, resolve
from ferry.envbuild import conda as conda_mod
from ferry.environment import Environment
from ferry.errors import EnvironmentBuildError

SMALL = ("six==1.17.0", "idna==3.20")


def published_and_leftovers(root: Path) -> tuple[list[str], list[str]]:
    names = [p.name for p in root.iterdir()] if root.exists() else []
    return [n for n in names if not n.startswith(".") and not n.endswith(".lock")], [
        n for n in names if n.startswith(".")
    ]


def test_pins_are_honoured_and_the_lock_is_kept(envs_root: Path) -> None:
    lines: list[str] = []
    resolved = resolve(pip_env("small", *SMALL).to_spec(), envs_root, lines.append)
    assert resolved.built
    assert run_python(resolved, "import six, idna; print(six.__version__, idna.__version__)") == (
        "1.17.0 3.20"
    )
    assert resolved.lock is not None
    assert "six==1.17.0" in resolved.lock.splitlines()
    assert "idna==3.20" in resolved.lock.splitlines()
    built = EnvCache(envs_root).read(resolved.spec_hash or "")
    assert built is not None
    assert built.meta["spec"]["pip"] == ["idna==3.20", "six==1.17.0"]
    assert built.meta["python"]["version"].startswith("3.")
    assert (built.path / ".last-use").exists()
    compiled = list(built.path.glob("lib/python*/site-packages/idna/__pycache__/*.pyc"))
    assert compiled, "the build byte-compiles (the machine may set PYTHONDONTWRITEBYTECODE)"
    assert any("building" in line for line in lines)
    assert any("+ six==1.17.0" in line for line in lines), "uv's output reaches the log"
    assert published_and_leftovers(envs_root)[1] == []


def test_reuse_is_fast_and_invokes_no_installer(envs_root: Path, monkeypatch: Any) -> None:
    resolve(pip_env("small", *SMALL).to_spec(), envs_root)

    def no_processes(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"reuse started a process: {args}")

    import subprocess

    monkeypatch.setattr(subprocess, "Popen", no_processes)
    monkeypatch.setattr(subprocess, "run", no_processes)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        resolved = resolve(pip_env("small", *reversed(SMALL)).to_spec(), envs_root)
        times.append(time.perf_counter() - t)
        assert not resolved.built
    assert min(times) < 0.05


def test_the_same_spec_written_differently_reuses_the_environment(envs_root: Path) -> None:
    first = resolve(pip_env("small", *SMALL).to_spec(), envs_root)
    second = resolve(pip_env("other-name", "IDNA == 3.20", "Six==1.17.0").to_spec(), envs_root)
    assert second.spec_hash == first.spec_hash and not second.built


def test_the_environment_has_none_of_ferrys_dependencies(envs_root: Path) -> None:
    resolved = resolve(pip_env("small", *SMALL).to_spec(), envs_root)
    code = (
        "import importlib.util, sys; "
        "print([m for m in ('ferry', 'sqlalchemy', 'click', 'yaml', 'filelock', 'rich', 'uv') "
        "if importlib.util.find_spec(m)], sys.prefix == sys.base_prefix)"
    )
    assert run_python(resolved, code) == "[] False"


def test_environment_variables_apply_at_run_time_without_a_rebuild(envs_root: Path) -> None:
    env = pip_env("small", *SMALL)
    env.environment_variables["FERRY_TEST_SEED"] = "42"
    resolved = resolve(env.to_spec(), envs_root)
    assert not resolved.built
    assert resolved.variables["FERRY_TEST_SEED"] == "42"
    assert resolved.variables["VIRTUAL_ENV"] == str(Path(resolved.python).parent.parent)
    code = "import os, sys; print(os.environ['FERRY_TEST_SEED'], sys.prefix == os.environ['VIRTUAL_ENV'])"
    assert run_python(resolved, code) == "42 True"


def test_failed_build_reports_the_resolver_and_publishes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "envs"
    with pytest.raises(EnvironmentBuildError) as info:
        resolve(pip_env("impossible", "six==1.17.0", "numpy==0.0.0").to_spec(), root)
    message = str(info.value)
    assert "environment 'impossible' could not be built" in message
    assert "numpy==0.0.0" in message and "unsatisfiable" in message
    assert published_and_leftovers(root) == ([], [])


def test_missing_python_version_fails_before_building(tmp_path: Path) -> None:
    root = tmp_path / "envs"
    with pytest.raises(EnvironmentBuildError, match=r"no Python 3\.99 .*Found: "):
        resolve(pip_env("future", "six", python="3.99").to_spec(), root)
    assert published_and_leftovers(root) == ([], [])


def test_docker_is_refused_by_the_local_build(tmp_path: Path) -> None:
    env = pip_env("boxed", "six")
    env.docker.enabled = True
    with pytest.raises(EnvironmentBuildError, match=r"set env\.docker\.enabled = False"):
        resolve(env.to_spec(), tmp_path / "envs")


def test_user_managed_environments_resolve_to_their_interpreter(tmp_path: Path) -> None:
    env = Environment("mine", _default=True)
    env.environment_variables["A"] = "1"
    resolved = resolve(env.to_spec(), tmp_path / "envs")
    # the reference's default interpreter path, "python", is the target's default: here, the
    # interpreter running ferry (not a path guessed back from the submitter's)
    assert env.python.interpreter_path == "python" and env.to_spec().interpreter is None
    assert resolved.python == sys.executable
    assert resolved.variables == {"A": "1"} and resolved.spec_hash is None
    assert not (tmp_path / "envs").exists()
    env.python.interpreter_path = "/bin/sh"  # an explicit interpreter is used as given
    assert resolve(env.to_spec(), tmp_path / "envs").python == "/bin/sh"


def test_conda_only_packages_are_named_when_no_conda_is_around(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(conda_mod, "find_conda", lambda: None)
    env = pip_env("cuda", "six")
    env.python.conda_dependencies.add_conda_package("cudatoolkit=11.8")
    env.python.conda_dependencies.add_conda_package("mkl")
    with pytest.raises(EnvironmentBuildError, match=r"conda-only packages: cudatoolkit=11\.8, mkl"):
        resolve(env.to_spec(), tmp_path / "envs")


def test_conda_packages_come_from_the_index_without_conda(
    envs_root: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(conda_mod, "find_conda", lambda: None)
    env = pip_env("conda-six")
    env.python.conda_dependencies.add_conda_package("six=1.17")
    env.python.conda_dependencies.add_conda_package("pip")
    resolved = resolve(env.to_spec(), envs_root)
    assert run_python(resolved, "import six; print(six.__version__)") == "1.17.0"
    env.python.conda_dependencies.add_conda_package("ferry-no-such-conda-package-x")
    with pytest.raises(EnvironmentBuildError) as info:
        resolve(env.to_spec(), envs_root)
    assert "conda-only packages: ferry-no-such-conda-package-x" in str(info.value)


def test_an_environment_whose_python_vanished_is_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "envs"
    resolved = resolve(pip_env("small", "six==1.17.0").to_spec(), root)
    link = Path(resolved.python)
    os.unlink(link)
    os.symlink(tmp_path / "gone" / "python3", link)
    again = resolve(pip_env("small", "six==1.17.0").to_spec(), root)
    assert again.built and run_python(again, "import six; print(six.__version__)") == "1.17.0"


def test_a_requested_python_version_builds_with_that_interpreter(tmp_path: Path) -> None:
    import sys

    from ferry.envbuild.interpreters import discover

    others = [i for i in discover(False) if i.version[:2] != sys.version_info[:2]]
    others = [i for i in others if i.version >= (3, 8)]
    if not others:
        pytest.skip("only one Python version on this machine")
    wanted = ".".join(map(str, others[0].version[:2]))
    resolved = resolve(
        pip_env("other-python", "six==1.17.0", python=wanted).to_spec(), tmp_path / "envs"
    )
    code = "import sys, six; print('%d.%d' % sys.version_info[:2], six.__version__)"
    assert run_python(resolved, code) == f"{wanted} 1.17.0"
