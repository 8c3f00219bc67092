"""The build request sent to an SSH host or a Ray node (pure)."""

from __future__ import annotations

import pytest

from ferry.envbuild import spechash
from ferry.envbuild.remote import agent_recipe, remote_build_request
from ferry.spec import EnvironmentSpec

HELLO = {"python": [3, 11, 7], "platform": "linux-x86_64", "uv": True}


def _env(*packages: str) -> EnvironmentSpec:
    return EnvironmentSpec(name="remote", user_managed=False, pip=packages)


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


@pytest.mark.parametrize(
    ("uv", "hello_uv", "recipe"),
    [
        ("", True, spechash.AGENT_UV_RECIPE),  # uv found on the host
        ("", False, spechash.AGENT_VENV_RECIPE),  # no uv there: venv + pip
        ("", None, spechash.AGENT_RECIPE),  # the remote side did not say
        ("none", True, spechash.AGENT_VENV_RECIPE),  # never uv, even when present
        ("/opt/uv", False, spechash.AGENT_UV_RECIPE),  # a path: that uv, or a refusal
    ],
)
def test_the_recipe_follows_the_uv_setting_and_the_host(
    uv: str, hello_uv: object, recipe: str
) -> None:
    hello = {k: v for k, v in {**HELLO, "uv": hello_uv}.items() if v is not None}
    assert agent_recipe(uv, hello) == recipe
    request, digest = remote_build_request(_env("six==1.16.0"), hello, "python3", uv)
    spec = spechash.canonical_spec(
        _env("six==1.16.0"), default_python="3.11", platform="linux-x86_64", recipe=recipe
    )
    assert request["recipe"] == recipe and digest == spechash.spec_hash(spec)


def test_differently_built_environments_never_share_a_hash() -> None:
    env = _env("six==1.16.0")
    digests = {
        remote_build_request(env, {**HELLO, "uv": True}, "python3", "")[1],
        remote_build_request(env, {**HELLO, "uv": False}, "python3", "")[1],
        remote_build_request(env, {k: v for k, v in HELLO.items() if k != "uv"}, "python3", "")[1],
    }
    local = spechash.spec_hash(
        spechash.canonical_spec(env, default_python="3.11", platform="linux-x86_64")
    )
    assert len(digests | {local}) == 4  # same packages, Python and platform; four recipes
