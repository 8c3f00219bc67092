"""Datasets and models inside a job: ``run.input_datasets``, ``run.output_datasets``,
``run.register_model`` and ``Model.get_model_path``.

The target says where everything is through the environment (``docs/runtime-protocol.md``):
``FERRY_INPUT_DATASETS`` and ``FERRY_OUTPUT_DATASETS`` (JSON: name → path and how), besides the
reference's own variables (``AZUREML_DATASET_ENVIRONMENT_VARS``, one variable per input named
after it). ``register_model`` checks that the path exists in the job (or was uploaded) and
writes a ``model`` record; the supervisor registers the model from the run's kept files when
the run's outputs are collected. Standard library only.

Example::

    run = Run.get_context()
    images = run.input_datasets["mnist"]             # a folder (or the file) of the dataset
    table = run.input_datasets["diabetes"].to_pandas_dataframe()
    run.register_model("sk", "outputs/model.pkl")
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional

from .encoding import show

INPUTS_VARIABLE = "FERRY_INPUT_DATASETS"
OUTPUTS_VARIABLE = "FERRY_OUTPUT_DATASETS"
CATALOG_VARIABLE = "FERRY_MODEL_CATALOG"
BLOBS_VARIABLE = "FERRY_BLOBS_DIR"

Record = Dict[str, Any]


class ModelNotFoundException(Exception):
    """``Model.get_model_path`` found no such model (the reference's name)."""


class ModelPathNotFoundException(Exception):
    """``run.register_model`` of a path the job has not produced (the reference's name)."""


class TabularInput:
    """A tabular dataset given to the job: its files' folder, and its rows on demand."""

    def __init__(self, name: str, entry: Mapping[str, Any]) -> None:
        self.name = name
        self.path = str(entry.get("path") or "")
        self.id = entry.get("id")
        self._format = dict(entry.get("format") or {})
        self._transforms = list(entry.get("transforms") or [])

    def to_pandas_dataframe(
        self, on_error: str = "null", out_of_range_datetime: str = "null"
    ) -> Any:
        from .tabular import read_table

        files = _files_below(self.path)
        return read_table(
            [p for _, p in files], [n for n, _ in files], self._format, self._transforms
        )

    def to_path(self) -> List[str]:
        return ["/" + name for name, _ in _files_below(self.path)]

    def __repr__(self) -> str:
        return f"TabularDataset(name={self.name!r}, path={self.path!r})"


def _files_below(path: str) -> List[Any]:
    if os.path.isfile(path):
        return [(os.path.basename(path), path)]
    out = []
    for folder, dirs, names in os.walk(path, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(folder, name)
            out.append((os.path.relpath(full, path).replace(os.sep, "/"), full))
    return out


def _json(environ: Mapping[str, str], variable: str) -> Dict[str, Any]:
    try:
        data = json.loads(environ.get(variable) or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def input_datasets(environ: Mapping[str, str]) -> Dict[str, Any]:
    """name → the path of a mounted or downloaded dataset, or a :class:`TabularInput`."""
    out: Dict[str, Any] = {}
    for name, entry in _json(environ, INPUTS_VARIABLE).items():
        if not isinstance(entry, dict):
            continue
        out[name] = (
            TabularInput(name, entry) if entry.get("kind") == "tabular" else entry.get("path")
        )
    return out


def output_datasets(environ: Mapping[str, str]) -> Dict[str, str]:
    """name → the folder the job writes that output into."""
    return {k: str(v) for k, v in _json(environ, OUTPUTS_VARIABLE).items()}


class DataMixin:
    """The data half of the run API (mixed into :class:`~.run.Run`)."""

    _id: str
    _offline: bool
    _emit: Callable[[Record], None]

    @property
    def input_datasets(self) -> Dict[str, Any]:
        """The run's input datasets by name (empty for a script run by hand)."""
        return input_datasets(os.environ)

    @property
    def output_datasets(self) -> Dict[str, str]:
        """The folders of the run's output datasets by name."""
        return output_datasets(os.environ)

    def register_model(
        self,
        model_name: str,
        model_path: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
        properties: Optional[Mapping[str, Any]] = None,
        model_framework: Optional[str] = None,
        model_framework_version: Optional[str] = None,
        description: Optional[str] = None,
        datasets: Any = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
        **kwargs: Any,
    ) -> Optional[Dict[str, Any]]:
        """Register ``model_path`` (default ``model_name``; e.g. ``outputs/model.pkl``) as a
        model once the run's outputs are kept. Raises ModelPathNotFoundException at once when
        the job has not produced that path."""
        path = (model_path if model_path is not None else model_name).replace("\\", "/").strip("/")
        if self._offline:
            show(f"Attempted to register model {model_name} from {path}")
            return None
        uploaded = set(getattr(self, "get_file_names")())  # noqa: B009 - ArtifactsMixin's
        produced = (
            os.path.exists(path)
            or path in uploaded
            or any(n.startswith(path + "/") for n in uploaded)
        )
        if not produced:
            raise ModelPathNotFoundException(
                f"Could not locate the provided model_path {path} in the set of files uploaded "
                f"to the run: {sorted(uploaded)}, nor in the job's folder {os.getcwd()}: write "
                "it there (./outputs is kept) or upload it first"
            )
        pairs = []
        for item in datasets or []:
            scenario, dataset = item
            pairs.append([str(scenario), str(getattr(dataset, "id", dataset))])
        record = {
            "k": "model",
            "run": self._id,
            "ts": time.time(),
            "rid": uuid.uuid4().hex,
            "name": model_name,
            "path": path,
            "tags": {str(k): None if v is None else str(v) for k, v in (tags or {}).items()},
            "properties": {str(k): str(v) for k, v in (properties or {}).items()},
            "description": description,
            "framework": model_framework,
            "framework_version": model_framework_version,
            "datasets": pairs,
        }
        self._emit(record)
        return {"name": model_name, "path": path}


def get_model_path(model_name: str, version: Optional[int] = None) -> str:
    """The reference's rule: ``azureml-models/<name>/<version>/`` (newest when no version) under
    ``$AML_APP_ROOT`` or the working folder, its single entry or the folder; on the local target
    a registered model is copied there first; else ``./<model_name>``."""
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise TypeError(f"version must be an int, not {version!r}")
    roots = [r for r in (os.environ.get("AML_APP_ROOT"), os.getcwd()) if r]
    for root in roots:
        found = _cached(os.path.join(root, "azureml-models", model_name), version)
        if found:
            return found
    fetched = _from_catalog(model_name, version, os.getcwd())
    if fetched:
        return fetched
    if os.path.exists(model_name):
        return model_name
    raise ModelNotFoundException(
        f"Model not found in cache or in root at ./{model_name}. For more info, set logging "
        "level to DEBUG."
    )


def _cached(base: str, version: Optional[int]) -> Optional[str]:
    if version is None:
        try:
            numbers = [int(n) for n in os.listdir(base) if n.isdigit()]
        except OSError:
            return None
        if not numbers:
            return None
        version = max(numbers)
    folder = os.path.join(base, str(version))
    try:
        entries = os.listdir(folder)
    except OSError:
        return None
    return os.path.join(folder, entries[0]) if len(entries) == 1 else folder


def _from_catalog(name: str, version: Optional[int], root: str) -> Optional[str]:
    """Copy a registered model from the workspace's blob store (local target only)."""
    catalog_path = os.environ.get(CATALOG_VARIABLE)
    blobs = os.environ.get(BLOBS_VARIABLE)
    if not catalog_path or not blobs:
        return None
    try:
        with open(catalog_path, encoding="utf-8") as fh:
            versions = json.load(fh).get(name) or {}
    except (OSError, ValueError):
        return None
    if not versions:
        return None
    number = max(int(v) for v in versions) if version is None else version
    entry = versions.get(str(number))
    if not entry:
        return None
    from .modelcopy import copy_model

    dest = os.path.join(root, "azureml-models", name, str(number))
    return copy_model(entry["manifest"], str(entry["root"]), blobs, dest)


class Model:
    """The reference's ``Model`` inside a job: :meth:`get_model_path`."""

    @staticmethod
    def get_model_path(
        model_name: str, version: Optional[int] = None, _workspace: Any = None
    ) -> str:
        return get_model_path(model_name, version)


class FileInput:
    """A file dataset given to the job, as ``Dataset.get_by_id`` returns it inside a job."""

    def __init__(self, name: str, entry: Mapping[str, Any]) -> None:
        self.name = name
        self.path = str(entry.get("path") or "")
        self.id = entry.get("id")

    def to_path(self) -> List[str]:
        return ["/" + name for name, _ in _files_below(self.path)]

    def download(self, target_path: Optional[str] = None, overwrite: bool = False) -> List[str]:
        """The dataset's files (copied under ``target_path`` when one is given)."""
        files = _files_below(self.path)
        if target_path is None:
            return [p for _, p in files]
        import shutil

        out = []
        for rel, src in files:
            dest = os.path.join(target_path, rel)
            if os.path.exists(dest) and not overwrite:
                raise RuntimeError(f"{dest} exists; pass overwrite=True to replace it")
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            shutil.copyfile(src, dest)
            out.append(dest)
        return out

    def __repr__(self) -> str:
        return f"FileDataset(name={self.name!r}, path={self.path!r})"


def job_dataset(key: str, by: str, environ: Mapping[str, str] = os.environ) -> Any:
    """The run's input that ``key`` names — by ``"id"`` (its dataset id, or the path the job
    was given for it, which is what its argument holds) or by ``"name"`` (the registered name
    or the input's name) — as a tabular or file dataset; a clear error otherwise."""
    for name, entry in _json(environ, INPUTS_VARIABLE).items():
        if not isinstance(entry, dict):
            continue
        label = str(entry.get("label") or "")
        keys = (
            {entry.get("id"), entry.get("path")}
            if by == "id"
            else {name, label.rpartition(":")[0] or label}
        )
        if key in keys:
            if entry.get("kind") == "tabular":
                return TabularInput(name, entry)
            return FileInput(name, entry)
    raise RuntimeError(
        f"this run has no input dataset with {by} {key!r}: inside a ferry job, datasets come in "
        "through the run — pass dataset.as_named_input('name') in the run's arguments and read "
        "Run.get_context().input_datasets['name'] (or Dataset.get_by_id(ws, id=<that argument>))"
    )


class Dataset:
    """The reference's ``Dataset`` inside a job: the run's own inputs, by id or name."""

    @staticmethod
    def get_by_id(workspace: Any = None, id: str = "", **kwargs: Any) -> Any:
        return job_dataset(id, "id")

    @staticmethod
    def get_by_name(
        workspace: Any = None, name: str = "", version: Any = "latest", **kwargs: Any
    ) -> Any:
        return job_dataset(name, "name")
