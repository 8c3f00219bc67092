"""Models and datasets of a run, from the driver: ``register_model`` and the run's lineage.

Part of :class:`ferry.run.Run`. A model registered from a run is made of the files the run
kept (its ``outputs/`` and uploads) — entered into the workspace's blob store as they are, no
copy — and records the run, its snapshot, its environment and the dataset versions it read.

Example::

    model = run.register_model("sk-ridge", "outputs/model.pkl", tags={"alpha": "0.5"})
    run.get_details()["inputDatasets"]     # [{"dataset": <Dataset>, "consumptionDetails": …}]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ferry.run_state import RunState


class RunModels(RunState):
    """The model and lineage half of the run API (mixed into :class:`ferry.run.Run`)."""

    def register_model(
        self,
        model_name: str,
        model_path: str | None = None,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        description: str | None = None,
        datasets: Iterable[tuple[str, Any]] | None = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Register the run's file or folder ``model_path`` (default: ``model_name``), e.g.
        ``outputs/model.pkl``, as ``model_name``'s next version. A path the run did not keep
        raises ModelPathNotFoundException listing what it kept."""
        from ferry.model import Model
        from ferry.model.model import _blank, dataset_pairs
        from ferry.model.registry import register_from_run
        from ferry.model.resources import check_resources

        check_resources(resource_configuration)
        record = _blank(
            model_name, tags, properties, description, model_framework, model_framework_version
        )
        saved = register_from_run(
            self.workspace,
            self.id,
            model_path if model_path is not None else model_name,
            record,
            dataset_pairs(self.workspace, datasets),
        )
        return Model(self.workspace, _record=saved)

    def get_models(self) -> list[Any]:
        """The models registered from this run."""
        from ferry.model import Model

        return Model.list(self.workspace, run_id=self.id)

    def _dataset_lineage(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The reference's ``inputDatasets`` and ``outputDatasets`` of ``get_details()``."""
        from ferry.errors import StoreError
        from ferry.tracking.assets import AssetNotFound, asset_store

        inputs: list[dict[str, Any]] = []
        outputs: list[dict[str, Any]] = []
        try:
            links = asset_store(self._store).list_run_datasets(run_id=self.id)
        except StoreError:  # a store that keeps no datasets
            return inputs, outputs
        if not links:
            return inputs, outputs
        from ferry.data.dataset import Dataset

        for link in links:
            try:
                dataset = Dataset.get_by_id(self.workspace, link.dataset_id)
            except AssetNotFound:
                continue
            if link.direction == "input":
                inputs.append(
                    {
                        "dataset": dataset,
                        "consumptionDetails": {
                            "type": "RunInput",
                            "inputName": link.name,
                            "mechanism": link.mechanism.capitalize(),
                            "pathOnCompute": link.path_on_compute,
                        },
                    }
                )
            else:
                outputs.append(
                    {
                        "dataset": dataset,
                        "outputType": "RunOutput",
                        "outputDetails": {"outputName": link.name},
                    }
                )
        return inputs, outputs
