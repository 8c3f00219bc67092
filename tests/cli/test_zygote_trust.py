"""The zygote's socket is a trust boundary: a folder, a peer or a file that is not ours is refused.

Each test plays the other local user of probe S1 (reliability-probe.md 4.1–4.4) for real: a
folder pre-created with the wrong owner, mode or as a symlink, a pid-file symlink, a connection
from another uid, and a listener of another uid where the zygote should be.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_zygote_support import (  # noqa: F401  (the *_fixture names register fixtures)
    FERRY,
    Blocked,
    blocked_command_fixture,
    ferry,
    in_child_as,
    other_user,
    socket_for,
    wait_for,
    wait_for_zygote,
    zygote_env_fixture,
    zygote_socket,
)

from ferry.cli.fast import package_fingerprint, read_message, send_message


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder under /tmp that another user can enter (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="ferry-zygote-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _listen(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    listener.setblocking(False)
    return listener


@pytest.mark.parametrize("kind", ["another owner", "mode 0755", "a symlink"])
def test_a_folder_that_is_not_private_means_in_process_and_nothing_sent(
    kind: str,
    zygote_env: dict[str, str],
    tmp_path: Path,
    blocked_command: Callable[..., Blocked],
) -> None:
    folder = Path(zygote_env["FERRY_ZYGOTE_DIR"])
    real = folder
    if kind == "a symlink":
        real = tmp_path / "real folder"
        real.mkdir(mode=0o700)
        folder.symlink_to(real)
    else:
        folder.mkdir(mode=0o700)
    if kind == "another owner":
        uid, gid = other_user()
        os.chown(folder, uid, gid)
    if kind == "mode 0755":
        folder.chmod(0o755)
    before = os.lstat(folder)
    name = socket_for(zygote_env).name
    listener = _listen(real / name)  # what an attacker would serve

    blocked = blocked_command(zygote_env, "runs", "list", "--json")
    assert blocked.writer == blocked.proc.pid  # the command ran in the console script itself
    code, out, err = blocked.finish()
    assert (code, out) == (0, b"[]\n"), err

    with pytest.raises(BlockingIOError):
        listener.accept()  # never connected to
    assert sorted(p.name for p in real.iterdir()) == [name]  # and no zygote started
    after = os.lstat(folder)
    assert (after.st_mode, after.st_uid) == (before.st_mode, before.st_uid)


def test_a_planted_pid_file_symlink_is_not_followed(
    zygote_env: dict[str, str], tmp_path: Path
) -> None:
    folder = Path(zygote_env["FERRY_ZYGOTE_DIR"])
    folder.mkdir(mode=0o700)
    precious = tmp_path / "precious"
    precious.write_text("precious\n")
    precious.chmod(0o600)
    pid_file = Path(f"{socket_for(zygote_env)}.pid")
    pid_file.symlink_to(precious)

    assert ferry(zygote_env, "runs", "list", "--json").stdout == "[]\n"
    zygote = wait_for_zygote(zygote_env)
    assert precious.read_text() == "precious\n"
    assert stat.S_ISREG(os.lstat(pid_file).st_mode) and pid_file.read_text() == str(zygote)
    assert stat.S_IMODE(os.lstat(pid_file).st_mode) == 0o600
    assert b"ferry.cli.zygote" in Path(f"/proc/{zygote}/cmdline").read_bytes()


def test_a_planted_log_symlink_is_not_followed(zygote_env: dict[str, str], tmp_path: Path) -> None:
    folder = Path(zygote_env["FERRY_ZYGOTE_DIR"])
    folder.mkdir(mode=0o700)
    precious = tmp_path / "precious"
    precious.write_text("precious\n")
    (folder / "zygote.log").symlink_to(precious)
    res = ferry(zygote_env, "runs", "list", "--json")
    assert (res.returncode, res.stdout) == (0, "[]\n"), res.stderr
    assert precious.read_text() == "precious\n"


def test_socket_pid_file_and_log_are_private_whatever_the_umask(
    zygote_env: dict[str, str],
) -> None:
    assert ferry(zygote_env, "runs", "list", umask=0).returncode == 0
    sock = zygote_socket(zygote_env)
    folder = Path(zygote_env["FERRY_ZYGOTE_DIR"])
    modes = {
        path.name: stat.S_IMODE(os.lstat(path).st_mode)
        for path in (folder, sock, Path(f"{sock}.pid"), folder / "zygote.log")
    }
    assert modes == {
        folder.name: 0o700,
        sock.name: 0o600,
        f"{sock.name}.pid": 0o600,
        "zygote.log": 0o600,
    }


def test_the_zygote_refuses_a_connection_from_another_user(
    zygote_env: dict[str, str], world_dir: Path
) -> None:
    """Probe 4.4: even a socket others may open (a umask-000 victim) runs nothing for them."""
    ferry(zygote_env, "runs", "list")
    sock = zygote_socket(zygote_env)
    reachable = world_dir / "z.sock"
    os.link(sock, reachable)  # the same socket, where the other user can reach it
    reachable.chmod(0o666)
    marker = world_dir / "evil"
    uid, gid = other_user()
    fingerprint = package_fingerprint(zygote_env)

    def attack() -> bytes:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(20)
        conn.connect(str(reachable))
        request = {
            "op": "run",
            "argv": ["init", str(marker)],
            "cwd": "/",
            "fingerprint": fingerprint,
        }
        try:
            send_message(conn, request, [0, 1, 2])
            reply = read_message(conn, bytearray())
        except (ConnectionResetError, BrokenPipeError):
            reply = None
        return b"closed" if reply is None else json.dumps(reply).encode()

    assert in_child_as(uid, gid, attack) == b"closed"  # without a word, nothing run
    assert not marker.exists()
    log = (Path(zygote_env["FERRY_ZYGOTE_DIR"]) / "zygote.log").read_text()
    assert f"refused a connection from uid {uid}" in log
    assert ferry(zygote_env, "runs", "list", "--json").stdout == "[]\n"  # still serves its user


def test_the_client_sends_nothing_to_a_listener_of_another_user(
    zygote_env: dict[str, str], world_dir: Path
) -> None:
    """Probe 4.2: a fake zygote of another uid gets a connection and not one byte."""
    uid, gid = other_user()
    os.chown(world_dir, uid, gid)
    fake = world_dir / "fake.sock"
    folder = Path(zygote_env["FERRY_ZYGOTE_DIR"])
    folder.mkdir(mode=0o700)
    received: list[bytes] = []

    def serve_as_other_user() -> bytes:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(fake))
        listener.listen(1)
        listener.settimeout(30)
        conn, _ = listener.accept()
        data = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                data += chunk
        return f"connected, {len(data)} bytes".encode()

    fake_server = threading.Thread(
        target=lambda: received.append(in_child_as(uid, gid, serve_as_other_user))
    )
    fake_server.start()
    wait_for(fake.exists, "the other user's listener")
    os.link(fake, socket_for(zygote_env))  # where our zygote would be

    res = ferry(zygote_env, "runs", "list", "--json")
    fake_server.join(30)
    assert received == [b"connected, 0 bytes"]
    assert (res.returncode, res.stdout) == (0, "[]\n"), res.stderr  # it ran here instead
    log = (folder / "zygote.log").read_text()
    assert f"is served by uid {uid}" in log


def test_a_command_request_carries_no_environment(
    zygote_env: dict[str, str],
) -> None:
    """The worker reads the client's environment from /proc: secrets never enter the socket."""
    folder = Path(zygote_env["FERRY_ZYGOTE_DIR"])
    folder.mkdir(mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(socket_for(zygote_env)))
    listener.listen(1)
    listener.settimeout(30)
    seen: dict[str, Any] = {}

    def fake_zygote() -> None:
        conn, _ = listener.accept()
        with conn:
            data, ancdata, _, _ = conn.recvmsg(1 << 20, socket.CMSG_SPACE(64))
            for _level, _kind, cdata in ancdata:  # the client's stdin/stdout/stderr
                for i in range(0, len(cdata) - len(cdata) % 4, 4):
                    os.close(int.from_bytes(cdata[i : i + 4], "little"))
            buffer = bytearray(data)
            seen["raw"] = bytes(buffer)
            seen["request"] = read_message(conn, buffer)
            send_message(conn, {"started": False, "reason": "test"})

    server = threading.Thread(target=fake_zygote)
    server.start()
    env = dict(zygote_env, FERRY_SSH_PASSWORD="s3cret-pw", AWS_SECRET_ACCESS_KEY="AKIAs3cret")
    res = ferry(env, "runs", "list", "--json")
    server.join(30)
    assert (res.returncode, res.stdout) == (0, "[]\n"), res.stderr  # refused: ran here
    request = seen["request"]
    assert isinstance(request, dict)
    assert b"s3cret" not in seen["raw"]
    assert "env" not in request
    assert request["op"] == "run" and request["argv"] == ["runs", "list", "--json"]
    assert request["sys_path"][0] == str(Path(FERRY).parent)


