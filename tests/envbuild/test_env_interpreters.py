"""Requested Python versions use an interpreter on the machine; a missing one is explained."""

from __future__ import annotations

import sys

import pytest

from ferry.envbuild.interpreters import discover, find_python, running_interpreter
from ferry.errors import ConfigError, EnvironmentBuildError

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_no_request_and_a_matching_request_use_the_python_running_ferry() -> None:
    assert find_python(None) == running_interpreter()
    assert find_python(RUNNING) == running_interpreter()


def test_every_discovered_interpreter_can_be_asked_for() -> None:
    for interpreter in discover():
        if interpreter.version >= (3, 8):
            found = find_python(interpreter.version_text)
            assert found.version == interpreter.version


def test_a_missing_version_names_the_versions_found_and_how_to_choose() -> None:
    with pytest.raises(EnvironmentBuildError) as info:
        find_python("3.99")
    message = str(info.value)
    assert "no Python 3.99 on this machine" in message
    assert running_interpreter().version_text in message
    assert "set_python_version" in message and "never downloads" in message


def test_too_old_and_malformed_versions_are_refused() -> None:
    with pytest.raises(EnvironmentBuildError, match="too old"):
        find_python("3.7")
    with pytest.raises(EnvironmentBuildError, match="too old"):
        find_python("2")
    with pytest.raises(ConfigError, match="not a version"):
        find_python("latest")
