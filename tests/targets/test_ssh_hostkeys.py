"""SSH host keys against a real sshd: a first key is never trusted silently (issue 9, S7).

Every test points ``known_hosts`` (the user's file) at a path of its own, so the machine's
``~/.ssh/known_hosts`` cannot make a key known by accident.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import sshd
from sshd import SshServer

from ferry.compute import ComputeTarget, RemoteCompute
from ferry.environment import Environment
from ferry.errors import ConfigError, TargetError
from ferry.experiment import Experiment
from ferry.script_run_config import ScriptRunConfig
from ferry.targets.ssh.hostkeys import HostKeyChanged, UnknownHostKey
from ferry.targets.ssh.settings import SshSettings
from ferry.targets.ssh.target import SshTarget
from ferry.testing.conformance import wait_until

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root


def server_fingerprint(server: SshServer) -> str:
    return str(asyncssh.import_public_key(server.host_public_key).get_fingerprint("sha256"))


def other_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519").convert_to_public()


def unpinned(server: SshServer, root: Path, awkward_dir: Path, **extra: Any) -> dict[str, Any]:
    """The test server's settings with no key pinned and an empty user known_hosts."""
    return server.attach_config(
        host_key="",
        work_dir=str(root),
        known_hosts=str(awkward_dir / "user known_hosts"),
        **extra,
    )


def status(workspace: Any, config: dict[str, Any], name: str = "vm") -> dict[str, Any]:
    return SshTarget.status(name, SshSettings.from_config(config).to_dict(), workspace)


def logins(server: SshServer) -> int:
    return server.log_tail().count("Accepted publickey")


