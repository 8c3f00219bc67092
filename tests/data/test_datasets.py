"""Datasets: definitions, registered versions that never change, reading them back."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import write_files
from services import S3Server

from ferry.data import (
    DataPathNotFound,
    Dataset,
    DatasetChanged,
    DatasetNotFound,
    DataType,
    FileDataset,
    TabularDataset,
)
from ferry.errors import ConfigError


def _read(paths: list[str]) -> dict[str, bytes]:
    return {Path(p).name: Path(p).read_bytes() for p in paths}


@pytest.fixture
def http_files(sample: Path) -> Iterator[str]:
    """The sample folder served over HTTP on loopback."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(sample))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_from_files_accepts_the_reference_path_forms(
    workspace: Any, sample: Path, http_files: str
) -> None:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "s", show_progress=False)
    every = ["/a.csv", "/b.csv", "/nested/deep/c.txt", "/with space é.txt"]
    assert Dataset.File.from_files((ds, "s/")).to_path() == every
    assert Dataset.File.from_files([(ds, "s")]).to_path() == every
    assert Dataset.File.from_files([(ds, "s/**/*.txt")]).to_path() == [
        "/nested/deep/c.txt",
        "/with space é.txt",
    ]
    assert Dataset.File.from_files([(ds, "s/*.csv")]).to_path() == ["/a.csv", "/b.csv"]
    assert Dataset.File.from_files([(ds, "s/a.csv"), (ds, "s/nested/")]).to_path() == [
        "/a.csv",
        "/deep/c.txt",
    ]
    assert Dataset.File.from_files(ds.path("s/b.csv")).to_path() == ["/b.csv"]
    assert Dataset.File.from_files(str(sample / "nested")).to_path() == ["/deep/c.txt"]
    web = Dataset.File.from_files(f"{http_files}/a.csv")
    assert web.to_path() == ["/a.csv"]
    assert _read(web.download(workspace.path / "web")) == {"a.csv": b"x,y\n1,2\n3,4\n"}


def test_registering_makes_versions_and_the_same_content_is_the_same_version(
    workspace: Any, sample: Path
) -> None:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "s", show_progress=False)
    files = Dataset.File.from_files((ds, "s/*.csv"))
    v1 = files.register(workspace, "tables", description="two tables", tags={"team": "a"})
    assert (v1.name, v1.version, v1.description, v1.tags) == (
        "tables",
        1,
        "two tables",
        {"team": "a"},
    )
    assert files.register(workspace, "tables", create_new_version=True).version == 1
    write_files(Path(ds.path_on_disk), {"s/a.csv": "x,y\n7,7\n"})
    with pytest.raises(ConfigError, match="create_new_version=True"):
        files.register(workspace, "tables")
    v2 = files.register(workspace, "tables", create_new_version=True)
    assert v2.version == 2 and v2.id != v1.id
    assert Dataset.get_by_name(workspace, "tables").version == 2
    assert Dataset.get_by_name(workspace, "tables", version=1).id == v1.id
    assert Dataset.get_by_name(workspace, "tables", "1").id == v1.id
    assert Dataset.get_by_id(workspace, v1.id).version == 1
    assert list(workspace.datasets) == ["tables"]


def test_a_registered_version_keeps_its_bytes_after_the_datastore_changes(
    workspace: Any, sample: Path, tmp_path: Path
) -> None:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "s", show_progress=False)
    Dataset.File.from_files((ds, "s/")).register(workspace, "data")
    write_files(Path(ds.path_on_disk), {"s/a.csv": "rewritten"})
    (Path(ds.path_on_disk) / "s" / "b.csv").unlink()
    again = Dataset.get_by_name(workspace, "data", 1)
    assert _read(again.download(tmp_path / "v1"))["a.csv"] == b"x,y\n1,2\n3,4\n"
    with again.mount() as ctx:
        assert (Path(ctx.mount_point) / "b.csv").read_text() == "x,y\n5,6\n"
        assert not os.access(Path(ctx.mount_point) / "a.csv", os.W_OK) or os.geteuid() == 0
    assert not Path(ctx.mount_point).exists()


