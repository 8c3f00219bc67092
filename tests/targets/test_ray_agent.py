"""The node agent without a cluster: transfers, materialising, ranks under the watchdog, streaming,
outputs, the lease, the per-user node folder; and the proof that Ray can ship it to a node where
ferry is not installed (pickled by value)."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ferry.agent.bundle import bundle
from ferry.agent.proc import pid_alive
from ferry.snapshot import LocalBlobStore, take_snapshot
from ferry.spec import RunPaths
from ferry.targets.ray.agent import NodeAgent
from ferry.targets.ray.shipping import register_node_code
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
    agent = NodeAgent(str(tmp_path / "node dir"), "exp_1_abcdef01", 0, lease)
    assert agent.ensure_agent(*bundle())
    return agent


def _launch(argv: list[str], rank: int = 0, **variables: str) -> dict[str, Any]:
    log = "user_logs/std_log.txt" if rank == 0 else f"user_logs/std_log_rank_{rank}.txt"
    return {"rank": rank, "argv": argv, "set": variables, "prepend": {}, "unset": [], "log": log}


def _until_ended(agent: NodeAgent, writer: StreamWriter | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = agent.step(0.1, ["logs"])
        if writer is not None:
            writer.apply(result)
        if result["ended"] is not None:
            while result["more"]:
                result = agent.step(0, ["logs"])
                if writer is not None:
                    writer.apply(result)
            ended: dict[str, Any] = result["ended"]
            return ended
    raise AssertionError("the ranks did not end")


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
    assert agent.materialize(snapshot_id, ["logs"])["missing"] == []
    agent.start_env({"python": sys.executable})
    assert agent.env_status()["result"]["python"] == sys.executable
    launches = [_launch([sys.executable, "job.py"], rank, RANK=str(rank)) for rank in (0, 1)]
    agent.start(launches, 2.0, 1 << 20)
    writer = StreamWriter(RunPaths(tmp_path / "run"))
    ended = _until_ended(agent, writer)
    assert ended == {"code": 0, "reason": "exit", "failed_rank": None, "failed_at": None}
    assert (tmp_path / "run/user_logs/std_log.txt").read_text() == "rank 0\n"
    assert (tmp_path / "run/user_logs/std_log_rank_1.txt").read_text() == "rank 1\n"
    writer.apply(agent.step(0, ["logs"]))
    assert (writer.workdir / "logs" / "progress.txt").read_text() == "half"
    items, cursor = agent.outputs([0, 0])
    assert cursor is None and items[0]["path"] == "deep/w.bin" and items[0]["data"] == b"x" * 100
    agent.cleanup(False)
    assert not Path(agent.run_root).exists()


def test_stop_ends_every_process_of_the_ranks(tmp_path: Path) -> None:
    """The ranks' watchdog answers for what they start, also children that left their group."""
    agent = _agent(tmp_path)
    os.makedirs(agent.wd)
    code = (
        "import os, subprocess, time\n"
        "kids = [subprocess.Popen(['sleep', '300'], start_new_session=True),\n"
        "        subprocess.Popen(['sleep', '300'], process_group=0)]\n"
        "open('pids.tmp', 'w').write(' '.join(str(k.pid) for k in kids))\n"
        "os.replace('pids.tmp', 'pids')\n"
        "time.sleep(300)\n"
    )
    agent.start([_launch([sys.executable, "-c", code])], 1.0, 1 << 20)
    pids_file = Path(agent.wd, "pids")
    deadline = time.monotonic() + 20
    while not pids_file.exists():
        assert time.monotonic() < deadline, "the children never started"
        time.sleep(0.05)
    children = [int(p) for p in pids_file.read_text().split()]
    agent.stop(0.5)
    ended = _until_ended(agent)
    assert ended["reason"] == "cancel" and ended["failed_rank"] is None
    deadline = time.monotonic() + 10
    while any(pid_alive(c) for c in children):
        assert time.monotonic() < deadline, "a child outlived the stop"
        time.sleep(0.05)
    agent.cleanup(False)


