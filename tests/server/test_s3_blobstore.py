"""The bucket blob store (``s3://`` through fsspec) passes the blob store conformance suite
against moto's S3 server on loopback, shares one bucket between stores, asks in batches, and
refuses bad settings with the fix in the message."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3_helpers import BucketBlobStoreContract, moto_s3, new_bucket, s3_env

from ferry.errors import ConfigError, SnapshotError
from ferry.snapshot import take_snapshot
from ferry.snapshot.blobstore import remote
from ferry.snapshot.blobstore.bucket import BlobStoreUnavailable
from ferry.snapshot.blobstore.remote import RemoteBlobStore, open_blob_store
from ferry.snapshot.digest import hash_bytes


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    yield from moto_s3()


@pytest.fixture
def aws(s3: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = s3_env(s3)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env


@pytest.fixture
def bucket_url(s3: Any, aws: dict[str, str]) -> str:
    return f"s3://{new_bucket(s3)}/team blobs"


class TestS3BlobStore(BucketBlobStoreContract):
    @pytest.fixture
    def store_url(self, bucket_url: str) -> str:
        return bucket_url


class TestS3BlobStoreLargeUploads(TestS3BlobStore):
    """The same suite with every blob going through ``tmp/`` and a server-side copy."""

    @pytest.fixture(autouse=True)
    def _everything_large(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(remote, "SMALL", 0)


def test_two_stores_share_one_bucket(bucket_url: str, tmp_path: Path) -> None:
    """What one server stores, another (its own cache) reads, verified."""
    one = RemoteBlobStore(bucket_url, tmp_path / "server one")
    two = RemoteBlobStore(bucket_url, tmp_path / "server two")
    digest = one.put_bytes(b"shared content")
    assert two.has([digest]) == {digest}
    assert two.put_bytes(b"shared content") == digest
    assert two.read_bytes(digest) == b"shared content"
    assert two.path(digest).read_bytes() == b"shared content"  # cached where targets look


def test_objects_are_named_by_content_under_the_prefix(
    bucket_url: str, tmp_path: Path, s3: Any
) -> None:
    store = RemoteBlobStore(bucket_url, tmp_path / "c")
    digest = store.put_bytes(b"layout")
    bucket = bucket_url.split("/")[2]
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"team blobs/{digest[:2]}/{digest[2:]}"]


def test_a_large_upload_that_changed_leaves_no_object(
    bucket_url: str, tmp_path: Path, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "SMALL", 1024)
    store = RemoteBlobStore(bucket_url, tmp_path / "c")
    source = tmp_path / "big"
    source.write_bytes(b"x" * 300_000)
    wrong = hash_bytes(b"y" * 300_000)
    with pytest.raises(SnapshotError, match="changed"):
        store.put_file(source, wrong)
    bucket = bucket_url.split("/")[2]
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # tmp/ removed too
    right = hash_bytes(b"x" * 300_000)
    assert store.put_file(source, right) is True
    assert s3.client().list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_asking_lists_folders_instead_of_one_request_per_blob(
    bucket_url: str, tmp_path: Path
) -> None:
    """A snapshot of 300 files asks with at most one listing per two-letter folder."""
    store = RemoteBlobStore(bucket_url, tmp_path / "c")
    calls = {"ls": 0, "info": 0}
    fs = store.fs
    real_ls, real_info = fs.ls, fs.info

    def ls(*args: Any, **kwargs: Any) -> Any:
        calls["ls"] += 1
        return real_ls(*args, **kwargs)

    def info(*args: Any, **kwargs: Any) -> Any:
        calls["info"] += 1
        return real_info(*args, **kwargs)

    fs.ls, fs.info = ls, info
    digests = [store.put_bytes(f"blob {i}".encode()) for i in range(300)]
    calls.update(ls=0, info=0)
    absent = [hash_bytes(f"absent {i}".encode()) for i in range(300)]
    assert store.has(digests + absent) == set(digests)
    folders = {d[:2] for d in digests + absent}
    assert calls["info"] == 0 and calls["ls"] == len(folders) <= 256
    sizes = {d: len(f"blob {i}") for i, d in enumerate(digests)}
    assert store.lacking({**sizes, absent[0]: 3}) == {absent[0]}


def test_snapshots_send_only_what_the_bucket_lacks(bucket_url: str, tmp_path: Path) -> None:
    """Asked in one batch; the blobs reported lacking are then sent without asking again."""
    store = RemoteBlobStore(bucket_url, tmp_path / "c")
    asked = []
    real_info = store.fs.info
    store.fs.info = lambda *a, **k: asked.append(a) or real_info(*a, **k)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i}.py").write_text(f"print({i})\n" * (i + 1))
    first = take_snapshot(src, store, tmp_path / "stat1")
    assert first.stats.new_files == 40
    assert len(asked) <= 1  # the manifest, stored after its files; never one per file
    other = RemoteBlobStore(bucket_url, tmp_path / "other cache")  # another server
    again = take_snapshot(src, other, tmp_path / "stat2")
    assert again.stats.new_files == 0 and again.snapshot_id == first.snapshot_id


def test_open_blob_store_picks_by_location(tmp_path: Path) -> None:
    assert type(open_blob_store(str(tmp_path / "b"), tmp_path / "c")).__name__ == "LocalBlobStore"
    assert type(open_blob_store(f"file://{tmp_path}/b", tmp_path / "c")).__name__ == (
        "LocalBlobStore"
    )
    assert isinstance(open_blob_store("s3://bucket/p", tmp_path / "c"), RemoteBlobStore)


# bad settings ----------------------------------------------------------------------------------
def test_a_missing_bucket_is_a_config_error_naming_the_fix(aws: Any, tmp_path: Path) -> None:
    store = RemoteBlobStore("s3://no-such-bucket-here/blobs", tmp_path / "c")
    with pytest.raises(ConfigError, match=r"does not exist.*aws s3 mb s3://no-such-bucket-here"):
        store.probe()


def test_no_credentials_is_a_config_error_naming_the_variables(
    bucket_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = RemoteBlobStore(bucket_url, tmp_path / "c")
    with pytest.raises(ConfigError, match=r"no credentials.*AWS_ACCESS_KEY_ID"):
        store.probe()


def test_wrong_credentials_are_refused_without_showing_the_secret(
    bucket_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "wrong-secret-key-that-must-not-leak"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    store = RemoteBlobStore(bucket_url, tmp_path / "c")
    with pytest.raises(ConfigError, match="refused the credentials") as caught:
        store.probe()
    assert secret not in str(caught.value)


def test_an_unreachable_endpoint_is_unavailable_naming_it(
    aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3_helpers import services

    endpoint = f"http://127.0.0.1:{services.free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    store = RemoteBlobStore("s3://some-bucket/blobs", tmp_path / "c")
    with pytest.raises(BlobStoreUnavailable, match=r"cannot be used.*AWS_ENDPOINT_URL") as caught:
        store.probe()
    assert "127.0.0.1" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["s3://AKIA:secret@bucket/p", "s3://bucket/p?secret=x", "s3://", "s3:///prefix"]
)
def test_urls_with_secrets_or_without_a_bucket_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="blob store") as caught:
        RemoteBlobStore(url, tmp_path / "c").probe()
    assert "secret@" not in str(caught.value)


def test_an_unknown_or_missing_backend_names_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nosuchproto"):
        RemoteBlobStore("nosuchproto://bucket/p", tmp_path / "c").has([hash_bytes(b"x")])
    if importlib.util.find_spec("gcsfs") is None:  # not a dependency of ferry
        with pytest.raises(ConfigError, match="pip install gcsfs"):
            RemoteBlobStore("gs://bucket/p", tmp_path / "c").has([hash_bytes(b"x")])


def test_a_local_workspace_keeps_its_blobs_in_the_bucket(
    bucket_url: str, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch, s3: Any
) -> None:
    """FERRY_BLOB_STORE=s3://… : the snapshot goes to the bucket and the supervisor (its own
    process, same variables) materializes the run from it."""
    from ferry import Experiment, ScriptRunConfig
    from ferry.workspace import Workspace

    monkeypatch.setenv("FERRY_BLOB_STORE", bucket_url)
    src = awkward_dir / "src"
    src.mkdir()
    (src / "train.py").write_text("print('ran from the bucket')\n")
    ws = Workspace.create(awkward_dir / "ws")
    try:
        assert isinstance(ws.blobs, RemoteBlobStore)
        run = Experiment(ws, "bucket").submit(ScriptRunConfig(str(src), "train.py"))
        out = io.StringIO()
        details = run.wait_for_completion(show_output=True, out=out, timeout_seconds=120)
        assert details["status"] == "Completed", out.getvalue()
        assert "ran from the bucket" in out.getvalue()
    finally:
        ws.store.close()
    digest = hash_bytes(b"print('ran from the bucket')\n")
    bucket = bucket_url.split("/")[2]
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert f"team blobs/{digest[:2]}/{digest[2:]}" in keys
