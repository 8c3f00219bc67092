"""The zygote starts runs' supervisors from its clean state: no descriptor, thread or lock of the
submitter, the submitter's environment, umask and limits, a session of its own.

The mechanics are observed through a probe the forked child calls instead of the supervisor
(``FERRY_ZYGOTE_TEST_SUPERVISOR``, test-only); one end-to-end test runs the real supervisor.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_zygote_support import ferry, kill_zygotes, proc_status, wait_for, wait_for_zygote

from ferry.cli.fast import start_supervisor_via_zygote

PROBE = """
import fcntl, json, os, resource, signal, sys, threading

def record(workspace_path, run_id):
    open_fds = []
    for fd in range(3, 4096):
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
            open_fds.append(fd)
        except OSError:
            pass
    listing = sorted(int(name) for name in os.listdir("/proc/self/fd"))
    try:
        os.close(os.open("/dev/tty", os.O_RDONLY))
        tty = "opened"
    except OSError as exc:
        tty = exc.errno
    umask = os.umask(0o077)
    facts = {
        "open_fds": open_fds,
        "listing": listing,
        "links": [os.readlink(f"/proc/self/fd/{fd}") for fd in (0, 1, 2)],
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "sid": os.getsid(0),
        "umask": umask,
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "args": [workspace_path, run_id],
        "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "sigchld_default": signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL,
        "sigint_raises": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
        "threads": threading.active_count(),
        "tty": tty,
    }
    print("probe says hello", flush=True)
    with open("probe.json.tmp", "w") as fh:
        json.dump(facts, fh)
    os.replace("probe.json.tmp", "probe.json")
    return 7
