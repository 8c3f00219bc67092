"""The node agent without a cluster: transfers, materialising, ranks, streaming, outputs; and the
proof that Ray can ship it to a node where ferry is not installed (pickled by value)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ferry.snapshot import LocalBlobStore, take_snapshot
from ferry.targets.ray.agent import NodeAgent
from ferry.targets.ray.shipping import node_kit
from ferry.targets.ray.streams import StreamWriter


def _snapshot(tmp_path: Path) -> tuple[LocalBlobStore, str, dict[str, int]]:
    source = tmp_path / "src ü"
    (source / "pkg").mkdir(parents=True)
    (source / "job.py").write_text(
        "import os, sys\nprint('rank', os.environ.get('RANK'), flush=True)\n"
        "os.makedirs('outputs/deep', exist_ok=True)\n"
        "open('outputs/deep/w.bin', 'wb').write(b'x' * 100)\n"
        "open('logs/progress.txt', 'w').write('half')\n"
        "sys.exit(int(os.environ.get('EXIT', '0')))\n"
    )
    (source / "pkg" / "data.txt").write_text("data")
    store = LocalBlobStore(tmp_path / "blobs")
    result = take_snapshot(source, store, tmp_path / "cache")
    from ferry.snapshot import load_manifest

    manifest = load_manifest(store, result.snapshot_id)
    sizes = {e.digest: e.size for _, e in manifest.files()}
    sizes[result.snapshot_id] = store.path(result.snapshot_id).stat().st_size
    return store, result.snapshot_id, sizes


def _agent(tmp_path: Path, lease: float = 60.0) -> NodeAgent:
    return NodeAgent(str(tmp_path / "node dir"), "exp_1_abcdef01", 0, lease, node_kit())


def _send_all(agent: NodeAgent, store: LocalBlobStore, sizes: dict[str, int]) -> None:
    missing = agent.missing(sorted(sizes))
    assert sorted(missing) == sorted(sizes)
    agent.put_blobs([(d, store.path(d).read_bytes()) for d in missing], "sha256")
    assert agent.missing(sorted(sizes)) == []


def test_blobs_are_verified_and_big_ones_arrive_in_parts(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    data = os.urandom(3000)
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(ValueError, match="corrupt"):
        agent.put_blobs([(digest, data[:-1] + b"!")], "sha256")
    assert agent.missing([digest]) == [digest]
    agent.put_blob_part(digest, data[:1000], 0, 3000, "sha256")
    assert agent.missing([digest]) == [digest]
    agent.put_blob_part(digest, data[1000:], 1000, 3000, "sha256")
    assert agent.missing([digest]) == []


def test_a_run_on_the_agent_end_to_end(tmp_path: Path) -> None:
    store, snapshot_id, sizes = _snapshot(tmp_path)
    agent = _agent(tmp_path)
    _send_all(agent, store, sizes)
    assert agent.ensure_runtime("runtime-test", None) is False
    assert agent.ensure_runtime("runtime-test", {".ferry-runtime.json": b"{}", "a/b.py": b""})
    assert agent.materialize(snapshot_id)["missing"] == []
    agent.start_env({"python": sys.executable})
    assert agent.env_status()["result"]["python"] == sys.executable
    launches = [
        {
            "rank": rank,
            "argv": [sys.executable, "job.py"],
            "set": {"RANK": str(rank), "EXIT": "0"},
            "prepend": {},
            "unset": [],
            "log": "user_logs/std_log.txt" if rank == 0 else f"user_logs/std_log_rank_{rank}.txt",
        }
        for rank in (0, 1)
    ]
    agent.start(launches, 2.0)
    writer = StreamWriter(tmp_path / "run")
    ended = None
    deadline = time.monotonic() + 30
    while ended is None and time.monotonic() < deadline:
        result = agent.step(0.1, True)
        writer.apply(result)
        ended = result["ended"]
    while result["more"]:
        result = agent.step(0, True)
        writer.apply(result)
    assert ended == {"code": 0, "failed_rank": None, "failed_at": None}
    assert (tmp_path / "run/user_logs/std_log.txt").read_text() == "rank 0\n"
    assert (tmp_path / "run/user_logs/std_log_rank_1.txt").read_text() == "rank 1\n"
    writer.apply(agent.step(0, True))
    assert (writer.logs_dir / "progress.txt").read_text() == "half"
    items, cursor = agent.outputs([0, 0])
    assert cursor is None and items[0]["path"] == "deep/w.bin" and items[0]["data"] == b"x" * 100
    agent.cleanup(False)
    assert not Path(agent.run_root).exists()


def test_the_lease_stops_ranks_nobody_follows(tmp_path: Path) -> None:
    agent = _agent(tmp_path, lease=0.5)
    os.makedirs(agent.wd)
    launch = {
        "rank": 0,
        "argv": [sys.executable, "-c", "import time; time.sleep(60)"],
        "set": {},
        "prepend": {},
        "unset": [],
        "log": "user_logs/std_log.txt",
    }
    agent.start([launch], 0.5)
    deadline = time.monotonic() + 15
    while agent.group.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not agent.group.running()
    log = Path(agent.run_root, "user_logs/std_log.txt").read_text()
    assert "has been gone" in log and "lease" in log
    agent.cleanup(False)


def test_ray_ships_the_agent_by_value_to_nodes_without_ferry(tmp_path: Path) -> None:
    """Unpickled where ``import ferry`` fails, the agent still materialises and runs ranks."""
    import ray

    store, snapshot_id, sizes = _snapshot(tmp_path)
    blobs = [(d, store.path(d).read_bytes()) for d in sizes]
    payload = ray.cloudpickle.dumps((NodeAgent, node_kit(), blobs, snapshot_id))
    (tmp_path / "payload.pkl").write_bytes(payload)
    code = textwrap.dedent(
        f"""
        import sys, time
        class NoFerry:
            def find_spec(self, name, path=None, target=None):
                if name == "ferry" or name.startswith("ferry."):
                    raise ModuleNotFoundError("ferry is not installed on this node", name=name)
        sys.meta_path.insert(0, NoFerry())
        import pickle
        agent_class, kit, blobs, snapshot_id = pickle.loads(open({str(tmp_path / "payload.pkl")!r}, "rb").read())
        agent = agent_class({str(tmp_path / "node")!r}, "exp_1_00000000", 0, 60.0, kit)
        agent.put_blobs(blobs, "sha256")
        assert agent.materialize(snapshot_id)["missing"] == []
        launch = {{"rank": 0, "argv": [sys.executable, "job.py"], "set": {{"RANK": "0"}},
                   "prepend": {{}}, "unset": [], "log": "user_logs/std_log.txt"}}
        agent.start([launch], 1.0)
        while (ended := agent.step(0.1, False)["ended"]) is None:
            pass
        assert ended["code"] == 0, ended
        assert "ferry" not in sys.modules
        print("ok without ferry")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "ok without ferry" in result.stdout


def test_run_folders_abandoned_for_a_day_are_removed(tmp_path: Path) -> None:
    runs = tmp_path / "node dir" / "runs"
    old, recent = runs / "old_1_00000000" / "node-0", runs / "recent_1_00000000" / "node-0"
    for node in (old, recent):
        node.mkdir(parents=True)
        (node / ".alive").touch()
    two_days_ago = time.time() - 2 * 86400
    os.utime(old / ".alive", (two_days_ago, two_days_ago))
    os.utime(old.parent, (two_days_ago, two_days_ago))
    agent = _agent(tmp_path)
    assert not old.parent.exists() and recent.exists()
    assert Path(agent.run_root, ".alive").exists()
    agent.cleanup(False)
