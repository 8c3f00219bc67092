"""Model: registered model versions (the reference's ``azureml.core.Model``).

Versions count 1, 2, … per name; the files are kept once in the workspace's blob store; a model
registered from a run knows the run, its snapshot, its environment and the datasets it read, so
:meth:`Model.lineage` walks back to the exact code, environment lock and data versions.

Example::

    model = run.register_model("sk-ridge", "outputs/model.pkl", tags={"alpha": 0.5})
    Model(ws, "sk-ridge").download("deploy/")            # deploy/model.pkl
    Model.list(ws, tags=[["alpha", "0.5"]], latest=True)
    Model.get_model_path("sk-ridge", _workspace=ws)      # azureml-models/sk-ridge/1/model.pkl
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError
from ferry.model import registry
from ferry.model.registry import ModelPathNotFoundException
from ferry.tracking.assets import AssetNotFound, ModelRecord, asset_store

if TYPE_CHECKING:
    from ferry.workspace import Workspace


_NO_SERVING = (
    "{what} is not part of ferry: it trains and keeps models but has no web services to deploy "
    "them to; fetch the files with Model(ws, name).download(target_dir) or "
    "Model.get_model_path(name, _workspace=ws) and serve them with a server of your own"
)


class ModelNotFoundException(AssetNotFound):
    """No model of that name or version in the workspace (the reference's name)."""


class Model:
    """A registered model version: ``Model(ws, name)`` is the latest, ``version=`` another,
    ``id="name:version"`` either."""

    class Framework:
        """The reference's framework names."""

        CUSTOM = "Custom"
        MULTI = "Multi"
        ONNX = "Onnx"
        PYTORCH = "PyTorch"
        SCIKITLEARN = "ScikitLearn"
        TENSORFLOW = "TensorFlow"
        TFKERAS = "TfKeras"

    def __init__(
        self,
        workspace: Workspace,
        name: str | None = None,
        id: str | None = None,
        tags: Any = None,
        properties: Any = None,
        version: int | None = None,
        run_id: str | None = None,
        model_framework: str | None = None,
        expand: bool = True,
        _record: ModelRecord | None = None,
    ) -> None:
        self.workspace = workspace
        if _record is None:
            if id is not None:
                name, _, number = str(id).partition(":")
                version = int(number) if number.isdigit() else version
            if not name:
                raise ConfigError(
                    "Model(workspace, name) needs the model's name (or id='name:version')"
                )
            if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
                raise ConfigError(f"version must be a whole number, not {version!r}")
            if tags or properties or run_id or model_framework:
                found = Model.list(
                    workspace, name=name, tags=tags, properties=properties, run_id=run_id,
                    model_framework=model_framework,
                )  # fmt: skip
                found = [m for m in found if version is None or m.version == version]
                if not found:
                    raise ModelNotFoundException(
                        f"ModelNotFound: no model {name!r} matches the given filters"
                    )
                _record = found[0].record
            else:
                try:
                    _record = asset_store(workspace.store).get_model(name, version)
                except AssetNotFound as exc:
                    raise ModelNotFoundException(str(exc)) from None
        self._record: ModelRecord = _record

    # registering -----------------------------------------------------------------------------
    @staticmethod
    def register(
        workspace: Workspace,
        model_path: str | os.PathLike[str],
        model_name: str,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
        datasets: Iterable[tuple[str, Any]] | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        child_paths: Any = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
    ) -> Model:
        """Register a local file or folder as ``model_name``'s next version (copied into the
        workspace's blob store)."""
        from ferry.model.resources import check_resources

        check_resources(resource_configuration)
        print(f"Registering model {model_name}")
        record = _blank(
            model_name, tags, properties, description, model_framework, model_framework_version
        )
        saved = registry.register_from_path(
            workspace, Path(model_path), record, dataset_pairs(workspace, datasets)
        )
        return Model(workspace, _record=saved)

    @staticmethod
    def list(
        workspace: Workspace,
        name: str | None = None,
        tags: Any = None,
        properties: Any = None,
        run_id: str | None = None,
        latest: bool = False,
        dataset_id: str | None = None,
        expand: bool = True,
        page_count: int = 255,
        model_framework: str | None = None,
    ) -> builtins.list[Model]:
        """Models, newest version first; ``tags``/``properties`` are lists of ``"key"`` or
        ``["key", "value"]``; ``latest`` keeps the newest version of each name."""
        tag_filter = _filters(tags, "tags")
        prop_filter = _filters(properties, "properties")
        records = asset_store(workspace.store).list_models(name=name, run_id=run_id, latest=latest)
        out = []
        for r in records:
            if not _matches(r.tags, tag_filter) or not _matches(r.properties, prop_filter):
                continue
            if model_framework is not None and r.framework != model_framework:
                continue
            if dataset_id is not None and dataset_id not in (d for _, d in r.datasets):
                continue
            out.append(Model(workspace, _record=r))
        return out

    # attributes ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._record.name

    @property
    def version(self) -> int:
        return int(self._record.version or 0)

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def description(self) -> str | None:
        return self._record.description

    @property
    def tags(self) -> dict[str, str | None]:
        return dict(self._record.tags)

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._record.properties)

    @property
    def created_time(self) -> datetime:
        return datetime.fromtimestamp(self._record.created_at, UTC)

    @property
    def url(self) -> str:
        return f"aml://asset/{self.id}"

    @property
    def run_id(self) -> str | None:
        return self._record.run_id

    @property
    def experiment_name(self) -> str | None:
        return self._record.experiment

    @property
    def run(self) -> Any:
        if not self._record.run_id:
            return None
        from ferry.run import Run

        return Run.get(self.workspace, self._record.run_id)

    @property
    def model_framework(self) -> str | None:
        return self._record.framework

    @property
    def model_framework_version(self) -> str | None:
        return self._record.framework_version

    @property
    def datasets(self) -> dict[str, builtins.list[Any]]:
        """``{scenario: [Dataset, …]}``: the datasets linked at registration and, for a model
        registered from a run, the versions the run read (scenario ``training``)."""
        from ferry.data.dataset import Dataset

        out: dict[str, builtins.list[Any]] = {}
        for scenario, dataset_id in self._record.datasets:
            try:
                out.setdefault(scenario, []).append(Dataset.get_by_id(self.workspace, dataset_id))
            except AssetNotFound:
                continue
        return out

    @property
    def record(self) -> ModelRecord:
        return self._record

    def lineage(self) -> dict[str, Any]:
        """What produced this version: the run, its snapshot (the exact code), the
        environment's hash and resolved lock, and the dataset versions it read."""
        r = self._record
        out: dict[str, Any] = {
            "model": self.id,
            "run": r.run_id,
            "experiment": r.experiment,
            "snapshot": r.snapshot_id,
            "environment": r.environment_hash,
            "environmentLock": None,
            "datasets": [],
        }
        if r.run_id:
            kept = {a.name: a for a in self.workspace.store.list_artifacts(r.run_id)}
            lock = kept.get("environment/lock.txt")
            out["environmentLock"] = str(self.workspace.path / lock.path) if lock else None
        assets = asset_store(self.workspace.store)
        for scenario, dataset_id in r.datasets:
            try:
                d = assets.get_dataset_by_id(dataset_id)
            except AssetNotFound:
                out["datasets"].append({"scenario": scenario, "id": dataset_id, "missing": True})
                continue
            out["datasets"].append(
                {"scenario": scenario, "id": d.id, "name": d.name, "version": d.version,
                 "manifest": d.manifest_id, "files": d.files, "bytes": d.bytes}
            )  # fmt: skip
        return out

    def serialize(self) -> dict[str, Any]:
        r = self._record
        return {
            "id": self.id,
            "name": r.name,
            "version": r.version,
            "description": r.description,
            "tags": dict(r.tags),
            "properties": dict(r.properties),
            "createdTime": self.created_time.isoformat(),
            "url": self.url,
            "runId": r.run_id,
            "experimentName": r.experiment,
            "framework": r.framework,
            "frameworkVersion": r.framework_version,
            "root": r.root,
            "isFile": r.is_file,
            "files": r.files,
            "bytes": r.bytes,
            "manifest": r.manifest_id,
            "datasets": [{"scenario": s, "id": d} for s, d in r.datasets],
        }

    # files -----------------------------------------------------------------------------------
    def download(
        self,
        target_dir: str | os.PathLike[str] = ".",
        exist_ok: bool = False,
        exists_ok: bool | None = None,
    ) -> str:
        """Write the model into ``target_dir``: a single-file model as
        ``target_dir/<file name>``, a folder as ``target_dir/<folder>/…``; returns that path."""
        ok = exist_ok if exists_ok is None else exists_ok
        return str(registry.download(self.workspace, self._record, Path(target_dir), ok))

    @staticmethod
    def get_model_path(
        model_name: str, version: int | None = None, _workspace: Workspace | None = None
    ) -> str:
        """Where the model is: with a workspace, downloaded to ``azureml-models/<name>/<version>/``
        and returned (the file for a single-file model, the folder otherwise); without one,
        found there or at ``./<model_name>`` (the reference's offline rule)."""
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise ConfigError(f"version must be a whole number, not {version!r}")
        if _workspace is None:
            try:
                import ferry_runtime as runtime  # type: ignore[import-not-found]  # a job's copy
            except ImportError:
                from ferry import runtime
            try:
                return str(runtime.get_model_path(model_name, version))
            except runtime.ModelNotFoundException as exc:
                raise ModelNotFoundException(
                    f"{exc} Outside a run, give the workspace to fetch a registered model: "
                    f"Model.get_model_path({model_name!r}, _workspace=ws)"
                ) from None
        model = Model(_workspace, model_name, version=version)
        folder = Path("azureml-models") / model.name / str(model.version)
        return model.download(folder, exist_ok=True)

    # changing --------------------------------------------------------------------------------
    def update(
        self, tags: Mapping[str, Any] | None = None, description: str | None = None, **_: Any
    ) -> None:
        self._record = asset_store(self.workspace.store).update_model(
            self.name, self.version, description=description,
            tags=None if tags is None else registry.check_tags(tags),
        )  # fmt: skip

    def add_tags(self, tags: Mapping[str, Any]) -> None:
        self.update(tags={**self.tags, **registry.check_tags(tags)})

    def remove_tags(self, tags: str | Iterable[str]) -> None:
        gone = {tags} if isinstance(tags, str) else set(tags)
        self.update(tags={k: v for k, v in self.tags.items() if k not in gone})

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        clean = {str(k): str(v) for k, v in properties.items()}
        self._record = asset_store(self.workspace.store).update_model(
            self.name, self.version, properties=clean
        )

    def delete(self) -> None:
        asset_store(self.workspace.store).delete_model(self.name, self.version)

    # serving: not ferry's -----------------------------------------------------------------
    @staticmethod
    def deploy(*args: Any, **kwargs: Any) -> Any:
        """The reference deploys to its web services; ferry trains and keeps models only."""
        raise ConfigError(_NO_SERVING.format(what="Model.deploy"))

    @staticmethod
    def package(*args: Any, **kwargs: Any) -> Any:
        raise ConfigError(_NO_SERVING.format(what="Model.package"))

    @staticmethod
    def profile(*args: Any, **kwargs: Any) -> Any:
        raise ConfigError(_NO_SERVING.format(what="Model.profile"))

    def __repr__(self) -> str:
        return f"Model(workspace={self.workspace.name!r}, name={self.name!r}, id={self.id!r}, version={self.version})"


