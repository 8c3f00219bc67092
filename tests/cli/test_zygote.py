"""The console script hands commands to a warm zygote: same output, exit codes, env, cwd, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.cli.fast import package_fingerprint, read_message, send_message, socket_path

FERRY = str(Path(sys.executable).parent / "ferry")


@pytest.fixture
def zygote_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env["FERRY_ZYGOTE_DIR"] = str(tmp_path / "zyg")
    env.pop("FERRY_NO_DAEMON", None)
    yield env
    for pid_file in (tmp_path / "zyg").glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


def _ferry(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FERRY, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _wait_for_zygote(env: dict[str, str]) -> Path:
    os.environ["FERRY_ZYGOTE_DIR"] = env["FERRY_ZYGOTE_DIR"]
    try:
        path = Path(socket_path(package_fingerprint()))
    finally:
        del os.environ["FERRY_ZYGOTE_DIR"]
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, "the zygote did not start"
        time.sleep(0.05)
    return path


def test_commands_through_the_zygote_behave_like_in_process(
    zygote_env: dict[str, str], awkward_dir: Path
) -> None:
    env = dict(zygote_env, FERRY_HOME=str(awkward_dir / "home one"))
    first = _ferry(env, "runs", "list", "--json")
    assert first.returncode == 0 and first.stdout.strip() == "[]"
    _wait_for_zygote(env)

    script = awkward_dir / "job dir" / "train.py"
    script.parent.mkdir()
    script.write_text("import os\nprint('home', os.environ['FERRY_HOME'])\n")
    res = _ferry(env, "submit", "train.py", "-e", "zyg", cwd=script.parent)  # a relative path
    assert res.returncode == 0, res.stderr
    assert f"home {awkward_dir / 'home one'}" in res.stdout and "Completed" in res.stdout

    bad = _ferry(env, "runs", "show", "nope_1_deadbeef")
    assert bad.returncode == 2 and "no run 'nope_1_deadbeef'" in bad.stderr

    script.write_text("raise SystemExit(3)\n")
    assert _ferry(env, "submit", "train.py", cwd=script.parent).returncode == 1

    other = dict(env, FERRY_HOME=str(awkward_dir / "home two"))
    assert _ferry(other, "runs", "list", "--json").stdout.strip() == "[]"
    assert len(__import__("json").loads(_ferry(env, "runs", "list", "--json").stdout)) == 2


def test_ctrl_c_reaches_the_worker_and_the_run_keeps_going(
    zygote_env: dict[str, str], awkward_dir: Path
) -> None:
    env = dict(zygote_env, FERRY_HOME=str(awkward_dir / "home"))
    _ferry(env, "runs", "list")
    _wait_for_zygote(env)
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
        text=True,
    )
    time.sleep(1.0)
    follower.send_signal(signal.SIGINT)
    out, err = follower.communicate(timeout=20)
    assert follower.returncode == 130, err
    assert "tick" in out
    shown = _ferry(env, "runs", "show", run_id, "--json")
    assert '"status": "Running"' in shown.stdout
    _ferry(env, "runs", "cancel", run_id)


def test_a_client_of_other_sources_makes_the_zygote_step_aside(tmp_path: Path) -> None:
    path = tmp_path / "z.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferry.cli.zygote", str(path), "fingerprint-a", "60"]
    )
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(str(path))
        send_message(
            conn, {"argv": [], "env": {}, "cwd": "/", "fingerprint": "fingerprint-b"}, [0, 1, 2]
        )
        assert read_message(conn, bytearray()) == {"started": False, "reason": "stale"}
        assert proc.wait(timeout=20) == 0
        assert not path.exists()
    finally:
        proc.kill()


def test_no_daemon_runs_in_process(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        FERRY_NO_DAEMON="1",
        FERRY_ZYGOTE_DIR=str(tmp_path / "zyg"),
        FERRY_HOME=str(tmp_path / "h"),
    )
    assert _ferry(env, "runs", "list", "--json").returncode == 0
    time.sleep(0.5)
    assert not (tmp_path / "zyg").exists()