def test_the_zygote_runs_without_the_clients_secrets(zygote_env: dict[str, str]) -> None:
    env = dict(zygote_env, FERRY_SSH_PASSWORD="s3cret-pw", AWS_SECRET_ACCESS_KEY="AKIAs3cret")
    assert ferry(env, "runs", "list").returncode == 0
    zygote = wait_for_zygote(env)
    environ = Path(f"/proc/{zygote}/environ").read_bytes()
    assert b"s3cret" not in environ
    names = {entry.split(b"=", 1)[0] for entry in environ.split(b"\0") if entry}
    assert b"FERRY_HOME" not in names and b"PATH" in names


def test_the_zygote_log_is_cut_when_over_a_mebibyte_and_gets_lines(
    zygote_env: dict[str, str],
) -> None:
    folder = Path(zygote_env["FERRY_ZYGOTE_DIR"])
    folder.mkdir(mode=0o700)
    log = folder / "zygote.log"
    log.write_bytes(b"old line\n" * 200_000)
    assert ferry(zygote_env, "runs", "list").returncode == 0
    zygote = wait_for_zygote(zygote_env)
    text = log.read_text()
    assert len(text) < 10_000 and "old line" not in text
    assert "client: starting a zygote" in text
    assert f"[{zygote}] serving {zygote_socket(zygote_env)}" in text
