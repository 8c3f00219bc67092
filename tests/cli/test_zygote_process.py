"""A command run by a zygote worker sees the process an in-process run would have been.

umask, resource limits and ``sys.path`` come from the client; commands that may prompt on a
terminal run in the console script itself. Each test reads the facts from /proc of the process
that actually ran the command (see ``test_zygote_support``).
"""

from __future__ import annotations

import os
import pty
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_zygote_support import (  # noqa: F401  (the *_fixture names register fixtures)
    FERRY,
    Blocked,
    blocked_command_fixture,
    ferry,
    kill_zygotes,
    ppid_of,
    proc_limit,
    proc_status,
    socket_for,
    wait_for,
    wait_for_zygote,
    zygote_env_fixture,
)

from ferry.cli.fast import INTERACTIVE_COMMANDS, is_interactive, package_fingerprint
from ferry.workspace import Workspace


def _client_limits() -> None:
    """In the client before exec: limits an in-process run would live under."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (777, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


def _process_facts(pid: int) -> dict[str, object]:
    return {
        "umask": proc_status(pid, "Umask"),
        "nofile": proc_limit(pid, "Max open files"),
        "core": proc_limit(pid, "Max core file size"),
    }


def test_the_worker_takes_the_clients_umask_and_limits(
    zygote_env: dict[str, str], blocked_command: Callable[..., Blocked]
) -> None:
    ferry(zygote_env, "runs", "list")
    zygote = wait_for_zygote(zygote_env)
    assert proc_status(zygote, "Umask") == "0077"

    through = blocked_command(
        zygote_env, "runs", "list", "--json", umask=0o002, preexec_fn=_client_limits
    )
    assert ppid_of(through.writer) == zygote
    worker = _process_facts(through.writer)
    assert through.finish()[:2] == (0, b"[]\n")

    here_env = dict(zygote_env, FERRY_NO_DAEMON="1")
    here = blocked_command(
        here_env, "runs", "list", "--json", umask=0o002, preexec_fn=_client_limits
    )
    assert here.writer == here.proc.pid
    assert worker == _process_facts(here.writer)
    assert worker["umask"] == "0002" and worker["nofile"][0] == "777"  # type: ignore[index]
    assert worker["core"][0] == "0"  # type: ignore[index]
    here.finish()


def _modes(root: Path) -> dict[str, int]:
    return {str(path.relative_to(root)): path.stat().st_mode & 0o7777 for path in root.rglob("*")}


def test_files_a_command_creates_have_the_modes_an_in_process_run_gives(
    zygote_env: dict[str, str], tmp_path: Path
) -> None:
    ferry(zygote_env, "runs", "list")
    wait_for_zygote(zygote_env)  # its own umask is 077
    seen = []
    for umask in (0o002, 0o277):  # 277 takes owner bits too: root may still write
        through, here = tmp_path / f"through {umask:o}", tmp_path / f"here {umask:o}"
        assert ferry(zygote_env, "init", str(through), umask=umask).returncode == 0
        here_env = dict(zygote_env, FERRY_NO_DAEMON="1")
        assert ferry(here_env, "init", str(here), umask=umask).returncode == 0
        assert _modes(through) == _modes(here)
        seen.append(_modes(here))
    assert seen[0] != seen[1]  # the umask shows in these files, so the comparison means something


def test_a_limit_above_the_zygotes_hard_limit_is_logged_and_the_command_runs(
    zygote_env: dict[str, str], blocked_command: Callable[..., Blocked]
) -> None:
    """A zygote without CAP_SYS_RESOURCE and a lower hard limit than its client's."""

    def low_hard_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4000, 4000))

    folder = Path(zygote_env["FERRY_ZYGOTE_DIR"])
    folder.mkdir(mode=0o700)
    sock = socket_for(zygote_env)
    zygote = subprocess.Popen(
        [
            "setpriv",
            "--inh-caps=-sys_resource",
            "--bounding-set=-sys_resource",
            "--",
            sys.executable,
            "-m",
            "ferry.cli.zygote",
            str(sock),
            package_fingerprint(zygote_env),
            "60",
        ],
        env=zygote_env,
        preexec_fn=low_hard_limit,
    )
    try:
        wait_for_zygote(zygote_env)

        def high_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (5000, 5000))

        blocked = blocked_command(zygote_env, "runs", "list", "--json", preexec_fn=high_limit)
        assert ppid_of(blocked.writer) == zygote.pid
        assert proc_limit(blocked.writer, "Max open files") == ("4000", "4000")
        assert blocked.finish()[:2] == (0, b"[]\n")
        log = (folder / "zygote.log").read_text()
        assert "cannot set RLIMIT_NOFILE to [5000, 5000] (have [4000, 4000])" in log
    finally:
        zygote.terminate()
        zygote.wait(timeout=30)


