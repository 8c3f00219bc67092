"""The SSH agent RUNS on Python 3.8, the oldest Python the bootstrap accepts (issue 9, point 12).

Nothing here parses source: the agent is shipped as on a host (``agent_bundle()``), started with
the same bootstrap command, and driven on a real 3.8 interpreter — module by module, through its
serve loop and its daemon's socket, and end to end over a real sshd whose host Python is 3.8.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import sshd
from sshd import SshServer

from ferry.agent import hostenv
from ferry.compute import ComputeTarget, RemoteCompute
from ferry.environment import Environment
from ferry.experiment import Experiment
from ferry.script_run_config import ScriptRunConfig
from ferry.targets.ssh.session import BOOTSTRAP, agent_bundle
from ferry.targets.ssh.target import SshTarget
from ferry.testing.conformance import wait_until

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root

PYTHON38 = Path(os.environ.get("FERRY_TEST_PYTHON38", "~/.pyenv/versions/3.8.18/bin/python"))


@pytest.fixture(scope="module")
def python38() -> str:
    path = PYTHON38.expanduser()
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"{path} is missing: the SSH agent promises Python 3.8 and is tested on a real 3.8; "
            "install it with `pyenv install 3.8.18` (or point FERRY_TEST_PYTHON38 at a 3.8)"
        )
    version = subprocess.run(
        [str(path), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert version.strip() == "(3, 8)", f"{path} is not a Python 3.8: {version}"
    return str(path)


def install_agent(work: Path) -> tuple[str, Path]:
    """Ship the agent into ``work`` as a session does; returns (its name, its folder)."""
    name, files = agent_bundle()
    package = work / "bin" / name / "ferry_agent"
    package.mkdir(parents=True)
    for file_name, data in files.items():
        (package / file_name).write_bytes(data)
    return name, package.parent


def agent_processes(agent_dir: Path) -> list[int]:
    """Processes whose command line names ``agent_dir`` (the daemon, on this machine)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if str(agent_dir).encode() in cmdline:
                found.append(int(entry))
    return found


@pytest.fixture
def work() -> Iterator[Path]:
    """A remote work folder, short enough for the daemon's socket path (sun_path); removing it
    at the end makes the daemon exit."""
    top = Path(tempfile.mkdtemp(prefix="f38-"))
    folder = top / "wörk 'd'"
    folder.mkdir()
    yield folder
    shutil.rmtree(top, ignore_errors=True)
    wait_until(lambda: not agent_processes(folder), timeout=15, what="the agent daemon to exit")


def test_every_agent_module_imports_on_python_3_8_with_the_stdlib_only(
    python38: str, work: Path
) -> None:
    """``-I -S``: no site-packages and no current folder, so a non-stdlib import fails too."""
    _, agent_dir = install_agent(work)
    modules = sorted(p.stem for p in (agent_dir / "ferry_agent").glob("*.py"))
    assert {"daemon", "hostenv", "jobs", "serve", "store", "watchdog", "logcap", "proc"} <= set(
        modules
    )
    for module in modules:
        done = subprocess.run(
            [python38, "-I", "-S", "-c",
             f"import sys; sys.path.insert(0, sys.argv[1]); import ferry_agent.{module}",
             str(agent_dir)],
            capture_output=True, text=True, cwd=work,
        )  # fmt: skip
        assert done.returncode == 0, f"ferry_agent.{module} on 3.8:\n{done.stderr}"


class AgentPipe:
    """A minimal client of the agent's protocol over a pair of byte streams."""

    def __init__(self, reader: IO[bytes], writer: IO[bytes]) -> None:
        self.reader, self.writer = reader, writer
        self.events: list[tuple[dict[str, Any], bytes]] = []
        self.ids = 0

    def frame(self) -> tuple[dict[str, Any], bytes]:
        line = self.reader.readline()
        assert line, "the agent closed its output"
        header: dict[str, Any] = json.loads(line)
        payload = self.reader.read(header["n"]) if "n" in header else b""
        return header, payload

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        self.ids += 1
        self.writer.write(json.dumps({"id": self.ids, "op": op, **fields}).encode() + b"\n")
        self.writer.flush()
        while True:
            header, payload = self.frame()
            if header["t"] == "reply" and header["id"] == self.ids:
                return header
            self.events.append((header, payload))

    def until_exit(self) -> dict[str, Any]:
        while True:
            header, payload = self.frame()
            self.events.append((header, payload))
            if header["t"] == "exit":
                return header

    def received(self, rel: str) -> bytes:
        return b"".join(p for h, p in self.events if h["t"] == "data" and h["f"] == rel)


