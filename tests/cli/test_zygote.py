"""The console script hands commands to a warm zygote: same output, exit codes, env, cwd, Ctrl-C."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_zygote_support import (  # noqa: F401  (the *_fixture names register fixtures)
    FERRY,
    Blocked,
    blocked_command_fixture,
    ferry,
    ppid_of,
    wait_for,
    wait_for_zygote,
    zygote_env_fixture,
    zygote_socket,
)

import ferry as ferry_package
from ferry.cli.fast import read_message, send_message

_ferry = ferry


def test_commands_through_the_zygote_behave_like_in_process(
    zygote_env: dict[str, str], awkward_dir: Path
) -> None:
    env = dict(zygote_env, FERRY_HOME=str(awkward_dir / "home one"))
    first = _ferry(env, "runs", "list", "--json")
    assert first.returncode == 0 and first.stdout.strip() == "[]"
    wait_for_zygote(env)

    script = awkward_dir / "job dir" / "train.py"
    script.parent.mkdir()
    script.write_text(
        "import os\nprint('home', os.environ['FERRY_HOME'])\n"
        "print('probe', repr(os.environ.get('ZYGOTE_PROBE')))\n"
    )
    probe = "only in the client: ü 'q' = ;"
    res = _ferry(
        env | {"ZYGOTE_PROBE": probe}, "submit", "train.py", "-e", "zyg", cwd=script.parent
    )
    assert res.returncode == 0, res.stderr
    assert f"home {awkward_dir / 'home one'}" in res.stdout and "Completed" in res.stdout
    assert f"probe {probe!r}" in res.stdout  # the worker took the client's environment

    bad = _ferry(env, "runs", "show", "nope_1_deadbeef")
    assert bad.returncode == 2 and "no run 'nope_1_deadbeef'" in bad.stderr

    script.write_text("raise SystemExit(3)\n")
    assert _ferry(env, "submit", "train.py", cwd=script.parent).returncode == 1

    other = dict(env, FERRY_HOME=str(awkward_dir / "home two"))
    assert _ferry(other, "runs", "list", "--json").stdout.strip() == "[]"
    assert len(json.loads(_ferry(env, "runs", "list", "--json").stdout)) == 2


def test_a_command_runs_in_a_worker_forked_by_the_zygote(
    zygote_env: dict[str, str], blocked_command: Callable[..., Blocked]
) -> None:
    _ferry(zygote_env, "runs", "list")
    zygote = wait_for_zygote(zygote_env)
    blocked = blocked_command(zygote_env, "runs", "list", "--json")
    assert blocked.writer != blocked.proc.pid
    assert ppid_of(blocked.writer) == zygote
    assert blocked.holders == {blocked.proc.pid, blocked.writer}  # the client lent its stdout
    code, out, err = blocked.finish()
    assert (code, out) == (0, b"[]\n"), err


def test_ctrl_c_reaches_the_worker_and_the_run_keeps_going(
    zygote_env: dict[str, str], awkward_dir: Path
) -> None:
    env = dict(zygote_env, FERRY_HOME=str(awkward_dir / "home"))
    _ferry(env, "runs", "list")
    wait_for_zygote(env)
    script = awkward_dir / "slow.py"
    script.write_text("import time\nprint('tick', flush=True)\ntime.sleep(60)\n")
    submitted = _ferry(env, "submit", str(script), "--no-wait")
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.strip().splitlines()[-1]
    follower = subprocess.Popen(
        [FERRY, "runs", "logs", "-f", run_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert follower.stdout is not None
        stdout, seen = follower.stdout.fileno(), bytearray()

        def ticked() -> bool:
            if select.select([stdout], [], [], 0)[0]:
                seen.extend(os.read(stdout, 65536))
            return b"tick" in seen

        wait_for(ticked, "the follower to print the job's first line")
        follower.send_signal(signal.SIGINT)
        _out, err = follower.communicate(timeout=20)
        assert follower.returncode == 130, err
    finally:
        if follower.poll() is None:
            follower.kill()
    shown = _ferry(env, "runs", "show", run_id, "--json")
    assert json.loads(shown.stdout)["status"] == "Running"
    _ferry(env, "runs", "cancel", run_id)


def test_a_client_of_other_sources_makes_the_zygote_step_aside(tmp_path: Path) -> None:
    path = tmp_path / "z.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferry.cli.zygote", str(path), "fingerprint-a", "60"]
    )
    try:
        wait_for(path.exists, "the zygote's socket")
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(str(path))
        send_message(
            conn, {"argv": [], "env": {}, "cwd": "/", "fingerprint": "fingerprint-b"}, [0, 1, 2]
        )
        assert read_message(conn, bytearray()) == {"started": False, "reason": "stale"}
        assert proc.wait(timeout=20) == 0
        assert not path.exists()
        assert "other ferry sources" in (tmp_path / "zygote.log").read_text()
    finally:
        proc.kill()


def test_no_daemon_runs_in_process(tmp_path: Path, blocked_command: Callable[..., Blocked]) -> None:
    env = dict(
        os.environ,
        FERRY_NO_DAEMON="1",
        FERRY_ZYGOTE_DIR=str(tmp_path / "zyg"),
        FERRY_HOME=str(tmp_path / "h"),
    )
    started = time.monotonic()
    blocked = blocked_command(env, "runs", "list", "--json")
    assert blocked.writer == blocked.proc.pid  # the console script's own process ran it
    assert ppid_of(blocked.writer) == os.getpid()
    assert blocked.holders == {blocked.proc.pid}
    code, out, err = blocked.finish()
    assert (code, out) == (0, b"[]\n"), err
    assert not (tmp_path / "zyg").exists(), time.monotonic() - started


def test_a_zygote_whose_sources_changed_exits(zygote_env: dict[str, str], tmp_path: Path) -> None:
    """Clients of edited sources look for another socket: the old zygote must not linger."""
    copy = tmp_path / "sources copy"
    shutil.copytree(
        Path(ferry_package.__file__).parent,
        copy / "ferry",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    env = dict(zygote_env, PYTHONPATH=str(copy))
    assert _ferry(env, "runs", "list").returncode == 0
    zygote = wait_for_zygote(env)
    sock = zygote_socket(env)
    assert f"{copy}" in Path(f"/proc/{zygote}/environ").read_text(errors="replace")
    edited = copy / "ferry" / "cli" / "app.py"
    os.utime(edited, ns=(time.time_ns(), time.time_ns()))
    wait_for(lambda: not Path(f"/proc/{zygote}").exists() or _zombie(zygote), "the zygote to exit")
    assert not sock.exists()
    log = (Path(env["FERRY_ZYGOTE_DIR"]) / "zygote.log").read_text()
    assert "ferry's sources changed" in log


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


PRELOADED_RUN = """
import os, sys
from ferry.cli.zygote import _preload
_preload()
import ferry.submit
ferry.submit._launch = lambda ws, run_id: None  # supervised below, in this process
from ferry import Experiment, ScriptRunConfig, Workspace
from ferry.supervisor import supervise
source = sys.argv[1]
ws = Workspace.from_config()
ws.store.list_experiments()  # the workspace is made (its migrations import alembic)
before = set(sys.modules)
run = Experiment(ws, "warm").submit(ScriptRunConfig(source, "hello.py"))
supervise(ws, run.id)
print(run.get_status(), sorted(set(sys.modules) - before),
      "docker" in sys.modules or "requests" in sys.modules)
