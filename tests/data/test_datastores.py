"""Datastores: the workspace's own, folders, S3 (moto) and Azure Blob (Azurite) on loopback."""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import write_files
from services import S3Server, free_port

from ferry.cli.main import main as cli_main
from ferry.data import (
    DataReference,
    Datastore,
    DatastoreAccessDenied,
    DatastoreNotFound,
    DatastoreUnavailable,
)
from ferry.data.credentials import credentials_path
from ferry.errors import ConfigError


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_every_workspace_has_the_default_datastore_without_setup(workspace: Any) -> None:
    ds = workspace.get_default_datastore()
    assert ds.name == "workspaceblobstore"
    assert Datastore(workspace) == ds == Datastore.get(workspace, "WorkspaceBlobStore")
    assert list(workspace.datastores) == ["workspaceblobstore"]
    assert Path(ds.path_on_disk).is_relative_to(workspace.path)
    assert ds.datastore_type == "LocalFolder" and ds.container_name == "workspaceblobstore"


@pytest.mark.parametrize("kind", ["default", "s3", "azure"])
def test_upload_keeps_the_layout_and_an_unchanged_reupload_moves_nothing(
    kind: str, request: pytest.FixtureRequest, workspace: Any, sample: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    store = {
        "default": lambda: workspace.get_default_datastore(),
        "s3": lambda: request.getfixturevalue("s3_store"),
        "azure": lambda: request.getfixturevalue("azure_store"),
    }[kind]()
    ref = store.upload(str(sample), target_path="in/put", overwrite=True, show_progress=True)
    assert isinstance(ref, DataReference) and str(ref).startswith("$AZUREML_DATAREFERENCE_")
    out = capsys.readouterr().out
    assert "Uploading an estimated of 4 files" in out and "Uploaded 4 files" in out
    assert store.download(tmp_path / "back", prefix="in/put", show_progress=False) == 4
    assert _tree(tmp_path / "back" / "in" / "put") == _tree(sample)

    store.upload(str(sample), target_path="in/put", overwrite=True, show_progress=True)
    assert "Uploaded 0 files" in capsys.readouterr().out  # nothing moved

    (sample / "a.csv").write_text("x,y\n9,9\n")  # one file changed: only it moves
    store.upload(str(sample), target_path="in/put", overwrite=True, show_progress=True)
    assert "Uploaded 1 files" in capsys.readouterr().out
    store.download(tmp_path / "again", prefix="in/put/a.csv", show_progress=False)
    assert (tmp_path / "again" / "in" / "put" / "a.csv").read_text() == "x,y\n9,9\n"


def test_without_overwrite_existing_targets_are_skipped_as_the_reference(
    workspace: Any, sample: Path, tmp_path: Path
) -> None:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "t", show_progress=False)
    (sample / "b.csv").write_text("changed")
    ds.upload(str(sample), "t", overwrite=False, show_progress=False)
    assert (Path(ds.path_on_disk) / "t" / "b.csv").read_text() == "x,y\n5,6\n"


def test_upload_files_places_each_file_relative_to_its_root(
    workspace: Any, sample: Path, tmp_path: Path
) -> None:
    ds = workspace.get_default_datastore()
    files = [sample / "a.csv", sample / "nested" / "deep" / "c.txt"]
    ds.upload_files(files, relative_root=str(sample), target_path="diabetes", show_progress=False)
    root = Path(ds.path_on_disk) / "diabetes"
    assert _tree(root) == {"a.csv": b"x,y\n1,2\n3,4\n", "nested/deep/c.txt": b"hello"}
    ds.upload_files([sample / "b.csv"], target_path="flat", show_progress=False)
    assert (Path(ds.path_on_disk) / "flat" / "b.csv").is_file()


def test_download_leaves_existing_files_unless_overwrite(
    workspace: Any, sample: Path, tmp_path: Path
) -> None:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "d", show_progress=False)
    target = write_files(tmp_path / "dl", {"d/a.csv": "mine"})
    assert ds.download(target, prefix="d", show_progress=False) == 3
    assert (target / "d" / "a.csv").read_text() == "mine"
    assert ds.download(target, prefix="d", overwrite=True, show_progress=False) == 4
    assert (target / "d" / "a.csv").read_text() == "x,y\n1,2\n3,4\n"


