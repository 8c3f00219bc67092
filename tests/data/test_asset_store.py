"""The asset-store contract (datastores, dataset versions, models, lineage) on SQLite AND a real
PostgreSQL server (started by the test session; missing PostgreSQL FAILS with how to install)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ferry.errors import ConfigError
from ferry.status import RunStatus
from ferry.testing.postgres import PostgresCluster, PostgresUnavailable, postgres_cluster
from ferry.tracking import RunRecord, RunStore, open_store
from ferry.tracking.assets import (
    AssetExists,
    AssetNotFound,
    AssetStore,
    DatasetRecord,
    DatastoreRecord,
    ModelRecord,
    RunDatasetRecord,
    asset_store,
    new_dataset_id,
)

DIGEST = "ab" * 32


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresCluster]:
    try:
        with postgres_cluster() as cluster:
            yield cluster
    except PostgresUnavailable as exc:
        pytest.fail(f"the asset store tests need PostgreSQL: {exc}", pytrace=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def runs(request: pytest.FixtureRequest, awkward_dir: Path) -> Iterator[RunStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{awkward_dir / 'ferry.db'}"
    else:
        url = request.getfixturevalue("pg").create_database()
    store = open_store(url)
    yield store
    store.close()


@pytest.fixture
def assets(runs: RunStore) -> AssetStore:
    return asset_store(runs)


def _dataset(name: str | None = "d", manifest: str = DIGEST, **extra: object) -> DatasetRecord:
    record = DatasetRecord(
        id=new_dataset_id(), kind="file", definition={"sources": [{"datastore": "x", "path": "p"}]},
        manifest_id=manifest, files=2, bytes=10, locator_id=DIGEST, name=name,
    )  # fmt: skip
    return replace(record, **extra)  # type: ignore[arg-type]


def _model(name: str = "m", **extra: object) -> ModelRecord:
    record = ModelRecord(
        name=name, manifest_id=DIGEST, root="model.pkl", is_file=True, files=1, bytes=3
    )
    return replace(record, **extra)  # type: ignore[arg-type]


def test_the_asset_store_is_the_run_stores_other_half(runs: RunStore) -> None:
    assert asset_store(runs) is asset_store(runs)


def test_datastores_are_kept_replaced_and_one_is_the_default(assets: AssetStore) -> None:
    assets.save_datastore(DatastoreRecord("s3", "s3", {"bucket_name": "b"}))
    with pytest.raises(AssetExists, match="overwrite=True"):
        assets.save_datastore(DatastoreRecord("s3", "s3", {"bucket_name": "other"}))
    assets.set_default_datastore("s3")
    assets.save_datastore(DatastoreRecord("s3", "s3", {"bucket_name": "c"}), overwrite=True)
    assert assets.get_datastore("s3").config == {"bucket_name": "c"}  # type: ignore[union-attr]
    assert assets.default_datastore() == "s3"  # replacing keeps it the default
    with pytest.raises(AssetNotFound, match="workspaceblobstore, s3"):
        assets.set_default_datastore("nope")
    assets.set_default_datastore("workspaceblobstore")
    assert assets.default_datastore() is None
    assert [d.name for d in assets.list_datastores()] == ["s3"]
    assert assets.delete_datastore("s3") and assets.get_datastore("s3") is None


def test_dataset_versions_count_per_name_and_the_same_content_is_one_version(
    assets: AssetStore,
) -> None:
    v1 = assets.register_dataset(_dataset(), create_new_version=False)
    assert (v1.name, v1.version) == ("d", 1)
    assert assets.register_dataset(_dataset(), create_new_version=True).id == v1.id
    with pytest.raises(AssetExists, match="There is already a dataset registered under name 'd'"):
        assets.register_dataset(_dataset(manifest="cd" * 32), create_new_version=False)
    v2 = assets.register_dataset(_dataset(manifest="cd" * 32), create_new_version=True)
    assert v2.version == 2
    assert assets.get_dataset("d").id == v2.id and assets.get_dataset("d", 1).id == v1.id
    assert assets.get_dataset_by_id(v1.id).manifest_id == DIGEST
    with pytest.raises(AssetNotFound, match=r"no version 3; its versions are \[1, 2\]"):
        assets.get_dataset("d", 3)
    with pytest.raises(AssetNotFound, match=r"no dataset named 'e'.*'d'"):
        assets.get_dataset("e")
    saved = assets.save_dataset(_dataset(name="ignored"))
    assert saved.name is None and assets.list_datasets() == {"d": [1, 2]}
    updated = assets.update_dataset(v1.id, description="first", tags={"a": "1"})
    assert (updated.description, updated.tags) == ("first", {"a": "1"})
    assert assets.unregister_dataset("d") == 2
    assert assets.list_datasets() == {} and assets.get_dataset_by_id(v2.id).name is None


def test_concurrent_registrations_take_distinct_versions(
    assets: AssetStore, runs: RunStore
) -> None:
    got: list[int] = []
    errors: list[BaseException] = []

    def register(i: int) -> None:
        try:
            other = asset_store(runs)
            record = other.register_dataset(
                _dataset(manifest=f"{i:02x}" * 32), create_new_version=True
            )
            got.append(int(record.version or 0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(got) == list(range(1, 9))


def test_model_versions_lists_and_properties(assets: AssetStore) -> None:
    first = assets.register_model(
        _model(tags={"t": "1"}, run_id="r1", datasets=(("training", "d1"),))
    )
    second = assets.register_model(_model(properties={"k": "v"}))
    other = assets.register_model(_model("n"))
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert assets.get_model("m").version == 2 and assets.get_model("m", 1).datasets == (
        ("training", "d1"),
    )
    assert [(m.name, m.version) for m in assets.list_models()] == [("m", 2), ("m", 1), ("n", 1)]
    assert [(m.name, m.version) for m in assets.list_models(latest=True)] == [("m", 2), ("n", 1)]
    assert [m.version for m in assets.list_models(run_id="r1")] == [1]
    with pytest.raises(AssetNotFound, match="Model with name x not found"):
        assets.get_model("x")
    with pytest.raises(AssetNotFound, match=r"its versions are \[1, 2\]"):
        assets.get_model("m", 5)
    assert assets.update_model("m", 2, properties={"k2": "w"}).properties == {"k": "v", "k2": "w"}
    with pytest.raises(ConfigError, match="cannot change"):
        assets.update_model("m", 2, properties={"k": "changed"})
    assert assets.delete_model("m", 1) and [m.version for m in assets.list_models("m")] == [2]


def test_lineage_records_what_runs_read_and_wrote(assets: AssetStore, runs: RunStore) -> None:
    now = time.time()
    runs.create_run(
        RunRecord(id="e_1_aaaaaaaa", experiment="e", status=RunStatus.QUEUED, created_at=now)
    )
    assets.add_run_datasets(
        [
            RunDatasetRecord("e_1_aaaaaaaa", "input", "mnist", "d1", "mount", "/p"),
            RunDatasetRecord("e_1_aaaaaaaa", "output", "out", "d2", "upload"),
        ]
    )
    assets.add_run_datasets([RunDatasetRecord("e_1_aaaaaaaa", "input", "mnist", "d3", "download")])
    found = assets.list_run_datasets(run_id="e_1_aaaaaaaa")
    assert [(r.direction, r.name, r.dataset_id, r.mechanism) for r in found] == [
        ("input", "mnist", "d3", "download"),
        ("output", "out", "d2", "upload"),
    ]
    assert [r.run_id for r in assets.list_run_datasets(dataset_id="d2")] == ["e_1_aaaaaaaa"]