def test_the_lease_stops_ranks_nobody_follows(tmp_path: Path) -> None:
    agent = _agent(tmp_path, lease=0.5)
    os.makedirs(agent.wd)
    agent.start([_launch([sys.executable, "-c", "import time; time.sleep(60)"])], 0.5, 1 << 20)
    time.sleep(1.5)  # no call for three leases: the supervisor is gone
    ended = agent.step(5.0, None)["ended"]
    assert ended is not None and ended["reason"] == "lease", ended
    log = Path(agent.run_root, "user_logs/std_log.txt").read_text()
    assert "has been gone" in log and "lease" in log
    agent.cleanup(False)


def test_the_node_folder_is_the_node_users_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)  # a /tmp-like folder other users may enter
    agent = NodeAgent(str(shared), "exp_1_abcdef01", 0, 60.0)
    with pytest.raises(RuntimeError, match="open to other users"):
        agent.hello()
    made = NodeAgent(str(tmp_path / "fresh" / "node"), "exp_1_abcdef01", 0, 60.0)
    assert os.stat(made.root).st_mode & 0o777 == 0o700
    made.cleanup(False)


def test_ray_ships_the_agent_by_value_to_nodes_without_ferry(tmp_path: Path) -> None:
    """Unpickled where ``import ferry`` fails, the agent still materialises and runs ranks."""
    import ray

    store, snapshot_id, sizes = _snapshot(tmp_path)
    blobs = [(d, store.path(d).read_bytes()) for d in sizes]
    register_node_code()
    payload = ray.cloudpickle.dumps((NodeAgent, bundle(), blobs, snapshot_id))
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
        agent_class, files, blobs, snapshot_id = pickle.loads(open({str(tmp_path / "payload.pkl")!r}, "rb").read())
        agent = agent_class({str(tmp_path / "node")!r}, "exp_1_00000000", 0, 60.0)
        assert agent.ensure_agent(*files)
        agent.put_blobs(blobs, "sha256")
        assert agent.materialize(snapshot_id, ["logs"])["missing"] == []
        launch = {{"rank": 0, "argv": [sys.executable, "job.py"], "set": {{"RANK": "0"}},
                   "prepend": {{}}, "unset": [], "log": "user_logs/std_log.txt"}}
        agent.start([launch], 1.0, 1 << 20)
        while (ended := agent.step(0.1, None)["ended"]) is None:
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
    (tmp_path / "node dir").mkdir(mode=0o700)  # as an earlier agent made it
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


def test_logs_stream_across_compactions_on_the_node(tmp_path: Path) -> None:
    """The node caps the ranks' logs (head + marker + tail); what reaches the run folder has
    every line at most once, in order, with the marker where lines were elided, and is capped."""
    agent = _agent(tmp_path)
    os.makedirs(agent.wd)
    code = (
        "import sys, time\n"
        "for i in range(30000):\n"
        "    sys.stdout.write(f'line {i:08d}\\n')\n"
        "    if i % 3000 == 0:\n"
        "        sys.stdout.flush(); time.sleep(0.05)\n"
    )
    agent.start([_launch([sys.executable, "-c", code])], 1.0, 40_000)
    writer = StreamWriter(RunPaths(tmp_path / "run"), max_bytes=40_000)
    assert _until_ended(agent, writer)["code"] == 0
    writer.close()
    local = (tmp_path / "run" / "user_logs" / "std_log.txt").read_bytes()
    assert len(local) <= 60_000 + 500  # 420 kB printed
    numbers = [int(n) for n in re.findall(rb"line (\d{8})\n", local)]
    assert numbers[0] == 0 and numbers[-1] == 29_999
    assert all(a < b for a, b in itertools.pairwise(numbers))
    assert b"bytes of output elided here" in local
    agent.cleanup(False)
