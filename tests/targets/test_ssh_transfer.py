"""What moves to the host: only missing blobs, the tree exactly, environments built once."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import zipfile
from pathlib import Path

import pytest
import sshd
from sshd import SshServer

from ferry.compute import ComputeTarget, RemoteCompute
from ferry.environment import Environment
from ferry.experiment import Experiment
from ferry.ingest import artifact_dir
from ferry.run import Run
from ferry.script_run_config import ScriptRunConfig
from ferry.testing.conformance import wait_until

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root

SENT = re.compile(r"snapshot of (\d+) files; sent (\d+) blob\(s\), (\d+) bytes")


def _attach(ws, server: SshServer, work_dir: Path, name: str = "vm", **extra):  # type: ignore[no-untyped-def]
    config = server.attach_config(work_dir=str(work_dir), **extra)
    ComputeTarget.attach(ws, name, RemoteCompute.attach_configuration(**config))


def _submit(ws, source: Path, target: str = "vm", env: Environment | None = None) -> dict:  # type: ignore[no-untyped-def, type-arg]
    config = ScriptRunConfig(str(source), "job.py", compute_target=target, environment=env)
    run = Experiment(ws, "transfer").submit(config)
    return run.wait_for_completion()


def _log(details: dict) -> str:  # type: ignore[type-arg]
    return Path(details["logFiles"]["user_logs/std_log.txt"]).read_text(encoding="utf-8")


def _sent(details: dict) -> tuple[int, int, int]:  # type: ignore[type-arg]
    match = SENT.search(_log(details))
    assert match, _log(details)
    files, blobs, size = (int(g) for g in match.groups())
    return files, blobs, size


def test_resubmitting_an_unchanged_tree_sends_nothing(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    source = awkward_dir / "big tree"
    for i in range(5000):
        folder = source / f"pkg {i // 500}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"module_{i}.py").write_text(f"VALUE = {i}\n")
    (source / "job.py").write_text(
        "import os\nprint('files', sum(len(f) for _, _, f in os.walk('.')))\n"
    )
    _attach(workspace, ssh_server, remote_root / "cas")
    first = _submit(workspace, source)
    assert first["status"] == "Completed"
    files, blobs, size = _sent(first)
    assert files == 5001 and blobs == 5002 and size > 0  # every file and the manifest
    assert "files 5001" in _log(first)
    second = _submit(workspace, source)
    assert second["status"] == "Completed"
    assert _sent(second) == (5001, 0, 0)
    (source / "pkg 3" / "module_1500.py").write_text("VALUE = 'changed'\n")
    third = _submit(workspace, source)
    files, blobs, size = _sent(third)
    assert (blobs, size) == (2, len("VALUE = 'changed'\n") + len(_manifest_bytes(third, workspace)))
    runs = remote_root / "cas" / "runs"
    # run folders are removed when the supervisor closes the target; the cache stays
    wait_until(lambda: not any(runs.iterdir()), timeout=10, what="the remote run folders to go")
    assert any((remote_root / "cas" / "blobs").iterdir())


def _manifest_bytes(details: dict, ws) -> bytes:  # type: ignore[no-untyped-def, type-arg]
    return bytes(ws.blobs.path(details["properties"]["ContentSnapshotId"]).read_bytes())


def test_awkward_tree_arrives_exactly(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    source = awkward_dir / "src 'q' ü"
    names = ["sp ace.txt", "quo'te\".txt", "ünï cødé.txt", "-leading-dash", "sub dir/deep ü/x.bin"]
    for i, name in enumerate(names):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(bytes(range(256)) * i + name.encode())
    tool = source / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    os.symlink("sp ace.txt", source / "link to space")
    os.symlink("../../outside", source / "escaping link")
    (source / "job.py").write_text(
        """
import hashlib, json, os
tree = {}
for folder, _, files in os.walk("."):
    for name in files:
        path = os.path.join(folder, name)[2:]
        if path.startswith(("outputs", "logs")):
            continue
        if os.path.islink(path):
            tree[path] = "link:" + os.readlink(path)
        else:
            tree[path] = [hashlib.sha256(open(path, "rb").read()).hexdigest(),
                          os.stat(path).st_mode & 0o777]