def test_a_remote_version_is_fetched_and_checked_and_a_changed_file_is_named(
    workspace: Any, s3_store: Any, s3: S3Server, sample: Path, tmp_path: Path
) -> None:
    s3_store.upload(str(sample), "s", show_progress=False)
    v1 = Dataset.File.from_files((s3_store, "s/*.csv")).register(workspace, "remote")
    bucket = s3_store.bucket_name
    s3.client().put_object(Bucket=bucket, Key="s/b.csv", Body=b"changed in the bucket")
    with pytest.raises(DatasetChanged) as changed:
        v1.download(tmp_path / "one")
    assert "'b.csv'" in str(changed.value) and "remote:1" in str(changed.value)
    assert not (tmp_path / "one" / "b.csv").exists()

    s3.client().put_object(Bucket=bucket, Key="s/b.csv", Body=b"x,y\n5,6\n")  # back as it was
    assert _read(v1.download(tmp_path / "two"))["b.csv"] == b"x,y\n5,6\n"
    s3.client().put_object(Bucket=bucket, Key="s/b.csv", Body=b"changed again")
    assert _read(v1.download(tmp_path / "three"))["b.csv"] == b"x,y\n5,6\n"  # kept once read
    v2 = Dataset.File.from_files((s3_store, "s/*.csv")).register(
        workspace, "remote", create_new_version=True
    )
    assert v2.version == 2 and _read(v2.download(tmp_path / "four"))["b.csv"] == b"changed again"


def test_azure_blob_datasets_read_back(
    workspace: Any, azure_store: Any, sample: Path, tmp_path: Path
) -> None:
    azure_store.upload(str(sample), "z", show_progress=False)
    v1 = Dataset.File.from_files((azure_store, "z/**")).register(workspace, "blobbed")
    assert _read(v1.download(tmp_path / "z")) == {
        "a.csv": b"x,y\n1,2\n3,4\n", "b.csv": b"x,y\n5,6\n", "c.txt": b"hello",
        "with space é.txt": b"unicode",
    }  # fmt: skip


def test_skip_take_sample_and_split_pick_files(workspace: Any, awkward_dir: Path) -> None:
    ds = workspace.get_default_datastore()
    write_files(awkward_dir / "many", {f"f{i:02}.bin": str(i) for i in range(20)})
    ds.upload(str(awkward_dir / "many"), "m", show_progress=False)
    files = Dataset.File.from_files((ds, "m/"))
    assert files.skip(18).to_path() == ["/f18.bin", "/f19.bin"]
    assert files.skip(2).take(2).to_path() == ["/f02.bin", "/f03.bin"]
    assert files.take_sample(0.5, seed=3).to_path() == files.take_sample(0.5, seed=3).to_path()
    first, second = files.random_split(0.75, seed=11)
    a, b = first.to_path(), second.to_path()
    assert len(a) == 15 and len(b) == 5 and sorted(a + b) == files.to_path()
    left, right = files.random_split(0.5)  # a seed is chosen and kept: still complementary
    assert sorted(left.to_path() + right.to_path()) == files.to_path()


def test_a_subset_of_a_registered_version_stays_within_that_version(
    workspace: Any, sample: Path
) -> None:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "s", show_progress=False)
    v1 = Dataset.File.from_files((ds, "s/*.csv")).register(workspace, "fixed")
    write_files(Path(ds.path_on_disk), {"s/0.csv": "new,first\n"})
    assert v1.take(1).to_path() == ["/a.csv"]
    assert v1.take(1).register(workspace, "fixed-first").to_path() == ["/a.csv"]


