"""The build request sent to an SSH host or a Ray node (pure)."""

from __future__ import annotations

from ferry.envbuild.remote import remote_build_request
from ferry.environment import Environment

HELLO = {"python": [3, 11, 7], "platform": "linux-x86_64"}


def _env(*packages: str) -> Environment:
    env = Environment("remote")
    for package in packages:
        env.python.conda_dependencies.add_pip_package(package)
    return env


def test_the_request_carries_the_packages_and_a_stable_hash() -> None:
    request, digest = remote_build_request(_env("six==1.16.0", "idna==3.7"), HELLO, "python3", "")
    assert request["hash"] == digest and request["interpreter"] == "python3"
    assert request["packages"] == ["six==1.16.0", "idna==3.7"]
    _, same = remote_build_request(
        _env("idna==3.7", "six==1.16.0"), HELLO, "/usr/bin/python3", "uv"
    )
    assert same == digest  # order and interpreter path do not change what is built


def test_the_hash_follows_the_remote_python_and_platform() -> None:
    _, a = remote_build_request(_env("six==1.16.0"), HELLO, "python3", "")
    _, b = remote_build_request(_env("six==1.16.0"), {**HELLO, "python": [3, 12, 1]}, "python3", "")
    _, c = remote_build_request(
        _env("six==1.16.0"), {**HELLO, "platform": "linux-aarch64"}, "python3", ""
    )
    assert len({a, b, c}) == 3