@pytest.fixture
def script_folder(tmp_path: Path) -> Iterator[Path]:
    """A copy of the console script beside a distribution that registers a target kind."""
    folder = tmp_path / "bin dir"
    dist = folder / "zygoteprobe-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zygoteprobe\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ferry.targets]\nzygoteprobe = nowhere:Nothing\n")
    shutil.copy2(FERRY, folder / "ferry")
    yield folder


def test_sys_path_is_the_one_an_in_process_run_has(
    zygote_env: dict[str, str], script_folder: Path
) -> None:
    """In-process, sys.path[0] is the console script's folder; the worker's must be too."""
    script = str(script_folder / "ferry")
    args = [script, "target", "attach", "xx", "--type", "nosuchkind"]
    here = subprocess.run(
        args, env=dict(zygote_env, FERRY_NO_DAEMON="1"), capture_output=True, text=True
    )
    assert here.returncode == 2 and "zygoteprobe" in here.stderr
    ferry(zygote_env, "runs", "list")
    zygote = wait_for_zygote(zygote_env)
    through = subprocess.run(args, env=zygote_env, capture_output=True, text=True)
    assert (through.returncode, through.stderr) == (here.returncode, here.stderr)
    assert wait_for_zygote(zygote_env) == zygote  # it was served, not replaced


def test_interactive_commands_on_a_terminal_run_in_process(
    zygote_env: dict[str, str], tmp_path: Path, blocked_command: Callable[..., Blocked]
) -> None:
    ferry(zygote_env, "runs", "list")
    zygote = wait_for_zygote(zygote_env)
    Workspace.create(tmp_path / "ws")  # `target status` refuses a -w folder without one
    master, terminal = pty.openpty()
    try:
        for args in (
            ["target", "status", "nope"],
            ["-w", str(tmp_path / "ws"), "target", "status", "nope"],
            [f"--workspace={tmp_path / 'ws'}", "target", "status", "nope"],
        ):
            here = blocked_command(zygote_env, *args, stream=2, stdin=terminal)
            assert here.writer == here.proc.pid, args
            code, err, _ = here.finish()
            assert code == 2 and b"nope" in err

        prompting_not = blocked_command(
            zygote_env, "runs", "show", "nope", stream=2, stdin=terminal
        )
        assert ppid_of(prompting_not.writer) == zygote
        prompting_not.finish()
        no_terminal = blocked_command(
            zygote_env, "target", "status", "nope", stream=2, stdin=subprocess.DEVNULL
        )
        assert ppid_of(no_terminal.writer) == zygote
        no_terminal.finish()
    finally:
        os.close(master)
        os.close(terminal)


@pytest.mark.parametrize(
    ("argv", "interactive"),
    [
        (["login"], True),
        (["login", "--user", "x"], True),
        (["target", "attach", "box", "--type", "ssh"], True),
        (["-w", "target", "target", "attach", "x"], True),
        (["--workspace", "status", "target", "status", "x"], True),
        (["--workspace=ws", "target", "status", "x"], True),
        (["target", "--help", "status"], True),
        (["target", "list"], False),
        (["target"], False),
        (["runs", "list"], False),
        (["submit", "login"], False),
        (["-w", "login"], False),
        ([], False),
    ],
)
def test_which_commands_count_as_interactive(argv: list[str], interactive: bool) -> None:
    assert is_interactive(argv) is interactive
    assert ("login",) in INTERACTIVE_COMMANDS


def test_no_zygote_is_left_behind(zygote_env: dict[str, str]) -> None:
    """The fixture's clean-up really stops the zygote (the other tests rely on it)."""
    ferry(zygote_env, "runs", "list")
    zygote = wait_for_zygote(zygote_env)
    kill_zygotes(Path(zygote_env["FERRY_ZYGOTE_DIR"]))
    assert not Path(f"/proc/{zygote}").exists() or "Z" in Path(f"/proc/{zygote}/stat").read_text()
    folder = Path(zygote_env["FERRY_ZYGOTE_DIR"])
    wait_for(lambda: not list(folder.glob("*.sock")), "the socket to be removed")