def test_secrets_are_kept_only_in_the_private_credentials_file(
    workspace: Any, s3_store: Any, s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = s3.secret_access_key
    database = b"".join(p.read_bytes() for p in workspace.path.glob("ferry.db*"))
    assert secret.encode() not in database
    assert secret not in json.dumps(s3_store.get_details()) + repr(s3_store)
    path = credentials_path(workspace.path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["rawdata"]["secret_access_key"] == secret
    with pytest.raises(SystemExit) as ended:
        cli_main(["-w", str(workspace.path), "data", "datastores", "--json"])
    assert ended.value.code == 0
    shown = capsys.readouterr().out
    assert "rawdata" in shown and secret not in shown and s3.access_key_id not in shown


def test_a_credentials_file_others_can_read_is_refused(
    workspace: Any, s3_store: Any, sample: Path
) -> None:
    path = credentials_path(workspace.path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Datastore.get(workspace, "rawdata").upload(str(sample), "x", show_progress=False)


def test_secrets_may_come_from_the_environment(
    workspace: Any, s3: S3Server, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.make_bucket(f"env-{uuid.uuid4().hex[:8]}")
    ds = Datastore.register_s3(
        workspace, "fromenv", bucket, endpoint=s3.endpoint, skip_validation=True
    )
    assert not credentials_path(workspace.path).exists()
    monkeypatch.setenv("FERRY_DATASTORE_FROMENV_ACCESS_KEY_ID", s3.access_key_id)
    monkeypatch.setenv("FERRY_DATASTORE_FROMENV_SECRET_ACCESS_KEY", s3.secret_access_key)
    ds.upload(str(sample), "x", show_progress=False)
    assert {o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]} >= {"x/a.csv"}


def test_refused_credentials_are_named_and_nothing_is_registered(
    workspace: Any, s3: S3Server
) -> None:
    wrong = "not-the-secret-" + uuid.uuid4().hex
    with pytest.raises(DatastoreAccessDenied) as refused:
        Datastore.register_s3(
            workspace, "bad", "some-bucket", endpoint=s3.endpoint,
            access_key_id=s3.access_key_id, secret_access_key=wrong,
        )  # fmt: skip
    assert "refused the credentials" in str(refused.value) and wrong not in str(refused.value)
    assert list(workspace.datastores) == ["workspaceblobstore"]
    assert (
        not credentials_path(workspace.path).exists()
        or "bad" not in credentials_path(workspace.path).read_text()
    )


def test_refused_azure_key_is_named(workspace: Any, azure: Any) -> None:
    wrong = azure.account_key[:-8] + "AAAAAAA="
    with pytest.raises(DatastoreAccessDenied) as refused:
        Datastore.register_azure_blob_container(
            workspace, "badblob", "cont1", azure.account_name, account_key=wrong,
            endpoint=azure.endpoint, protocol="http",
        )  # fmt: skip
    assert wrong not in str(refused.value)


def test_an_unreachable_store_is_named_quickly(workspace: Any, s3: S3Server, azure: Any) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(DatastoreUnavailable, match="cannot be reached"):
        Datastore.register_s3(
            workspace, "down", "b", endpoint=closed, access_key_id="k", secret_access_key="s3cret-x"
        )
    with pytest.raises(DatastoreUnavailable, match="cannot be reached"):
        Datastore.register_azure_blob_container(
            workspace, "down2", "cont2", azure.account_name, account_key=azure.account_key,
            endpoint=f"{closed}/{azure.account_name}", protocol="http",
        )  # fmt: skip
    assert time.monotonic() - started < 30
    assert list(workspace.datastores) == ["workspaceblobstore"]


def test_unknown_datastores_and_taken_names_are_refused(workspace: Any, tmp_path: Path) -> None:
    with pytest.raises(DatastoreNotFound, match="workspaceblobstore"):
        Datastore.get(workspace, "nope")
    with pytest.raises(DatastoreNotFound):
        workspace.set_default_datastore("nope")
    Datastore.register_local_folder(workspace, "Local_1", tmp_path / "f", create_if_not_exists=True)
    with pytest.raises(ConfigError, match="overwrite=True"):
        Datastore.register_local_folder(
            workspace, "local_1", tmp_path / "g", create_if_not_exists=True
        )
    with pytest.raises(ConfigError, match="not valid"):
        Datastore.register_local_folder(workspace, "bad name!", tmp_path)
    with pytest.raises(ConfigError, match="workspace's own"):
        Datastore.register_local_folder(workspace, "workspaceblobstore", tmp_path)


def test_a_registered_datastore_can_become_the_default(
    workspace: Any, s3_store: Any, tmp_path: Path
) -> None:
    workspace.set_default_datastore("RawData")
    assert workspace.get_default_datastore().name == "rawdata"
    folder = Datastore.register_local_folder(
        workspace, "mine", tmp_path / "m", create_if_not_exists=True
    )
    assert folder.datastore_type == "LocalFolder" and Path(folder.path_on_disk).is_dir()
    assert set(workspace.datastores) == {"workspaceblobstore", "rawdata", "mine"}
    s3_store.unregister()
    assert "rawdata" not in workspace.datastores
    assert "rawdata" not in credentials_path(workspace.path).read_text()
    assert workspace.get_default_datastore().name == "workspaceblobstore"


def test_a_folder_datastore_reads_and_writes_its_own_folder(
    workspace: Any, sample: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "shared folder"
    ds = Datastore.register_local_folder(workspace, "nas", folder, create_if_not_exists=True)
    ds.upload(str(sample), "t", show_progress=False)
    assert _tree(folder / "t") == _tree(sample)
    assert not [p for p in folder.rglob("*") if ".ferry-upload-" in p.name]
    assert os.stat(folder / "t" / "a.csv").st_mtime_ns == os.stat(sample / "a.csv").st_mtime_ns


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_a_remote_upload_is_one_batch_whose_bar_moves_by_each_files_bytes(
    kind: str, request: pytest.FixtureRequest, sample: Path
) -> None:
    """The backend gets every file in one call (its whole concurrency), and the progress bar
    is told every byte, whether or not the backend reports them file by file."""
    store = request.getfixturevalue(f"{kind}_store")._store()
    pairs = [(p, f"bar/{p.relative_to(sample)}") for p in sorted(sample.rglob("*")) if p.is_file()]
    seen: list[int] = []
    store.put_many(pairs, seen.append)
    assert sum(seen) == sum(p.stat().st_size for p, _ in pairs)
    if kind == "s3":  # s3fs reports each file as it lands
        assert len(seen) >= len(pairs)
    assert sorted(f.rel for f in store.find("bar")) == sorted(rel for _, rel in pairs)