def store_blob(work: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = work / "blobs" / digest[:2] / digest[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def test_the_agent_serves_a_whole_run_on_python_3_8(python38: str, work: Path) -> None:
    """The bootstrap, hello, an environment build, a snapshot, a job and its exit — all with the
    agent (and the job) on 3.8, through the same command line an SSH session runs."""
    name, _ = agent_bundle()
    argv = [python38, "-I", "-S", "-c", BOOTSTRAP, str(work), name]
    missing = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert missing.returncode == 97 and missing.stdout.startswith("ferry-agent-missing")
    _, agent_dir = install_agent(work)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        agent = AgentPipe(proc.stdout, proc.stdin)
        hello, _ = agent.frame()
        assert hello["t"] == "hello" and hello["python"][:2] == [3, 8]
        assert hello["executable"] == python38 and hello["uv"] in (True, False)

        built = agent.call(
            "build_env", hash="ab" * 16, interpreter=python38, python=None, packages=[],
            options=[], uv="none", recipe=hostenv.RECIPE_VENV,
        )  # fmt: skip
        assert built["ok"], built
        env_python = built["result"]["python"]
        assert any(h["t"] == "log" and "-m venv" in h["text"] for h, _ in agent.events)

        script = b"import sys\nprint('job on', sys.version_info[:2])\n"
        manifest = {
            "algo": "sha256",
            "version": 1,
            "entries": {"job ü.py": {"digest": store_blob(work, script), "mode": 0o644,
                                     "size": len(script)}},
        }  # fmt: skip
        snapshot = hashlib.sha256(json.dumps(manifest).encode()).hexdigest()
        first = agent.call("prepare", run="run-1", snapshot=snapshot)
        assert first["ok"] and first["result"]["missing"] == [snapshot]
        store_blob(work, json.dumps(manifest).encode())
        ready = agent.call("prepare", run="run-1", snapshot=snapshot)
        assert ready["ok"] and ready["result"]["missing"] == [], ready

        launched = agent.call(
            "launch", run="run-1", argv=[env_python, "job ü.py"], lease=30, grace=1
        )
        assert launched["ok"] and launched["result"]["pid"] > 0, launched
        assert agent.until_exit()["code"] == 0  # the follower sends every byte before the exit
        assert b"job on (3, 8)" in agent.received("user_logs/std_log.txt")
        refused = agent.call("no_such_op")
        assert refused["ok"] is False and "no_such_op" in refused["error"]
        assert agent.call("cleanup", run="run-1")["ok"]
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=20) == 0
        proc.stdout.close()

    daemon_socket = hello["socket"]  # the first session started the daemon, on 3.8 too
    wait_until(lambda: os.path.exists(daemon_socket), timeout=15, what="the daemon's socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(20)
        conn.connect(daemon_socket)
        reader, writer = conn.makefile("rb"), conn.makefile("wb")
        via_daemon = AgentPipe(reader, writer)
        daemon_hello, _ = via_daemon.frame()
        assert daemon_hello["daemon"] is True and daemon_hello["python"][:2] == [3, 8]
        again = via_daemon.call("build_env", hash="ab" * 16, interpreter=python38, uv="none",
                                recipe=hostenv.RECIPE_VENV)  # fmt: skip
        assert again["ok"] and again["result"]["built"] is False  # reused, not rebuilt
        reader.close()
        writer.close()
    assert agent_processes(agent_dir), "the daemon should still be serving"


def test_a_run_over_ssh_on_a_python_3_8_host(  # type: ignore[no-untyped-def]
    python38: str, workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    """A host whose only Python is 3.8: status, then two runs (the second reaches the agent's
    daemon), each building or reusing an environment and recording the job's metrics."""
    work = remote_root / "py38"
    config = ssh_server.attach_config(work_dir=str(work), interpreter_path=python38)
    ComputeTarget.attach(workspace, "old", RemoteCompute.attach_configuration(**config))
    assert SshTarget.status("old", config, workspace)["python"] == "3.8.18"
    source = awkward_dir / "src"
    source.mkdir()
    (source / "job.py").write_text(
        "import sys\nfrom ferry import Run\nrun = Run.get_context()\n"
        "run.log('minor', sys.version_info[1])\nprint('python', sys.version.split()[0])\n"
    )
    env = Environment("e")  # built (a bare venv): an environment declaring nothing is not
    env.python.conda_dependencies.set_pip_option("--no-index")
    for attempt in range(2):
        run = Experiment(workspace, "py38").submit(
            ScriptRunConfig(str(source), "job.py", compute_target="old", environment=env)
        )
        details = run.wait_for_completion(raise_on_error=False)
        log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text(encoding="utf-8")
        assert details["status"] == "Completed", log
        assert "python 3.8.18" in log and run.get_metrics() == {"minor": 8}
        assert ("building" in log) == (attempt == 0), log
    assert sys.version_info[:2] != (3, 8)  # the client side stays on ferry's own Python