def test_an_unknown_key_is_refused_with_its_fingerprint_before_any_login(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    before = logins(ssh_server)
    with pytest.raises(UnknownHostKey) as caught:
        status(workspace, unpinned(ssh_server, remote_root, awkward_dir))
    message = str(caught.value)
    fingerprint = server_fingerprint(ssh_server)
    assert caught.value.fingerprint == fingerprint and fingerprint in message
    assert "ferry target trust vm" in message
    assert f"--host-key-fingerprint {fingerprint}" in message
    assert not (workspace.path / "ssh_known_hosts").exists()  # nothing trusted on the way
    # One pinned login, and the log shows exactly one more: the refused attempt never
    # authenticated (no credential was offered to a host not yet trusted).
    status(workspace, ssh_server.attach_config(work_dir=str(remote_root)))
    wait_until(lambda: logins(ssh_server) >= before + 1, timeout=10, what="sshd's login line")
    assert logins(ssh_server) == before + 1


def test_the_old_accept_new_policy_no_longer_trusts_silently(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    config = unpinned(ssh_server, remote_root, awkward_dir, host_key_policy="accept-new")
    assert SshSettings.from_config(config).host_key_policy == "confirm"
    with pytest.raises(UnknownHostKey):
        status(workspace, config)


def test_the_right_pinned_fingerprint_is_accepted_and_recorded(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    fingerprint = server_fingerprint(ssh_server)
    config = unpinned(ssh_server, remote_root, awkward_dir, host_key_fingerprint=fingerprint)
    assert status(workspace, config)["reachable"] is True
    recorded = (workspace.path / "ssh_known_hosts").read_text()
    assert recorded == f"[127.0.0.1]:{ssh_server.port} {ssh_server.host_public_key}\n"
    assert (workspace.path / "ssh_known_hosts").stat().st_mode & 0o777 == 0o600
    status(workspace, unpinned(ssh_server, remote_root, awkward_dir))  # now known: no pin needed
    assert (workspace.path / "ssh_known_hosts").read_text() == recorded


def test_a_wrong_fingerprint_is_refused(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    wrong = str(other_key().get_fingerprint("sha256"))
    config = unpinned(ssh_server, remote_root, awkward_dir, host_key_fingerprint=wrong)
    with pytest.raises(HostKeyChanged, match="does not have the pinned fingerprint") as caught:
        status(workspace, config)
    assert server_fingerprint(ssh_server) in str(caught.value)  # what it did present
    assert not (workspace.path / "ssh_known_hosts").exists()


def test_a_key_in_the_users_known_hosts_is_accepted_silently(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    (awkward_dir / "user known_hosts").write_text(
        f"# the user's own file\n[127.0.0.1]:{ssh_server.port} {ssh_server.host_public_key}\n"
    )
    assert status(workspace, unpinned(ssh_server, remote_root, awkward_dir))["reachable"]
    assert not (workspace.path / "ssh_known_hosts").exists()


def test_a_changed_key_stays_refused_even_with_a_matching_pin(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    old = other_key().export_public_key().decode().strip()
    (workspace.path / "ssh_known_hosts").write_text(f"[127.0.0.1]:{ssh_server.port} {old}\n")
    config = unpinned(
        ssh_server, remote_root, awkward_dir, host_key_fingerprint=server_fingerprint(ssh_server)
    )
    with pytest.raises(HostKeyChanged, match="remove its line from") as caught:
        status(workspace, config)
    assert str(workspace.path / "ssh_known_hosts") in str(caught.value)


def test_a_run_on_an_unknown_host_fails_with_the_fingerprint(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    """A run's supervisor has no terminal: it refuses, and the run's error says why."""
    config = unpinned(ssh_server, remote_root, awkward_dir)
    ComputeTarget.attach(workspace, "vm", RemoteCompute.attach_configuration(**config))
    source = awkward_dir / "src"
    source.mkdir()
    (source / "job.py").write_text("print('never runs')\n")
    run = Experiment(workspace, "hostkey").submit(
        ScriptRunConfig(str(source), "job.py", compute_target="vm", environment=Environment("e"))
    )
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed"
    error = str(details.get("error") or details)
    assert server_fingerprint(ssh_server) in error and "ferry target trust vm" in error


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("MD5:aa:bb", "not a SHA256 fingerprint"),
        ("SHA256:short", "not a SHA256 fingerprint"),
        ("uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", "not a SHA256 fingerprint"),
    ],
)
def test_a_malformed_fingerprint_is_refused_at_attach(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RemoteCompute.attach_configuration(
            username="me", address="vm.example.org", host_key_fingerprint=value
        )


def test_a_pinned_key_and_fingerprint_must_agree(workspace) -> None:  # type: ignore[no-untyped-def]
    key = other_key()
    config = RemoteCompute.attach_configuration(
        username="me",
        address="vm.example.org",
        host_key=key.export_public_key().decode(),
        host_key_fingerprint=str(other_key().get_fingerprint("sha256")),
    )
    with pytest.raises(ConfigError, match="disagree"):
        ComputeTarget.attach(workspace, "vm", config)


# --- the command line: without a terminal, and in one -----------------------------------


def cli(workspace: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from ferry.cli.main import main; main()",
         "--workspace", str(workspace.path), *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def attach_unpinned(workspace: Any, server: SshServer, root: Path, awkward_dir: Path) -> None:
    config = unpinned(server, root, awkward_dir)
    ComputeTarget.attach(workspace, "vm", RemoteCompute.attach_configuration(**config))


def test_trust_without_a_terminal_refuses_and_shows_the_fingerprint(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    attach_unpinned(workspace, ssh_server, remote_root, awkward_dir)
    done = cli(workspace, "target", "trust", "vm")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert server_fingerprint(ssh_server) in done.stderr
    assert not (workspace.path / "ssh_known_hosts").exists()
    status_run = cli(workspace, "target", "status", "vm")
    assert status_run.returncode == 2 and server_fingerprint(ssh_server) in status_run.stderr


def test_trust_with_the_fingerprint_records_the_key(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    attach_unpinned(workspace, ssh_server, remote_root, awkward_dir)
    wrong = cli(
        workspace,
        "target",
        "trust",
        "vm",
        "--fingerprint",
        str(other_key().get_fingerprint("sha256")),
    )
    assert wrong.returncode == 2 and "does not have the pinned fingerprint" in wrong.stderr
    assert not (workspace.path / "ssh_known_hosts").exists()
    fingerprint = server_fingerprint(ssh_server)
    right = cli(workspace, "target", "trust", "vm", "--fingerprint", fingerprint)
    assert right.returncode == 0 and f"trusted ssh-ed25519 key {fingerprint}" in right.stdout
    assert ssh_server.host_public_key in (workspace.path / "ssh_known_hosts").read_text()
    again = cli(workspace, "target", "trust", "vm")
    assert again.returncode == 0 and "already trusted" in again.stdout
    shown = cli(workspace, "target", "status", "vm")
    assert shown.returncode == 0 and "reachable: True" in shown.stdout


def test_attach_with_a_fingerprint_option_pins_it(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    fingerprint = server_fingerprint(ssh_server)
    done = cli(
        workspace, "target", "attach", "vm", "--type", "ssh", "--address", "127.0.0.1",
        "--ssh-port", str(ssh_server.port), "--username", ssh_server.user,
        "--private-key-file", str(ssh_server.user_key_file),
        "--host-key-fingerprint", fingerprint, "--set", f"work_dir={remote_root}",
        "--set", f"known_hosts={awkward_dir / 'user known_hosts'}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ComputeTarget(workspace, "vm").config["host_key_fingerprint"] == fingerprint
    shown = cli(workspace, "target", "status", "vm")
    assert shown.returncode == 0, shown.stderr
    assert ssh_server.host_public_key in (workspace.path / "ssh_known_hosts").read_text()


def in_terminal(workspace: Any, answer: str, *args: str) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal, answering the first question with ``answer``."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from ferry.cli.main import main; main()",
         "--workspace", str(workspace.path), *args],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    seen, answered = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(master, answer.encode() + b"\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, seen.decode(errors="replace").replace("\r\n", "\n")


def test_status_in_a_terminal_shows_the_fingerprint_and_asks(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    attach_unpinned(workspace, ssh_server, remote_root, awkward_dir)
    fingerprint = server_fingerprint(ssh_server)
    code, out = in_terminal(workspace, "n", "target", "status", "vm")
    assert code == 2 and f"fingerprint: {fingerprint}" in out and "Trust this key?" in out
    assert not (workspace.path / "ssh_known_hosts").exists()
    code, out = in_terminal(workspace, "y", "target", "status", "vm")
    assert code == 0 and "reachable: True" in out, out
    assert ssh_server.host_public_key in (workspace.path / "ssh_known_hosts").read_text()
    code, out = in_terminal(workspace, "n", "target", "status", "vm")  # known now: no question
    assert code == 0 and "Trust this key?" not in out


def test_attach_in_a_terminal_asks_at_once(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path, awkward_dir: Path
) -> None:
    code, out = in_terminal(
        workspace, "yes", "target", "attach", "vm", "--type", "ssh", "--address", "127.0.0.1",
        "--ssh-port", str(ssh_server.port), "--username", ssh_server.user,
        "--private-key-file", str(ssh_server.user_key_file), "--set", f"work_dir={remote_root}",
        "--set", f"known_hosts={awkward_dir / 'user known_hosts'}",
    )  # fmt: skip
    assert code == 0, out
    assert server_fingerprint(ssh_server) in out and "trusted ssh-ed25519 key" in out
    assert status(workspace, ComputeTarget(workspace, "vm").config)["reachable"]


def test_attach_to_a_host_that_is_down_only_notes_it(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path
) -> None:
    from sshd import free_port

    code, out = in_terminal(
        workspace, "y", "target", "attach", "vm", "--type", "ssh", "--address", "127.0.0.1",
        "--ssh-port", str(free_port()), "--username", "me",
        "--set", f"known_hosts={awkward_dir / 'user known_hosts'}",
    )  # fmt: skip
    assert code == 0 and "could not check the host key now" in out, out
    assert ComputeTarget(workspace, "vm").type == "ssh"


def test_a_wrong_target_kind_cannot_be_trusted(workspace) -> None:  # type: ignore[no-untyped-def]
    done = cli(workspace, "target", "trust", "local")
    assert done.returncode == 2 and "only ssh targets have host keys" in done.stderr


def test_a_refusal_is_a_target_error() -> None:
    assert issubclass(UnknownHostKey, TargetError) and issubclass(HostKeyChanged, TargetError)