print("TREE" + json.dumps(tree, sort_keys=True))
"""
    )
    _attach(workspace, ssh_server, remote_root / "awkward")
    details = _submit(workspace, source)
    assert details["status"] == "Completed", _log(details)
    log = _log(details)
    tree = json.loads(log.split("TREE", 1)[1].splitlines()[0])
    for name in names:
        data = (source / name).read_bytes()
        assert tree[name] == [hashlib.sha256(data).hexdigest(), 0o644], name
    assert tree["tool.sh"][1] == 0o755
    assert tree["link to space"] == "link:sp ace.txt"
    assert "escaping link" not in tree
    assert "not recreating link 'escaping link'" in log


def test_built_environment_is_reused(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    source = awkward_dir / "env src"
    source.mkdir()
    (source / "job.py").write_text("import sys\nprint('PREFIX', sys.prefix)\n")
    work = remote_root / "envs"
    _attach(workspace, ssh_server, work, uv="none")
    env = Environment("small")  # built by ferry: a bare venv on the host (an environment that
    env.python.conda_dependencies.set_pip_option("--no-index")  # declares nothing is not built)
    first = _submit(workspace, source, env=env)
    assert first["status"] == "Completed", _log(first)
    assert "building" in _log(first) and "-m venv" in _log(first)
    env_hash = first["properties"]["ferry.environment.hash"]
    folder = work / "envs" / env_hash
    assert f"PREFIX {folder}" in _log(first)
    marker = (folder / ".ferry-env.json").stat().st_ino
    second = _submit(workspace, source, env=env)
    assert "reusing" in _log(second) and "building" not in _log(second)
    assert second["properties"]["ferry.environment.hash"] == env_hash
    assert (folder / ".ferry-env.json").stat().st_ino == marker


def _wheel(folder: Path) -> Path:
    """A tiny pure-Python wheel, so a build with a package needs no index."""
    path = folder / "tinyferrypkg-1.0-py3-none-any.whl"
    files = {
        "tinyferrypkg/__init__.py": b"ANSWER = 42\n",
        "tinyferrypkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinyferrypkg\nVersion: 1.0\n",
        "tinyferrypkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append("tinyferrypkg-1.0.dist-info/RECORD,,")
        zf.writestr("tinyferrypkg-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return path


@pytest.mark.parametrize("builder", ["uv", "venv"])
def test_environment_with_a_package_is_built_on_the_host(  # type: ignore[no-untyped-def]
    builder: str, workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    source = awkward_dir / "pkg src"
    source.mkdir()
    (source / "job.py").write_text("import tinyferrypkg\nprint('ANSWER', tinyferrypkg.ANSWER)\n")
    wheel = _wheel(awkward_dir)
    env = Environment("tiny")
    env.python.conda_dependencies.pip_packages.append(f"tinyferrypkg @ {wheel.as_uri()}")
    uv = str(Path(sys.executable).parent / "uv") if builder == "uv" else "none"
    _attach(workspace, ssh_server, remote_root / f"pkg-{builder}", uv=uv)
    details = _submit(workspace, source, env=env)
    log = _log(details)
    assert details["status"] == "Completed", log
    assert "ANSWER 42" in log
    assert ("building with" in log) and ((builder == "uv") == ("-m venv" not in log))
    run = Run(Experiment(workspace, "transfer"), details["runId"])
    assert "environment/lock.txt" in run.get_file_names()
    lock = artifact_dir(workspace.path, run.id) / "environment" / "lock.txt"
    assert "tinyferrypkg" in lock.read_text()


@pytest.mark.parametrize(
    ("interpreter", "expected"),
    [
        (None, "/usr/bin/python3"),  # the reference's default "python": the host's own Python
        ("/usr/bin/python3.11", "/usr/bin/python3.11"),  # named: that one, as given
    ],
)
def test_user_managed_environment_uses_the_host_interpreter(  # type: ignore[no-untyped-def]
    workspace,
    awkward_dir: Path,
    ssh_server: SshServer,
    remote_root: Path,
    interpreter: str | None,
    expected: str,
) -> None:
    """The default interpreter is the target's (``interpreter_path``), never this machine's."""
    assert os.access(expected, os.X_OK), f"{expected} is on this machine (the test's host)"
    source = awkward_dir / "um src"
    source.mkdir()
    (source / "job.py").write_text("import sys\nprint('EXE', sys.executable)\n")
    env = Environment("mine")
    env.python.user_managed_dependencies = True
    if interpreter is not None:
        env.python.interpreter_path = interpreter
    work = remote_root / f"um {interpreter}"
    _attach(workspace, ssh_server, work, interpreter_path="/usr/bin/python3")
    details = _submit(workspace, source, env=env)
    assert details["status"] == "Completed", _log(details)
    assert f"EXE {expected}\n" in _log(details)
    assert not (work / "envs").exists() or not any(
        p.name[0] != "." for p in (work / "envs").iterdir()
    )


def test_a_corrupt_blob_on_the_host_is_sent_again(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    source = awkward_dir / "corrupt src"
    source.mkdir()
    body = b"print('intact')\n"
    (source / "job.py").write_bytes(body)
    work = remote_root / "corrupt"
    _attach(workspace, ssh_server, work)
    assert _submit(workspace, source)["status"] == "Completed"
    digest = hashlib.sha256(body).hexdigest()
    (work / "blobs" / digest[:2] / digest[2:]).write_bytes(b"print('evil!!')\n")
    second = _submit(workspace, source)
    log = _log(second)
    assert "intact" in log and "evil" not in log
    assert _sent(second)[1:] == (1, len(body))


def test_an_environment_declaring_only_the_references_defaults_is_not_built(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    """As on every target: azureml-defaults is ferry's runtime's job, and nothing else is
    declared, so the job runs with the host's own Python (said in the log)."""
    source = awkward_dir / "defaults src"
    source.mkdir()
    (source / "job.py").write_text("import sys\nprint('EXE', sys.executable)\n")
    env = Environment("ported")
    env.python.conda_dependencies.add_pip_package("azureml-defaults")
    work = remote_root / "defaults"
    _attach(workspace, ssh_server, work, interpreter_path="/usr/bin/python3")
    details = _submit(workspace, source, env=env)
    log = _log(details)
    assert "EXE /usr/bin/python3\n" in log and "azureml-defaults: not installed" in log, log
    assert "building" not in log and "ferry.environment.hash" not in details["properties"]