def test_tabular_datasets_read_rows(workspace: Any, sample: Path, awkward_dir: Path) -> None:
    import pandas as pd

    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "s", show_progress=False)
    table = Dataset.Tabular.from_delimited_files([(ds, "s/*.csv")])
    assert isinstance(table, TabularDataset)
    frame = table.to_pandas_dataframe()
    assert frame.to_dict("list") == {"x": [1, 3, 5], "y": [2, 4, 6]}
    with_path = Dataset.Tabular.from_delimited_files(
        [(ds, "s/*.csv")], include_path=True, set_column_types={"y": DataType.to_float()}
    ).to_pandas_dataframe()
    assert with_path["Path"].tolist() == ["/a.csv", "/a.csv", "/b.csv"]
    assert with_path["y"].dtype == "float64"
    assert table.skip(1).take(1).to_pandas_dataframe().to_dict("list") == {"x": [3], "y": [4]}
    train, test = table.random_split(0.67, seed=5)
    rows = sorted(
        train.to_pandas_dataframe()["x"].tolist() + test.to_pandas_dataframe()["x"].tolist()
    )
    assert rows == [1, 3, 5] and len(train.to_pandas_dataframe()) == 2
    assert table.keep_columns(["y"]).to_pandas_dataframe().columns.tolist() == ["y"]
    assert table.drop_columns("y").to_pandas_dataframe().columns.tolist() == ["x"]
    semi = write_files(awkward_dir / "semi", {"t.txt": "1;2\n3;4\n"})
    plain = Dataset.Tabular.from_delimited_files(str(semi / "t.txt"), separator=";", header=False)
    assert plain.to_pandas_dataframe().to_dict("list") == {"Column1": [1, 3], "Column2": [2, 4]}
    parquet_dir = awkward_dir / "pq"
    parquet_dir.mkdir()
    pd.DataFrame({"k": [1, 2, 3]}).to_parquet(parquet_dir / "part.parquet")
    ds.upload(str(parquet_dir), "pq", show_progress=False)
    registered = Dataset.Tabular.from_parquet_files((ds, "pq/*.parquet")).register(workspace, "pq")
    again = Dataset.get_by_name(workspace, "pq")
    assert isinstance(again, TabularDataset) and registered.version == 1
    assert again.to_pandas_dataframe()["k"].tolist() == [1, 2, 3]


def test_tags_descriptions_and_unregistering(workspace: Any, sample: Path) -> None:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "s", show_progress=False)
    v1 = Dataset.File.from_files((ds, "s/")).register(workspace, "tagged", tags={"a": "1"})
    v1.add_tags({"b": 2}).remove_tags("a").update(description="now described")
    again = Dataset.get_by_name(workspace, "tagged")
    assert again.tags == {"b": "2"} and again.description == "now described"
    kept_id = again.id
    again.unregister_all_versions()
    assert "tagged" not in workspace.datasets
    assert Dataset.get_by_id(workspace, kept_id).name is None  # kept for its runs and models


def test_upload_directory_gives_a_dataset_of_what_was_uploaded(
    workspace: Any, sample: Path
) -> None:
    ds = workspace.get_default_datastore()
    files = Dataset.File.upload_directory(
        str(sample), (ds, "up"), pattern="*.csv", show_progress=False
    )
    assert isinstance(files, FileDataset) and files.to_path() == ["/a.csv", "/b.csv"]


def test_names_versions_and_paths_that_do_not_exist_are_named(workspace: Any, sample: Path) -> None:
    ds = workspace.get_default_datastore()
    with pytest.raises(
        DataPathNotFound, match="'nothing/\\*\\*' on datastore 'workspaceblobstore'"
    ):
        Dataset.File.from_files((ds, "nothing/**"))
    with pytest.raises(DataPathNotFound, match="matches no file"):
        Dataset.File.from_files(str(sample / "absent"))
    with pytest.raises(DatasetNotFound, match="no dataset named 'absent'"):
        Dataset.get_by_name(workspace, "absent")
    ds.upload(str(sample), "s", show_progress=False)
    Dataset.File.from_files((ds, "s/")).register(workspace, "there")
    with pytest.raises(DatasetNotFound, match=r"no version 4; its versions are \[1\]"):
        Dataset.get_by_name(workspace, "there", version=4)
    with pytest.raises(ConfigError, match="'latest' or a number"):
        Dataset.get_by_name(workspace, "there", version="newest")
    with pytest.raises(DatasetNotFound):
        Dataset.get_by_id(workspace, "not-an-id")
    with pytest.raises(ConfigError, match="not valid"):
        Dataset.File.from_files((ds, "s/")).register(workspace, " leading space")
    with pytest.raises(ConfigError, match="inside the datastore"):
        Dataset.File.from_files((ds, "../outside"))
    with pytest.raises(ConfigError, match="environment variable"):
        Dataset.File.from_files((ds, "s/")).as_named_input("1bad")
