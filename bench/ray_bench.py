"""The ray target against Ray Jobs on the same warm local Ray head (issue 6).

1. A trivial script: submit → first line of the script's output, and submit → done, for
   ``ferry submit hello.py -t ray`` and ``ray job submit --working-dir … -- python hello.py``
   (each a fresh CLI process, as a user types them). Goal: ferry at least 2× faster.
2. A 300 MB source folder: ferry's first submit (sends it) and a resubmit (sends nothing);
   what Ray Jobs does with the same folder as ``--working-dir``.
3. A 2 × 2 distributed job (two Ray nodes, two processes each): submit → every rank printed.

The head (and a second node for 3.) run on loopback in a helper process, stopped at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from _common import VENV_BIN, median, scratch, write_result

REPEAT = 5
BIG_FILES, BIG_FILE_BYTES = 300, 1_000_000
ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}

_HELPER = textwrap.dedent(
    """
    import json, socket, sys
    from ray.cluster_utils import Cluster
    def free():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    dash = free()
    head = {"num_cpus": 2, "object_store_memory": 200_000_000, "include_dashboard": True,
            "dashboard_host": "127.0.0.1", "dashboard_port": dash,
            "dashboard_agent_listen_port": free()}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    for _ in range(int(sys.argv[1])):
        cluster.add_node(num_cpus=2, object_store_memory=200_000_000)
    cluster.wait_for_nodes()
    print(json.dumps({"address": cluster.address, "dashboard": f"http://127.0.0.1:{dash}"}),
          flush=True)
    sys.stdin.read()
    cluster.shutdown()
    """
)


def start_cluster(extra_nodes: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HELPER, str(extra_nodes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def stop_cluster(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(120)


def follow(cmd: list[str], env: dict[str, str], marker: str) -> tuple[float, float, str]:
    """Run ``cmd``; seconds until a stdout line contains ``marker``, seconds until it ends."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **ENV, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = float("nan")
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if first != first and marker in line:
            first = time.perf_counter() - started
    proc.wait()
    total = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}):\n{''.join(lines[-30:])}")
    return first, total, "".join(lines)


def main() -> None:
    work = scratch("ray")
    src = work / "src"
    src.mkdir()
    (src / "hello.py").write_text("print('hello from the job', flush=True)\n")
    ferry = str(VENV_BIN / "ferry")
    ray = str(VENV_BIN / "ray")
    env = {"FERRY_HOME": str(work / "ws")}
    proc, info = start_cluster(extra_nodes=1)
    try:
        subprocess.run(
            [ferry, "target", "attach", "ray", "--type", "ray", "--address", info["address"]],
            env={**os.environ, **ENV, **env},
            check=True,
            capture_output=True,
        )
        ferry_cmd = [ferry, "submit", str(src / "hello.py"), "-t", "ray", "-e", "bench"]
        ray_cmd = [ray, "job", "submit", "--address", info["dashboard"], "--working-dir", str(src)]
        ray_cmd += ["--", "python", "hello.py"]
        marker = "hello from the job"
        follow(ferry_cmd, env, marker)  # warm both paths once
        for attempt in range(30):  # the head's job agent registers a little after start
            try:
                follow(ray_cmd, env, marker)
                break
            except RuntimeError:
                if attempt == 29:
                    raise
                time.sleep(2)
        f_first, f_total, r_first, r_total = [], [], [], []
        for _ in range(REPEAT):
            a, b, _ = follow(ferry_cmd, env, marker)
            f_first.append(a)
            f_total.append(b)
            a, b, _ = follow(ray_cmd, env, marker)
            r_first.append(a)
            r_total.append(b)
        big = big_folder(work, ferry, ray, env, info)
        dist = distributed_launch(work, env)
    finally:
        stop_cluster(proc)
    fm, ft, rm, rt = median(f_first), median(f_total), median(r_first), median(r_total)
    write_result(
        "ray",
        f"""
## Ray target vs Ray Jobs on the same warm local head (issue 6)

Machine: 2 cores; a Ray head and a second node on loopback (`ray.cluster_utils.Cluster`,
200 MB object stores). Each command is a fresh CLI process; median of {REPEAT}.

| trivial script | submit → first line | submit → done |
|---|---|---|
| `ray job submit --working-dir src -- python hello.py` | {rm:.2f} s | {rt:.2f} s |
| `ferry submit hello.py -t ray` | {fm:.2f} s | {ft:.2f} s |
| **ratio (Ray Jobs / ferry)** | **{rm / fm:.1f}×** | **{rt / ft:.1f}×** |

Goal: ferry ≥ 2× faster. ferry's run keeps its snapshot, metrics, outputs and logs; a ferry
supervisor is a Ray driver of its own (connect ≈ 1 s of the figure above).

### A {BIG_FILES * BIG_FILE_BYTES / 1e6:.0f} MB source folder ({BIG_FILES} incompressible files)

| | wall time | notes |
|---|---|---|
| ferry, first submit | {big["first"]:.2f} s | snapshot, then {big["first_sent"]} sent to the node, once |
| ferry, resubmit (unchanged) | {big["again"]:.2f} s | {"sent again!" if big["resent"] else "0 bytes sent"}; snapshot {big["again_snapshot"]:.2f} s, prepare {big["again_prepare"]:.2f} s (connect, placement, a copy from the node's cache) |
| Ray Jobs `--working-dir` | {big["ray"]:.2f} s | {big["ray_note"]} |

### 2 × 2 distributed job (PyTorchConfiguration(process_count=4, node_count=2))

Submit → every one of the 4 ranks (2 per Ray node) printed its first line: **{dist["all"]:.2f} s**
(first rank {dist["first"]:.2f} s; the same submit with one process: {dist["single"]:.2f} s).
""",
    )


