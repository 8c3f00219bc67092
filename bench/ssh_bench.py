"""SSH target: submit → first log line and total time on a warm target, vs `ssh host python`.

Goal (issue 5): ≤ 1.5× the anchor, OpenSSH's own client binary (`/usr/bin/ssh`, Debian's
openssh-client) running `/usr/bin/python3 hello.py` on the same loopback sshd (the tests' server,
tests/targets/sshd.py, with throw-away keys; run as root). "Warm": the host already has the agent,
the runtime, the blobs and the environment. Measured for two accounts on the host: root, whose
`.bashrc` runs `pyenv init` (every SSH command pays it, ferry's once per run), and a throw-away
account with `/bin/sh` as its shell (a lean host). ferry is measured as

* `ferry submit -t vm` as installed (fresh CLI process; its supervisor imports asyncssh);
* the same with a CLI zygote that has the ssh target preloaded (a one-line change proposed for
  `ferry/cli/zygote.py::_preload`), started here with its own socket folder;
* `Experiment.submit` + wait from a driver that has imported the ssh target (a notebook).

Also: resubmitting an unchanged 5,000-file tree sends no file contents (bytes from the run log).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import HERE, VENV_BIN, median, scratch, write_result

sys.path.insert(0, str(HERE.parent / "tests" / "targets"))
from sshd import SshServer  # the tests' loopback sshd

REPEAT = 9
PYTHON = "/usr/bin/python3"  # the host's own interpreter for both (not a pyenv shim)
LEAN_USER = "ferrybench"
SENT = re.compile(r"snapshot of (\d+) files; sent (\d+) blob\(s\), (\d+) bytes")


def first_line_and_total(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    first = None
    for line in proc.stdout:
        if first is None and b"hello" in line:
            first = time.perf_counter() - t
    proc.wait()
    total = time.perf_counter() - t
    return first if first is not None else total, total


def ssh_anchor(
    server: SshServer, user: str, script: Path, known_hosts: Path
) -> tuple[float, float]:
    return first_line_and_total(
        [
            "ssh", "-p", str(server.port), "-i", str(server.user_key_file),
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", f"{user}@127.0.0.1", f"{PYTHON} {script}",
        ]
    )  # fmt: skip


def api_submit(ws: Any, source: Path, target: str) -> tuple[float, float, dict[str, float]]:
    from ferry import Experiment, ScriptRunConfig

    t = time.perf_counter()
    config = ScriptRunConfig(str(source), "hello.py", compute_target=target)
    run = Experiment(ws, "bench").submit(config)
    log = run.run_dir / "user_logs" / "std_log.txt"
    while not (log.exists() and b"hello" in log.read_bytes()):
        time.sleep(0.002)
    first = time.perf_counter() - t
    run.wait_for_completion()
    return first, time.perf_counter() - t, dict(run.record.timings)


def start_preloading_zygote(folder: Path) -> subprocess.Popen[bytes]:
    """A CLI zygote like ferry's own, with the ssh target imported before it forks workers."""
    from ferry.cli.fast import package_fingerprint, socket_path

    os.environ["FERRY_ZYGOTE_DIR"] = str(folder)
    path = socket_path(package_fingerprint())
    code = (
        "import sys, ferry.targets.ssh.target\n"
        "from ferry.cli.zygote import serve\n"
        "serve(sys.argv[1], sys.argv[2], 600.0)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, path, package_fingerprint()], start_new_session=True
    )
    while not os.path.exists(path):
        time.sleep(0.05)
    return proc


def lean_user(remote: Path) -> str | None:
    """A throw-away account whose login shell is /bin/sh (None when it cannot be made)."""
    if os.getuid() != 0 or not shutil.which("useradd"):
        return None
    subprocess.run(["userdel", LEAN_USER], capture_output=True)
    made = subprocess.run(
        ["useradd", "-M", "-p", "*", "-d", str(remote), "-s", "/bin/sh", LEAN_USER],
        capture_output=True,
    )
    if made.returncode:
        return None
    remote.mkdir(parents=True, exist_ok=True)
    shutil.chown(remote, LEAN_USER)
    return LEAN_USER


def main() -> None:
    work = scratch("ssh")
    (work / "sshd").mkdir()
    server = SshServer(work / "sshd")
    server.start()
    lean_home = Path("/tmp") / f"{LEAN_USER}-home"
    user = lean_user(lean_home)
    zygote = None
    try:
        zygote = start_preloading_zygote(work / "zygote")
        run_bench(work, server, user, lean_home)
    finally:
        if zygote is not None:
            zygote.terminate()
        server.stop()
        shutil.rmtree(work / "remote", ignore_errors=True)  # its agent daemon then exits
        if user:
            subprocess.run(["userdel", user], capture_output=True)
            shutil.rmtree(lean_home, ignore_errors=True)