def _blank(
    name: str,
    tags: Mapping[str, Any] | None,
    properties: Mapping[str, Any] | None,
    description: str | None,
    framework: str | None,
    framework_version: str | None,
) -> ModelRecord:
    from dataclasses import replace

    registry.check_model_name(name)
    if framework_version and not framework:
        raise ConfigError("model_framework_version needs model_framework")
    props = {str(k): str(v) for k, v in (properties or {}).items()}
    return replace(
        registry.blank(name),
        tags=registry.check_tags(tags),
        properties=props,
        description=description,
        framework=framework,
        framework_version=framework_version,
    )


def dataset_pairs(
    workspace: Workspace, datasets: Iterable[tuple[str, Any]] | None
) -> builtins.list[tuple[str, str]]:
    """``[(scenario, Dataset)]`` as (scenario, dataset id); an unregistered dataset is saved."""
    from ferry.data import catalog, versions
    from ferry.data.dataset import Dataset

    out = []
    for item in datasets or []:
        if (
            not isinstance(item, tuple | builtins.list)
            or len(item) != 2
            or not isinstance(item[1], Dataset)
        ):
            raise ConfigError(
                "datasets must be a list of (scenario, Dataset) pairs, like [('training', ds)]"
            )
        scenario, dataset = item
        record = dataset.record
        if record is None:
            record, _ = versions.snapshot_dataset(workspace, dataset.definition)
            record = catalog.assets(workspace).save_dataset(record)
        out.append((str(scenario), record.id))
    return out


def _filters(value: Any, what: str) -> builtins.list[tuple[str, str | None]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [(str(k), None if v is None else str(v)) for k, v in value.items()]
    if not isinstance(value, builtins.list | tuple):
        raise ConfigError(f"{what} must be a list of 'key' or ['key', 'value'], not {value!r}")
    out: builtins.list[tuple[str, str | None]] = []
    for item in value:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, builtins.list | tuple) and len(item) == 2:
            out.append((str(item[0]), str(item[1])))
        else:
            raise ConfigError(f"{what}: {item!r} is neither 'key' nor ['key', 'value']")
    return out


def _matches(values: Mapping[str, Any], wanted: builtins.list[tuple[str, str | None]]) -> bool:
    return all(k in values and (v is None or values[k] == v) for k, v in wanted)


__all__ = ["Model", "ModelNotFoundException", "ModelPathNotFoundException"]