"""


@pytest.fixture
def zygote_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This process's zygote folder; zygotes started here can import the probe."""
    probe_dir = tmp_path / "probe dir"
    probe_dir.mkdir()
    (probe_dir / "zygote_probe.py").write_text(PROBE)
    paths = [str(probe_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.setenv("FERRY_ZYGOTE_DIR", str(tmp_path / "zyg"))
    monkeypatch.delenv("FERRY_NO_DAEMON", raising=False)
    yield tmp_path / "zyg"
    kill_zygotes(tmp_path / "zyg")


def test_no_zygote_means_none_now_and_a_zygote_for_the_next_call(
    zygote_folder: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    assert start_supervisor_via_zygote(str(tmp_path), "r_1_0", {}, str(tmp_path / "l")) is None
    assert time.monotonic() - started < 5
    wait_for_zygote(dict(os.environ))
    assert not (tmp_path / "l").exists()


def test_no_daemon_means_none_and_no_zygote(
    zygote_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_NO_DAEMON", "1")
    assert start_supervisor_via_zygote(str(tmp_path), "r_1_0", {}, str(tmp_path / "l")) is None
    assert not zygote_folder.exists()


def test_a_folder_that_is_not_private_means_none_and_no_zygote(
    zygote_folder: Path, tmp_path: Path
) -> None:
    zygote_folder.mkdir(mode=0o755)
    zygote_folder.chmod(0o755)
    assert start_supervisor_via_zygote(str(tmp_path), "r_1_0", {}, str(tmp_path / "l")) is None
    assert list(zygote_folder.iterdir()) == []


def test_the_supervisor_child_holds_nothing_of_the_zygote_or_the_caller(
    zygote_folder: Path, tmp_path: Path
) -> None:
    start_supervisor_via_zygote(str(tmp_path), "r_1_0", {}, str(tmp_path / "l"))
    zygote = wait_for_zygote(dict(os.environ))
    workspace = tmp_path / "work space ü"
    workspace.mkdir()
    log = workspace / "supervisor.log"
    env = {
        "ZYGOTE_PROBE": "only for the supervisor: ü 'q'\nsecond line",
        "FERRY_ZYGOTE_TEST_SUPERVISOR": "zygote_probe:record",
        "PATH": "/usr/bin:/bin",
    }
    held = open(tmp_path / "held by the caller", "w")  # noqa: SIM115
    core = resource.getrlimit(resource.RLIMIT_CORE)
    previous = os.umask(0o027)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, core[1]))
        pid = start_supervisor_via_zygote(str(workspace), "exp_1_deadbeef", env, str(log))
    finally:
        os.umask(previous)
        resource.setrlimit(resource.RLIMIT_CORE, core)
        held.close()
    assert isinstance(pid, int)
    facts = json.loads(wait_for(lambda: _read(workspace / "probe.json"), "the probe's facts"))

    assert facts["open_fds"] == []  # nothing beyond 0–2: no socket, pipe, log or file of anyone
    assert set(facts["listing"]) - {0, 1, 2} <= {3}  # (3: listdir's own descriptor)
    assert facts["links"] == ["/dev/null", str(log), str(log)]
    assert facts["pid"] == pid and facts["sid"] == pid  # its own session
    assert facts["ppid"] not in (zygote, os.getpid())  # double-forked
    assert facts["tty"] != "opened"  # no controlling terminal
    assert facts["umask"] == 0o027 and facts["core"][0] == 0
    assert facts["environ"] == env  # exactly what was sent, nothing of the zygote's
    assert facts["cwd"] == str(workspace)
    assert facts["args"] == [str(workspace), "exp_1_deadbeef"]
    assert facts["sigterm_default"] and facts["sigchld_default"] and facts["sigint_raises"]
    assert facts["threads"] == 1
    assert "probe says hello" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert proc_status(zygote, "Threads") == "1"
    zygote_log = (zygote_folder / "zygote.log").read_text()
    assert f"supervisor {pid} for run exp_1_deadbeef" in zygote_log


def test_a_bad_supervise_request_is_refused(zygote_folder: Path, tmp_path: Path) -> None:
    start_supervisor_via_zygote(str(tmp_path), "r_1_0", {}, str(tmp_path / "l"))
    wait_for_zygote(dict(os.environ))
    missing = tmp_path / "no such workspace"
    assert start_supervisor_via_zygote(str(missing), "r", {}, str(tmp_path / "l")) is None
    assert f"no folder {missing}" in (zygote_folder / "zygote.log").read_text()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


DRIVER = textwrap.dedent(
    """
    import sys
    from ferry import Experiment, ScriptRunConfig, Workspace
    ws = Workspace.create(sys.argv[1])
    run = Experiment(ws, "zyg").submit(ScriptRunConfig(sys.argv[2], "train.py"))
    print(run.id)
    """
)


def test_a_run_submitted_by_a_driver_that_exits_is_supervised_from_the_zygote(
    zygote_folder: Path, tmp_path: Path
) -> None:
    """End to end, with the real supervisor (``ferry.supervisor.supervise_detached_child``)."""
    env = dict(os.environ, FERRY_HOME=str(tmp_path / "home"))
    assert ferry(env, "runs", "list").returncode == 0
    wait_for_zygote(env)
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("import time\ntime.sleep(1)\nprint('done here')\n")
    workspace = tmp_path / "ws"
    driver = subprocess.run(
        [sys.executable, "-c", DRIVER, str(workspace), str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert driver.returncode == 0, driver.stderr
    run_id = driver.stdout.split()[-1]

    def finished() -> dict[str, object] | None:
        shown = ferry(env, "-w", str(workspace), "runs", "show", run_id, "--json")
        record: dict[str, object] = json.loads(shown.stdout)
        return record if record["status"] in ("Completed", "Failed", "Canceled") else None

    record = wait_for(finished, "the run to finish", 120)
    assert record["status"] == "Completed", record
    zygote_log = (zygote_folder / "zygote.log").read_text()
    assert f"for run {run_id}" in zygote_log
    logs = ferry(env, "-w", str(workspace), "runs", "logs", run_id)
    assert "done here" in logs.stdout