def run_bench(work: Path, server: SshServer, lean: str | None, lean_home: Path) -> None:
    from ferry.compute import ComputeTarget, RemoteCompute
    from ferry.workspace import Workspace

    src = work / "src"
    src.mkdir()
    (src / "hello.py").write_text("print('hello')\n")
    src.chmod(0o755)
    known_hosts = work / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{server.port} {server.host_public_key}\n")
    ws_path = work / "ws"
    ws = Workspace.create(ws_path)
    accounts = {"root": (server.user, str(work / "remote"))}
    if lean:
        shutil.copy(src / "hello.py", lean_home / "hello.py")
        accounts["lean"] = (lean, str(lean_home / "work"))
    for name, (user, work_dir) in accounts.items():
        config = server.attach_config(
            username=user, work_dir=work_dir, lease_seconds=30, interpreter_path=PYTHON
        )
        ComputeTarget.attach(ws, f"vm-{name}", RemoteCompute.attach_configuration(**config))
    env = dict(os.environ, FERRY_HOME=str(ws_path))
    plain_env = {k: v for k, v in env.items() if k != "FERRY_ZYGOTE_DIR"}
    ferry = str(VENV_BIN / "ferry")
    results: dict[str, dict[str, tuple[float, float]]] = {}
    timings: dict[str, float] = {}
    for name, (user, _) in accounts.items():
        script = src / "hello.py" if name == "root" else lean_home / "hello.py"
        cli = [ferry, "--workspace", str(ws_path), "submit", str(src / "hello.py")]
        cli += ["-t", f"vm-{name}", "-e", "cli"]
        for _ in range(2):  # warm the host: agent, runtime, blobs, environment; and the zygotes
            subprocess.run(cli, env=env, capture_output=True, check=True)
            subprocess.run(cli, env=plain_env, capture_output=True, check=True)
            api_submit(ws, src, f"vm-{name}")
        rows: dict[str, list[tuple[float, float]]] = {}
        for _ in range(REPEAT):
            rows.setdefault("ssh", []).append(ssh_anchor(server, user, script, known_hosts))
            rows.setdefault("cli", []).append(first_line_and_total(cli, plain_env))
            rows.setdefault("zygote", []).append(first_line_and_total(cli, env))
            first, total, timings = api_submit(ws, src, f"vm-{name}")
            rows.setdefault("api", []).append((first, total))
        results[name] = {
            k: (median([f for f, _ in v]), median([t for _, t in v])) for k, v in rows.items()
        }
    sent_first, sent_again, files = resubmit_tree(work, ws)
    write_result("ssh", report(results, timings, sent_first, sent_again, files))


LABELS = {
    "ssh": f"`ssh host {PYTHON} hello.py` (OpenSSH binary) — anchor",
    "cli": "`ferry submit hello.py -t vm`, CLI as installed",
    "zygote": "same, CLI zygote with the ssh target preloaded (proposed)",
    "api": "`Experiment.submit` + wait, in a driver (notebook)",
}
ACCOUNTS = {
    "root": "root (login shell runs `pyenv init`)",
    "lean": f"`{LEAN_USER}` (login shell /bin/sh)",
}


def report(
    results: dict[str, dict[str, tuple[float, float]]],
    timings: dict[str, float],
    sent_first: int,
    sent_again: int,
    files: int,
) -> str:
    lines = []
    for account, med in results.items():
        base_first, base_total = med["ssh"]
        for key in ("ssh", "cli", "zygote", "api"):
            first, total = med[key]
            lines.append(
                f"| {ACCOUNTS[account]} | {LABELS[key]} | {first * 1000:.0f} ms | "
                f"{first / base_first:.1f}× | {total * 1000:.0f} ms | {total / base_total:.1f}× |"
            )
    phases = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(timings.items()))
    return f"""
## SSH target (issue 5)

A trivial script (`print('hello')`) on a warm target — agent, runtime, blobs and environment
already on the host — through a real sshd on 127.0.0.1 (same machine), median of {REPEAT} runs.
Ratios are against the anchor on the same account: OpenSSH's `ssh` binary running `{PYTHON}`.
An SSH command runs through the account's login shell, so a slow shell start-up (root's
`pyenv init` here) is in every anchor run. ferry pays it only on the first run of an agent
version: later runs reach the long-lived agent on the host over a stream-local channel (no
shell, no interpreter start), then prepare (one request: nothing missing, tree copied) and
launch (one request; the log streams back as it grows).

| account | command | first log line | ratio | total | ratio |
|---|---|---|---|---|---|
{chr(10).join(lines)}

Goal ≤ 1.5× (total). Phases of the last in-driver run (kept on the run): {phases}.
The CLI as installed imports asyncssh (~0.4-0.5 s) in every `ferry submit` to an ssh target
(the command checks the job with the target's class, and the run's supervisor is forked from it);
a CLI zygote that preloads the ssh target (third row) removes that.

Resubmitting an unchanged {files:,}-file tree: the first submit sent {sent_first:,} bytes of
blobs, the resubmit sent **{sent_again} bytes** (goal: 0).
"""


def resubmit_tree(work: Path, ws: Any) -> tuple[int, int, int]:
    from ferry import Experiment, ScriptRunConfig

    tree = work / "tree"
    for i in range(5000):
        folder = tree / f"pkg{i // 500}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"m{i}.py").write_text(f"VALUE = {i}\n")
    (tree / "hello.py").write_text("print('hello')\n")
    sent, files = [], 0
    for _ in range(2):
        config = ScriptRunConfig(str(tree), "hello.py", compute_target="vm-root")
        run = Experiment(ws, "tree").submit(config)
        run.wait_for_completion()
        match = SENT.search((run.run_dir / "user_logs" / "std_log.txt").read_text())
        assert match, "no transfer line in the log"
        sent.append(int(match.group(3)))
        files = int(match.group(1))
    shutil.rmtree(tree, ignore_errors=True)
    return sent[0], sent[1], files


if __name__ == "__main__":
    main()
