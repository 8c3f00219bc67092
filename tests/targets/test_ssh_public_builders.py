"""The reference's configuration builders — ``RemoteCompute`` (SSH), ``RayCluster``,
``SparkCompute`` — are plain data: importing them, and making a configuration, loads none of
asyncssh, ray or pyspark (each kind's libraries come with its target, when a run needs it).
Checked in fresh interpreters, through ``sys.modules``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("asyncssh", "ray", "pyspark", "py4j")


def _loaded_after(code: str) -> dict[str, object]:
    program = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        heavy = {list(HEAVY)!r}
        print(json.dumps({{"heavy": [m for m in heavy if m in sys.modules],
                           "result": globals().get("result")}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_importing_the_builders_loads_no_target_library() -> None:
    assert _loaded_after("from ferry import RemoteCompute, RayCluster, SparkCompute")["heavy"] == []


def test_making_configurations_loads_no_target_library() -> None:
    out = _loaded_after(
        """
        from ferry import RemoteCompute, RayCluster, SparkCompute
        result = [
            RemoteCompute.attach_configuration(username="me", address="10.0.0.4").to_dict()["address"],
            RayCluster.attach_configuration(address="ray://head:10001").to_dict()["address"],
            SparkCompute.attach_configuration(master="local[2]").to_dict()["master"],
        ]
        """
    )
    assert out == {"heavy": [], "result": ["10.0.0.4", "ray://head:10001", "local[2]"]}


def test_the_libraries_are_there_for_the_runs() -> None:
    """The other side: the targets themselves do import them (else the checks above prove
    nothing about a lazy import that never happens)."""
    out = _loaded_after(
        """
        from ferry.targets.registry import target_class
        target_class("ssh"); target_class("ray")
        """
    )
    assert {"asyncssh", "ray"} <= set(out["heavy"])  # type: ignore[arg-type]


def test_without_the_ray_library_the_builder_says_what_to_install() -> None:
    hide = textwrap.dedent(
        """
        import sys
        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name == "ray" or name.startswith("ray."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Hide())
        from ferry import RayCluster      # importing works
        RayCluster.attach_configuration(address="auto")
        """
    )
    done = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True)
    assert done.returncode != 0 and "pip install 'ferry[ray]'" in done.stderr


def test_a_bad_setting_is_refused_by_the_kind_at_once() -> None:
    from ferry import RayCluster, RemoteCompute, SparkCompute
    from ferry.errors import ConfigError

    with pytest.raises(ConfigError, match="ssh_port"):
        RemoteCompute.attach_configuration(username="me", address="h", ssh_port=70000)
    with pytest.raises(ConfigError, match="ray://host:port"):
        RayCluster.attach_configuration(address="head")
    with pytest.raises(ConfigError, match="master"):
        SparkCompute.attach_configuration(master="nowhere")