"""


def test_a_run_imports_nothing_the_zygote_did_not_preload(tmp_path: Path) -> None:
    """A submit and its supervisor, forked from the zygote, import no module of their own
    (each import was paid on every run: ~25 ms plain, ~35 ms in Docker); the preload itself
    keeps the ``docker`` library and ``requests`` out."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "hello.py").write_text("print('hello')\n")
    out = subprocess.run(
        [sys.executable, "-c", PRELOADED_RUN, str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split("\n")[-2] == "Completed [] False", out.stdout + out.stderr


def test_the_client_imports_only_the_cheapest_modules() -> None:
    """The console script's own imports are the cost of every command: ``json``, ``socket``,
    ``signal``, ``hashlib`` (and through them ``enum`` and ``re``) would add ~25 ms."""
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import ferry.cli.fast\n"
        "heavy = {'json', 'socket', 'signal', 'hashlib', 'enum', 're', 'typing', 'subprocess'}\n"
        "print(sorted(heavy & (set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_message_that_is_not_a_dict_of_plain_values_is_refused() -> None:
    """What the zygote reads from a peer (already proven to be this user) is checked: too long,
    unreadable or not a dict is a ValueError, never a crash."""
    import marshal
    import struct

    def framed(data: bytes) -> bytes:
        return struct.pack("!I", len(data)) + data

    left, right = socket.socketpair()
    with left, right:
        send_message(left, {"argv": ["runs", "list"], "umask": 0o22})
        assert read_message(right, bytearray()) == {"argv": ["runs", "list"], "umask": 0o22}
        cases = [
            (framed(marshal.dumps(7)), "must be a dict"),
            (framed(marshal.dumps({"argv": ["x"]})[:-2]), "cannot be read"),
            (framed(b"\xfe garbage"), "cannot be read"),
            (b"\xff\xff\xff\xff", "over the limit"),
        ]
        for data, reason in cases:
            left.sendall(data)
            with pytest.raises(ValueError, match=reason):
                read_message(right, bytearray())
