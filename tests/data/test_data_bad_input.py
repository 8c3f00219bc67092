"""Bad input: each a clear message (exit code 2 in the CLI) naming what was not found, nothing
half-written, no credential echoed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import write_files
from jobs import write_job
from services import S3Server, free_port

from ferry.cli.main import main as cli_main
from ferry.data import (
    DataPathNotFound,
    Dataset,
    Datastore,
    DatastoreNotFound,
    OutputFileDatasetConfig,
)
from ferry.experiment import Experiment
from ferry.script_run_config import ScriptRunConfig
from ferry.tracking import RunQuery


def _cli(capsys: pytest.CaptureFixture[str], ws: Any, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as ended:
        cli_main(["-w", str(ws.path), *args])
    return int(ended.value.code or 0), capsys.readouterr().err


def test_the_cli_names_what_is_not_there_with_exit_code_2(
    workspace: Any, sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _cli(capsys, workspace, "data", "show", "nowhere")
    assert code == 2 and "no dataset named 'nowhere'" in err and "Traceback" not in err
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "s", show_progress=False)
    Dataset.File.from_files((ds, "s/")).register(workspace, "there")
    code, err = _cli(capsys, workspace, "data", "show", "there:4")
    assert code == 2 and "no version 4" in err
    code, err = _cli(capsys, workspace, "data", "show", "there", "--version", "1", "--json")
    assert code == 0
    code, err = _cli(capsys, workspace, "models", "download", "absent")
    assert code == 2 and "absent" in err


def test_a_run_with_a_bad_dataset_is_refused_before_anything_is_written(
    workspace: Any, sample: Path, awkward_dir: Path
) -> None:
    source = write_job(awkward_dir / "src")
    bad_output = OutputFileDatasetConfig("o", destination=("nostore", "x"))
    with pytest.raises(DatastoreNotFound, match="no datastore named 'nostore'"):
        Experiment(workspace, "bad").submit(
            ScriptRunConfig(str(source), "job.py", arguments=[bad_output])
        )
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "gone", show_progress=False)
    unregistered = Dataset.File.from_files((ds, "gone/"))
    for path in Path(ds.path_on_disk, "gone").rglob("*"):
        if path.is_file():
            path.unlink()
    with pytest.raises(DataPathNotFound, match="'gone' on datastore 'workspaceblobstore'"):
        Experiment(workspace, "bad").submit(
            ScriptRunConfig(str(source), "job.py", arguments=[unregistered.as_named_input("x")])
        )
    with pytest.raises(Exception, match="Dataset cannot be used directly in a run"):
        Experiment(workspace, "bad").submit(
            ScriptRunConfig(str(source), "job.py", arguments=[unregistered])
        )
    with pytest.raises(Exception, match="for FileDatasets"):
        Dataset.Tabular.from_delimited_files((ds, "s*"), validate=False).as_named_input(
            "t"
        ).as_mount()
    assert workspace.store.list_runs(RunQuery()) == []


def test_a_store_that_went_away_or_refuses_fails_the_run_naming_it(
    workspace: Any, s3: S3Server, s3_store: Any, sample: Path, awkward_dir: Path
) -> None:
    s3_store.upload(str(sample), "s", show_progress=False)
    remote = Dataset.File.from_files((s3_store, "s/")).register(workspace, "remote")  # not cached
    source = write_job(awkward_dir / "src")
    wrong = "wrong-secret-" + "x" * 20
    Datastore.register_s3(
        workspace, "rawdata", s3_store.bucket_name, endpoint=s3.endpoint,
        access_key_id=s3.access_key_id, secret_access_key=wrong, overwrite=True,
        skip_validation=True,
    )  # fmt: skip
    run = Experiment(workspace, "bad").submit(
        ScriptRunConfig(str(source), "job.py", arguments=[remote.as_named_input("r")])
    )
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == "Failed"
    error = run.get_details()["error"]["error"]["message"]
    assert "refused the credentials" in error and "'rawdata'" in error
    log = Path(run.get_details()["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert wrong not in error + log
    Datastore.register_s3(
        workspace, "rawdata", s3_store.bucket_name, endpoint=f"http://127.0.0.1:{free_port()}",
        access_key_id=s3.access_key_id, secret_access_key=s3.secret_access_key, overwrite=True,
        skip_validation=True,
    )  # fmt: skip
    run = Experiment(workspace, "bad").submit(
        ScriptRunConfig(str(source), "job.py", arguments=[remote.as_named_input("r")])
    )
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == "Failed"
    assert "cannot be reached" in run.get_details()["error"]["error"]["message"]


UPLOADER = textwrap.dedent(
    """
    import sys
    from ferry.workspace import Workspace
    from ferry.data import Dataset
    ws = Workspace(path=sys.argv[1])
    ds = Dataset.File.upload_directory(sys.argv[2], (ws.get_default_datastore(), "big"),
                                       show_progress=False)
    ds.register(ws, "never-half")
    """
)


def test_an_upload_cut_short_leaves_whole_files_and_registers_nothing(
    workspace: Any, awkward_dir: Path
) -> None:
    source = write_files(
        awkward_dir / "big", {f"part-{i:03}.bin": os.urandom(1 << 20) for i in range(300)}
    )
    target = Path(workspace.get_default_datastore().path_on_disk) / "big"
    proc = subprocess.Popen([sys.executable, "-c", UPLOADER, str(workspace.path), str(source)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        target.is_dir() and len(list(target.iterdir())) >= 5
    ):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    landed = Dataset.File.from_files((workspace.get_default_datastore(), "big/")).to_path()
    assert 0 < len(landed) < 300
    for name in landed:  # every file listed is whole; a half-written one is never listed
        assert (target / name.lstrip("/")).read_bytes() == (source / name.lstrip("/")).read_bytes()
    assert "never-half" not in workspace.datasets


def test_no_credential_is_echoed_by_a_refused_registration(workspace: Any, s3: S3Server) -> None:
    wrong = "s3cr3t-" + "y" * 30
    with pytest.raises(Exception) as refused:
        Datastore.register_s3(
            workspace, "echo", "bucket-x", endpoint=s3.endpoint, access_key_id="AKIAFERRYTEST",
            secret_access_key=wrong,
        )  # fmt: skip
    assert wrong not in str(refused.value) and wrong not in json.dumps(
        {k: str(v) for k, v in vars(refused.value).items()}
    )
