"""The job watchdog with real processes: exit codes, every descendant stopped, capped logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ferry.agent.proc import pid_alive
from ferry.targets.watched import WATCHDOG, JobProcess, WatchedJob

PY38 = Path.home() / ".pyenv/versions/3.8.18/bin/python"

# a job that starts four kinds of escapees, writes their pids, then runs until stopped:
# setsid'd, own process group, a double-forked daemon, and a plain child
ESCAPEES = r"""
import os, subprocess, sys, time
out = sys.argv[1]
kids = [subprocess.Popen(["sleep", "300"], start_new_session=True),
        subprocess.Popen(["sleep", "300"], process_group=0),
        subprocess.Popen(["sleep", "300"])]
pids = [k.pid for k in kids]
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode()); os.close(w)
        time.sleep(300); os._exit(0)
    os._exit(0)
os.close(w); pids.append(int(os.read(r, 32)))
open(out + ".tmp", "w").write(" ".join(map(str, pids)))
os.replace(out + ".tmp", out)
print("started", flush=True)
if len(sys.argv) > 2: sys.exit(int(sys.argv[2]))
time.sleep(300)
"""


def _wait_for(path: Path, seconds: float = 30.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return [int(p) for p in path.read_text().split()]


def _all_gone(pids: list[int], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while any(pid_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _job(tmp_path: Path, argv: list[str], **kwargs: object) -> WatchedJob:
    log = tmp_path / "user_logs" / "std_log.txt"
    return WatchedJob.start(
        [JobProcess(0, argv, dict(os.environ), str(log), kwargs.pop("first_line", None))],  # type: ignore[arg-type]
        cwd=tmp_path,
        run_dir=tmp_path,
        grace=float(kwargs.pop("grace", 2.0)),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def _finish(job: WatchedJob, seconds: float = 30.0) -> int:
    deadline = time.monotonic() + seconds
    while (code := job.wait(0.1)) is None:
        assert time.monotonic() < deadline, "the job did not end"
    return code


@pytest.mark.parametrize(("script", "code"), [("pass", 0), ("raise SystemExit(3)", 3)])
def test_exit_codes_and_the_log(tmp_path: Path, script: str, code: int) -> None:
    job = _job(tmp_path, [sys.executable, "-c", f"print('hi'); {script}"], first_line="ferry: go\n")
    assert _finish(job) == code
    assert (tmp_path / "user_logs" / "std_log.txt").read_text() == "ferry: go\nhi\n"
    assert job.result()["reason"] == "exit"


def test_a_signal_death_is_a_negative_code(tmp_path: Path) -> None:
    job = _job(tmp_path, ["sh", "-c", "kill -KILL $$"])
    assert _finish(job) == -signal.SIGKILL


def test_a_command_that_cannot_start_is_refused(tmp_path: Path) -> None:
    from ferry.errors import TargetError

    with pytest.raises(TargetError, match="cannot start '/no/such/python'"):
        _job(tmp_path, ["/no/such/python", "t.py"])


def test_cancel_stops_every_descendant(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    job = _job(tmp_path, [sys.executable, "-c", ESCAPEES, str(pids_file)])
    pids = _wait_for(pids_file)
    assert len(pids) == 4 and all(pid_alive(p) for p in pids)
    job.cancel(1.0)
    assert _finish(job) == -signal.SIGTERM
    assert job.result()["reason"] == "cancel"
    assert _all_gone(pids), [p for p in pids if pid_alive(p)]


def test_what_a_job_leaves_behind_is_stopped_when_it_ends(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    job = _job(tmp_path, [sys.executable, "-c", ESCAPEES, str(pids_file), "0"])
    assert _finish(job) == 0
    pids = _wait_for(pids_file)
    assert _all_gone(pids)
    assert job.result()["leftovers"] >= 3
    assert "left 4 process(es) running" in (tmp_path / "user_logs" / "std_log.txt").read_text()


def test_the_job_goes_when_its_supervisor_goes(tmp_path: Path) -> None:
    """The supervisor holds the control pipe; when it dies (here: a child process that started
    the job and is killed with SIGKILL), the watchdog stops the whole job."""
    pids_file = tmp_path / "pids"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time\n"
            "from pathlib import Path\n"
            "from ferry.targets.watched import WatchedJob, JobProcess\n"
            "d = Path(sys.argv[1])\n"
            "j = WatchedJob.start([JobProcess(0, [sys.executable, '-c', sys.argv[2], sys.argv[3]],"
            " dict(os.environ), str(d / 'log.txt'))], cwd=d, run_dir=d, grace=1.0)\n"
            "time.sleep(300)\n",
            str(tmp_path),
            ESCAPEES,
            str(pids_file),
        ]
    )
    pids = _wait_for(pids_file)
    driver.kill()
    driver.wait()
    assert _all_gone(pids)
    deadline = time.monotonic() + 10
    while not (tmp_path / "exit.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert json.loads((tmp_path / "exit.json").read_text())["reason"] == "lost"
    assert "supervisor is gone" in (tmp_path / "log.txt").read_text()


def test_a_failing_rank_stops_the_others(tmp_path: Path) -> None:
    ranks = [
        JobProcess(0, ["sleep", "300"], dict(os.environ), str(tmp_path / "r0.txt")),
        JobProcess(1, ["sh", "-c", "exit 2"], dict(os.environ), str(tmp_path / "r1.txt")),
    ]
    job = WatchedJob.start(ranks, cwd=tmp_path, run_dir=tmp_path, grace=1.0)
    assert _finish(job) == 2
    result = job.result()
    assert result["failed_rank"] == 1 and result["codes"] == {"0": -signal.SIGTERM, "1": 2}


def test_notes_share_the_log_with_the_job(tmp_path: Path) -> None:
    job = _job(
        tmp_path, [sys.executable, "-c", "import time; print('a', flush=True); time.sleep(1)"]
    )
    assert job.note("ferry: a note")
    assert _finish(job) == 0
    text = (tmp_path / "user_logs" / "std_log.txt").read_text()
    assert "ferry: a note\n" in text and "a\n" in text
    assert not job.note("too late")


def test_a_flood_of_output_is_capped(tmp_path: Path) -> None:
    script = "import sys\nfor i in range(200000):\n    sys.stdout.write(f'line {i:08d}\\n')\n"
    job = _job(tmp_path, [sys.executable, "-c", script], log_max_bytes=100_000)
    assert _finish(job) == 0
    text = (tmp_path / "user_logs" / "std_log.txt").read_bytes()
    assert len(text) <= 150_000 + 500
    assert text.startswith(b"line 00000000\n") and text.endswith(b"line 00199999\n")
    assert b"bytes of output elided" in text


def test_the_watchdog_runs_on_python_3_8(tmp_path: Path) -> None:
    assert PY38.exists(), f"Python 3.8 is needed for this test: pyenv install 3.8.18 ({PY38})"
    spec = {
        "cwd": str(tmp_path),
        "exit_file": str(tmp_path / "exit.json"),
        "ranks": [
            {
                "rank": 0,
                "argv": ["sh", "-c", "echo on38; exit 4"],
                "env": {},
                "log": str(tmp_path / "l.txt"),
            }
        ],
    }
    proc = subprocess.run(
        [str(PY38), "-S", "-E", "-s", str(WATCHDOG)],
        input=json.dumps(spec).encode(),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["pgid"] > 0
    assert json.loads((tmp_path / "exit.json").read_text())["code"] == 4
    assert (tmp_path / "l.txt").read_text() == "on38\n"


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_wait_sees_the_end_at_once_and_times_out_while_the_job_runs(
    tmp_path: Path, pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a pidfd the watchdog's end wakes the wait at once (no 50 ms polling sleeps); where
    there is none (not Linux, an old kernel), ``Popen.wait`` polls as before."""
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    flag = tmp_path / "go"
    script = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.01)\n"
    job = _job(tmp_path, [sys.executable, "-c", script + "raise SystemExit(7)"])
    t = time.monotonic()
    assert job.wait(0.3) is None  # still running: None after the timeout, not before
    assert 0.25 <= time.monotonic() - t < 5
    flag.write_text("")
    assert _finish(job) == 7
    assert job.wait(0.1) == 7 and job.wait(0) == 7  # ended: the same code, at once
    assert job._pidfd is None  # closed once the end is seen
