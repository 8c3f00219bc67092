"""Datastores, datasets and models of a server's workspace: the asset store over HTTP."""

from __future__ import annotations

import pytest

from ferry.tracking import RunRecord
from ferry.tracking.assets import (
    AssetExists,
    AssetNotFound,
    DatasetRecord,
    DatastoreRecord,
    ModelRecord,
    RunDatasetRecord,
    asset_store,
    new_dataset_id,
)


def test_the_asset_store_of_a_remote_workspace_is_the_servers(remote_ws) -> None:  # type: ignore[no-untyped-def]
    assets = asset_store(remote_ws.store)
    assets.save_datastore(DatastoreRecord("lake", "folder", {"path": "/data/lake"}))
    with pytest.raises(AssetExists):
        assets.save_datastore(DatastoreRecord("lake", "folder", {"path": "/elsewhere"}))
    assert assets.get_datastore("lake").config == {"path": "/data/lake"}  # type: ignore[union-attr]
    assets.set_default_datastore("lake")
    assert assets.default_datastore() == "lake"
    record = DatasetRecord(
        id=new_dataset_id(),
        kind="file",
        definition={"paths": ["a"]},
        manifest_id="0" * 64,
        files=1,
        bytes=3,
        name="mnist",
    )
    first = assets.register_dataset(record, create_new_version=True)
    assert first.version == 1 and assets.list_datasets()["mnist"] == [1]
    assert assets.get_dataset("mnist").id == first.id
    assert assets.get_dataset_by_id(first.id).name == "mnist"
    changed = assets.update_dataset(first.id, description="digits", tags={"k": "v"})
    assert changed.description == "digits" and changed.tags == {"k": "v"}
    with pytest.raises(AssetNotFound):
        assets.get_dataset("mnist", 7)
    remote_ws.store.create_run(RunRecord(id="assets_1_aaaaaaaa", experiment="assets"))
    model = assets.register_model(
        ModelRecord(
            "clf",
            "1" * 64,
            "model.pkl",
            True,
            1,
            10,
            run_id="assets_1_aaaaaaaa",
            datasets=(("training", first.id),),
        )
    )
    assert model.version == 1
    assert assets.get_model("clf").datasets == (("training", first.id),)
    assert [m.version for m in assets.list_models(run_id="assets_1_aaaaaaaa")] == [1]
    assets.add_run_datasets([RunDatasetRecord("assets_1_aaaaaaaa", "input", "train", first.id)])
    assert assets.list_run_datasets(run_id="assets_1_aaaaaaaa")[0].dataset_id == first.id
    assert assets.delete_model("clf", 1) is True
    assert assets.unregister_dataset("mnist") == 1
