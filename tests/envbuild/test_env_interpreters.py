"""Requested Python versions use an interpreter on the machine of the same major.minor version
(pyenv, uv-managed or system); a missing one is explained with the command that installs it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.envbuild.interpreters import discover, find_python, running_interpreter
from ferry.errors import ConfigError, EnvironmentBuildError

#: the pyenv versions this machine's image installs (preamble: 3.6–3.13 under ~/.pyenv/versions)
PYENV_MINORS = ((3, 8), (3, 9), (3, 10), (3, 12), (3, 13))


@pytest.fixture
def fresh_discovery() -> Iterator[None]:
    """Discovery is cached per process; tests that change what is installed start afresh."""
    discover.cache_clear()
    yield
    discover.cache_clear()


def test_the_machine_has_the_pyenv_versions_these_tests_use() -> None:
    found = {i.version[:2] for i in discover()}
    missing = [f"{a}.{b}" for a, b in PYENV_MINORS if (a, b) not in found]
    assert not missing, f"install them with `pyenv install {' '.join(missing)}`"


def test_no_request_and_a_matching_request_use_the_python_running_ferry() -> None:
    running = running_interpreter()
    assert find_python(None) == running
    major, minor, patch = running.version[:3]
    assert find_python(f"{major}.{minor}") == running
    # another patch release of the running minor version still takes the running interpreter
    assert find_python(f"{major}.{minor}.{patch + 40}") == running


@pytest.mark.parametrize(("major", "minor"), PYENV_MINORS)
def test_a_patch_pin_matches_an_interpreter_of_the_same_minor_version(
    major: int, minor: int
) -> None:
    """``python=3.8.13`` (the reference's default pin) is served by whichever 3.8 is here."""
    same_minor = [i for i in discover() if i.version[:2] == (major, minor)]
    for request in (
        f"{major}.{minor}",
        f"{major}.{minor}.0",
        f"{major}.{minor}.13",
        f"={major}.{minor}.*",
    ):
        found = find_python(request)
        assert found.version[:2] == (major, minor), request
        assert found == max(same_minor), "the newest of that minor version"
        assert os.access(found.path, os.X_OK)


def test_every_discovered_interpreter_can_be_asked_for_by_its_version() -> None:
    for interpreter in discover():
        if interpreter.version >= (3, 8):
            assert find_python(interpreter.version_text).version[:2] == interpreter.version[:2]


def test_a_missing_version_names_the_versions_found_and_how_to_install_it() -> None:
    with pytest.raises(EnvironmentBuildError) as info:
        find_python("3.99.4")
    message = str(info.value)
    assert "no Python 3.99 on this machine" in message and "3.99.4" in message
    assert running_interpreter().version_text in message
    assert "`pyenv install 3.99`" in message and "`uv python install 3.99`" in message
    assert "set_python_version" in message and "never downloads" in message


def test_too_old_and_malformed_versions_are_refused() -> None:
    with pytest.raises(EnvironmentBuildError, match="too old"):
        find_python("3.7")
    with pytest.raises(EnvironmentBuildError, match="too old"):
        find_python("2")
    with pytest.raises(ConfigError, match="not a version"):
        find_python("latest")


def test_uv_managed_interpreters_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_discovery: None
) -> None:
    """An interpreter that only uv knows about (``uv python install``) is used: here a managed
    installation made of pyenv's 3.9, with pyenv and its shims hidden from PATH."""
    pyenv_39 = max(i for i in discover() if i.version[:2] == (3, 9))
    discover.cache_clear()
    managed = tmp_path / "uv pythons"
    key = f"cpython-{pyenv_39.version_text}-linux-x86_64-gnu"
    bin_dir = managed / key / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3.9").symlink_to(pyenv_39.path)
    (bin_dir / "python3").symlink_to("python3.9")
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "empty"))
    with pytest.raises(EnvironmentBuildError, match=r"no Python 3\.9 on this machine"):
        find_python("3.9")
    discover.cache_clear()
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(managed))
    found = find_python("3.9.2")
    assert found.version == pyenv_39.version
