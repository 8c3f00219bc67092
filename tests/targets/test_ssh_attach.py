"""Attaching ssh targets: lookup, listing, detach, stored settings without secrets, bad input."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
import sshd
from sshd import SshServer

import ferry
from ferry.cli.main import main
from ferry.compute import ComputeTarget, RemoteCompute
from ferry.errors import ConfigError, TargetError, TargetNotFound
from ferry.targets.ssh.settings import SshSettings, secret_names
from ferry.targets.ssh.target import SshTarget

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root


def _attach(ws, name: str = "vm", **settings):  # type: ignore[no-untyped-def]
    config = RemoteCompute.attach_configuration(username="me", address="vm.example.org", **settings)
    return ComputeTarget.attach(ws, name, config)


def test_remote_compute_from_ferry_attaches_and_looks_up(workspace) -> None:  # type: ignore[no-untyped-def]
    config = ferry.RemoteCompute.attach_configuration(username="me", address="10.0.0.9")
    ferry.ComputeTarget.attach(workspace, "vm-x", config)
    found = ferry.RemoteCompute(workspace, "vm-x")
    assert (found.type, found.config["address"], found.config["username"]) == (
        "ssh",
        "10.0.0.9",
        "me",
    )


def test_attach_look_up_list_and_detach(workspace) -> None:  # type: ignore[no-untyped-def]
    attached = _attach(workspace, "gpu-vm", ssh_port=2222, work_dir="/scratch/ferry")
    assert attached.type == "ssh"
    found = ComputeTarget(workspace=workspace, name="gpu-vm")
    assert found.config["address"] == "vm.example.org"
    assert found.config["ssh_port"] == 2222
    assert found.config["work_dir"] == "/scratch/ferry"
    assert set(workspace.compute_targets) == {"local", "gpu-vm"}
    found.detach()
    with pytest.raises(TargetNotFound) as info:
        ComputeTarget(workspace=workspace, name="gpu-vm")
    assert "attached targets: local" in str(info.value)


def test_not_found_lists_attached_names(workspace) -> None:  # type: ignore[no-untyped-def]
    _attach(workspace, "vm-a")
    _attach(workspace, "vm-b")
    with pytest.raises(TargetNotFound) as info:
        ComputeTarget(workspace=workspace, name="vm-c")
    assert "vm-a" in str(info.value) and "vm-b" in str(info.value)


def test_no_secret_reaches_the_database(workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    key = awkward_dir / "id key"
    key.write_text("not read at attach time")
    with pytest.warns(UserWarning, match="never stores"):
        config = RemoteCompute.attach_configuration(
            username="me",
            address="10.0.0.4",
            password="hunter2-password",
            private_key_file=str(key),
            private_key_passphrase="s3cret-passphrase",
        )
    assert "hunter2" not in json.dumps(config.to_dict())
    assert "s3cret" not in repr(config)
    ComputeTarget.attach(workspace, "vm", config)
    db = sqlite3.connect(workspace.path / "ferry.db")
    rows = db.execute("SELECT * FROM compute_targets").fetchall()
    db.close()
    dumped = json.dumps(rows, default=str)
    assert "hunter2" not in dumped and "s3cret" not in dumped
    stored = ComputeTarget(workspace, "vm").config
    assert stored["password_from_env"] is True and stored["passphrase_from_env"] is True
    assert "password" not in stored and "private_key_passphrase" not in stored


def test_cli_attach_show_and_detach(workspace, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    def ferry_cli(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        try:
            main(["--workspace", str(workspace.path), *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out + out.err

    code, out = ferry_cli(
        "target", "attach", "vm", "--type", "ssh", "--address", "10.1.2.3", "--ssh-port", "2200",
        "--username", "me", "--set", "lease_seconds=12", "--set", "work_dir=/data/ferry",
    )  # fmt: skip
    assert code == 0, out
    code, out = ferry_cli("target", "show", "vm", "--json")
    shown = json.loads(out)
    assert shown["config"]["ssh_port"] == 2200 and shown["config"]["lease_seconds"] == 12.0
    code, out = ferry_cli("target", "attach", "bad", "--type", "ssh", "--address", "h")
    assert code == 2 and "username" in out and "Traceback" not in out
    code, out = ferry_cli(
        "target", "attach", "bad", "--type", "ssh", "--address", "h", "--username", "u",
        "--set", "leese_seconds=3",
    )  # fmt: skip
    assert code == 2 and "leese_seconds" in out and "lease_seconds" in out
    assert ferry_cli("target", "detach", "vm")[0] == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ssh_port": 70000}, "not a TCP port"),
        ({"ssh_port": "twenty-two"}, "is not a whole number"),
        ({"host_key_policy": "yolo"}, "host_key_policy"),
        ({"private_key_file": "/no/such/key"}, "does not exist"),
        ({"host_key": "not a key"}, "host_key"),
        ({"lease_seconds": 0}, "lease_seconds"),
    ],
)
def test_bad_settings_are_refused_at_attach(workspace, settings, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        _attach(workspace, **settings)
    assert ComputeTarget.list(workspace).keys() == {"local"}


def test_address_is_required() -> None:
    with pytest.raises(ConfigError, match="address"):
        RemoteCompute.attach_configuration(username="me", vm_name="my-azure-vm")


def test_secret_names_follow_the_target_name() -> None:
    assert secret_names("gpu-vm.2", "PASSWORD") == (
        "FERRY_SSH_PASSWORD_GPU_VM_2",
        "FERRY_SSH_PASSWORD",
    )


def test_status_reports_the_host(workspace, ssh_server: SshServer, remote_root: Path) -> None:  # type: ignore[no-untyped-def]
    config = SshSettings.from_config(ssh_server.attach_config(work_dir=str(remote_root))).to_dict()
    report = SshTarget.status("vm", config, workspace)
    assert report["reachable"] is True
    assert report["work_dir"] == str(remote_root)
    assert report["python"].startswith("3.")


def _status_error(workspace, config: dict) -> tuple[str, float]:  # type: ignore[no-untyped-def, type-arg]
    t = time.monotonic()
    with pytest.raises(TargetError) as info:
        SshTarget.status("vm", SshSettings.from_config(config).to_dict(), workspace)
    return str(info.value), time.monotonic() - t


def test_wrong_port_is_a_clear_error(workspace, ssh_server: SshServer) -> None:  # type: ignore[no-untyped-def]
    from sshd import free_port

    message, seconds = _status_error(workspace, ssh_server.attach_config(ssh_port=free_port()))
    assert "refused" in message and "ssh_port" in message
    assert seconds < 5


def test_unreachable_host_fails_within_the_connect_timeout(
    workspace, ssh_server: SshServer
) -> None:  # type: ignore[no-untyped-def]
    config = ssh_server.attach_config(address="192.0.2.1", ssh_port=22, connect_timeout=1)
    message, seconds = _status_error(workspace, config)
    assert "192.0.2.1" in message
    assert seconds < 8


def test_bad_key_file_is_a_clear_error(workspace, ssh_server: SshServer, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    key = awkward_dir / "broken key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n")
    message, _ = _status_error(workspace, ssh_server.attach_config(private_key_file=str(key)))
    assert "cannot read private key" in message and "broken key" in message


def test_unknown_key_is_refused_with_a_hint(
    workspace, ssh_server: SshServer, awkward_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    import asyncssh

    key = awkward_dir / "other key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key))
    message, _ = _status_error(workspace, ssh_server.attach_config(private_key_file=str(key)))
    assert "refused the login" in message and "FERRY_SSH_PASSWORD_VM" in message


def test_changed_host_key_is_refused(workspace, ssh_server: SshServer) -> None:  # type: ignore[no-untyped-def]
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    message, _ = _status_error(workspace, ssh_server.attach_config(host_key=other))
    assert "host key" in message


def test_strict_policy_needs_a_known_host(
    workspace, ssh_server: SshServer, awkward_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    config = ssh_server.attach_config(
        host_key="", host_key_policy="known-hosts", known_hosts=str(awkward_dir / "none")
    )
    message, _ = _status_error(workspace, config)
    assert "ssh-keyscan" in message


def test_an_explicit_image_is_checked_against_the_hosts_engine(
    workspace, awkward_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    """An explicit image on an ssh target needs the host's engine, which the run checks on the
    host when it prepares (submit makes no connection): no host here, so the run fails saying
    the host was not reached; nothing ran."""
    from ferry.environment import Environment
    from ferry.experiment import Experiment
    from ferry.script_run_config import ScriptRunConfig

    _attach(workspace, "vm")
    source = awkward_dir / "src"
    source.mkdir()
    (source / "train.py").write_text("print('hi')\n")
    env = Environment("boxed")
    env.docker.enabled = True
    env.docker.base_image = "ubuntu:22.04"
    config = ScriptRunConfig(str(source), "train.py", compute_target="vm", environment=env)
    run = Experiment(workspace, "boxed").submit(config)
    details = run.wait_for_completion(raise_on_error=False, timeout_seconds=120)
    assert details["status"] == "Failed", details
    assert "hi" not in (workspace.runs_dir / run.id / "user_logs" / "std_log.txt").read_text()


def test_several_nodes_are_refused_on_one_machine(workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from ferry.experiment import Experiment
    from ferry.runconfig import PyTorchConfiguration
    from ferry.script_run_config import ScriptRunConfig

    _attach(workspace, "vm")
    source = awkward_dir / "src"
    source.mkdir()
    (source / "train.py").write_text("print('hi')\n")
    two = PyTorchConfiguration("Gloo", process_count=4, node_count=2)
    config = ScriptRunConfig(
        str(source), "train.py", compute_target="vm", distributed_job_config=two
    )
    with pytest.raises(ConfigError, match="node_count=2 cannot run there"):
        Experiment(workspace, "refused").submit(config)
    assert not workspace.runs_dir.exists() or not any(workspace.runs_dir.iterdir())


def test_errors_name_the_run_and_the_target(workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """What a target raises says which run on which target, and whether a retry may help."""
    from sshd import free_port

    from ferry.errors import TargetUnavailable
    from ferry.jobdef import job_spec
    from ferry.testing.fake import RecordingContext

    config = RemoteCompute.attach_configuration(
        username="me", address="127.0.0.1", ssh_port=free_port(), connect_timeout=2
    )
    ComputeTarget.attach(workspace, "vm", config)
    source = awkward_dir / "src"
    source.mkdir()
    (source / "job.py").write_text("print('never')\n")
    job = job_spec(
        run_id="exp_1_0123abcd",
        experiment="exp",
        target="vm",
        run_dir=awkward_dir / "run",
        definition={"script": "job.py", "sourceDirectory": str(source)},
    )
    target = SshTarget("vm", ComputeTarget(workspace, "vm").config, workspace)
    try:
        with pytest.raises(TargetUnavailable, match="refused") as info:
            target.prepare(job, RecordingContext())
    finally:
        target.close()
    assert (info.value.run_id, info.value.target) == ("exp_1_0123abcd", "vm")