def big_folder(
    work: Path, ferry: str, ray: str, env: dict[str, str], info: dict[str, str]
) -> dict[str, Any]:
    big = work / "big"
    big.mkdir()
    for i in range(BIG_FILES):
        (big / f"shard_{i:03d}.bin").write_bytes(os.urandom(BIG_FILE_BYTES))
    (big / "hello.py").write_text("print('hello from the job', flush=True)\n")
    cmd = [ferry, "submit", str(big / "hello.py"), "-t", "ray", "-e", "big"]
    _, first, out = follow(cmd, env, "hello")
    sent = next((line for line in out.splitlines() if "MiB of the snapshot" in line), "")
    _, again, out = follow(cmd, env, "hello")
    resent = any("MiB of the snapshot" in line for line in out.splitlines())
    full_env = {**os.environ, **ENV, **env}
    listed = subprocess.run(
        [ferry, "runs", "list", "-e", "big", "--json", "-n", "1"],
        env=full_env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    run_id = json.loads(listed.stdout)[0]["runId"]
    shown = subprocess.run(
        [ferry, "runs", "show", run_id, "--json"],
        env=full_env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    timings = json.loads(shown.stdout)["timings"]
    ray_cmd = [ray, "job", "submit", "--address", info["dashboard"], "--working-dir", str(big)]
    ray_cmd += ["--", "python", "hello.py"]
    started = time.perf_counter()
    done = subprocess.run(
        ray_cmd, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=600
    )
    elapsed = time.perf_counter() - started
    text = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode:
        reason = next((t for t in reversed(text) if "MiB" in t or "size" in t.lower()), text[-1])
        note = f"refused (exit {done.returncode}): `{reason.strip()[:160]}`"
    else:
        note = "accepted: zipped and uploaded again on every submit"
    return {
        "first": first,
        "first_sent": sent.split("ferry: sent ")[-1].split(" of")[0] if sent else "?",
        "again": again,
        "again_prepare": timings.get("prepare", float("nan")),
        "again_snapshot": timings.get("snapshot", float("nan")),
        "resent": resent,
        "ray": elapsed,
        "ray_note": note,
    }


def distributed_launch(work: Path, env: dict[str, str]) -> dict[str, float]:
    os.environ.update({**ENV, **env})
    from ferry import Experiment, PyTorchConfiguration, ScriptRunConfig, Workspace

    ws = Workspace.from_config()
    src = work / "dist"
    src.mkdir()
    (src / "ranks.py").write_text("import os\nprint('rank', os.environ.get('RANK'), flush=True)\n")

    def launch(config: Any, ranks: int) -> tuple[float, float]:
        started = time.perf_counter()
        run = Experiment(ws, "dist").submit(
            ScriptRunConfig(
                str(src), "ranks.py", compute_target="ray", distributed_job_config=config
            )
        )
        logs = run.run_dir / "user_logs"
        names = ["std_log.txt"] + [f"std_log_rank_{r}.txt" for r in range(1, ranks)]
        seen: dict[str, float] = {}
        while len(seen) < ranks and time.perf_counter() - started < 300:
            for name in names:
                path = logs / name
                if name not in seen and path.exists() and "rank " in path.read_text():
                    seen[name] = time.perf_counter() - started
            time.sleep(0.01)
        run.wait_for_completion()
        return min(seen.values()), max(seen.values())

    launch(PyTorchConfiguration("Gloo", 4, node_count=2), 4)  # warm
    first, every = median_pair(
        [launch(PyTorchConfiguration("Gloo", 4, node_count=2), 4) for _ in range(3)]
    )
    single = median([launch(None, 1)[1] for _ in range(3)])
    return {"first": first, "all": every, "single": single}


def median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return median([p[0] for p in pairs]), median([p[1] for p in pairs])


if __name__ == "__main__":
    main()
