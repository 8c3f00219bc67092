"""At submit: the datasets a run reads and writes, as plain entries of its stored definition.

Inputs come from the script's arguments (and ``run_config.data``): each
:class:`~.consumption.DatasetConsumptionConfig` — or a legacy ``DataReference`` — becomes an
entry of ``runDefinition["data"]`` in the reference's shape (``dataLocation``, ``mechanism``,
``environmentVariableName``, ``pathOnCompute``) whose ``options`` name the exact version: its id
and manifest. A registered version is used as it is; an unregistered dataset is saved (unnamed)
now, so the run reads what its paths hold at submit. Outputs (``OutputFileDatasetConfig``, or a
``DataReference`` in upload mode) become ``runDefinition["outputData"]`` entries with the
destination's ``{output-name}`` filled in (``{run-id}`` is each run's own: a rerun or a sweep's
child writes its own folder). :func:`ferry.jobdef.job_spec` turns
both into the job's typed inputs and outputs.

Example::

    data, outputs = bind(ws, src.arguments, src.run_config, run_id)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ferry.data import catalog, versions
from ferry.data.consumption import DatasetConsumptionConfig, OutputFileDatasetConfig
from ferry.data.dataset import Dataset, FileDataset
from ferry.data.definition import new_definition, single_file
from ferry.data.references import DataReference, DataReferenceConfiguration
from ferry.errors import ConfigError
from ferry.spec import WorkspaceServices

_MECHANISM = {"direct": "Direct", "mount": "Mount", "download": "Download"}


def _candidates(ws: WorkspaceServices, arguments: Iterable[Any], run_config: Any) -> list[Any]:
    found = [a for a in arguments if _is_data(a)]
    for holder in (getattr(run_config, "data", None), getattr(run_config, "output_data", None)):
        if isinstance(holder, Mapping):
            found += [v for v in holder.values() if _is_data(v)]
    return found + _data_references(ws, getattr(run_config, "data_references", None))


def _data_references(ws: WorkspaceServices, references: Any) -> list[DataReference]:
    """``run_config.data_references``: each entry a reference named by its key (the key is what
    ``$AZUREML_DATAREFERENCE_<key>`` in the arguments names). Entries of other kinds (an
    estimator's noted inputs) are left as they are."""
    if not isinstance(references, Mapping):
        return []
    out = []
    for key, value in references.items():
        if isinstance(value, DataReferenceConfiguration):
            out.append(value.reference(ws, str(key)))  # type: ignore[arg-type]
        elif isinstance(value, DataReference):
            out.append(value.to_config().reference(value.datastore.workspace, str(key)))
    return out


def _is_data(value: Any) -> bool:
    if isinstance(value, Dataset):
        raise ConfigError(
            "Dataset cannot be used directly in a run: pass dataset.as_named_input('name') "
            "(and .as_mount() or .as_download() for a FileDataset)"
        )
    return isinstance(value, DatasetConsumptionConfig | OutputFileDatasetConfig | DataReference)


def bind(
    ws: WorkspaceServices, arguments: Iterable[Any], run_config: Any, run_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's ``data`` and ``outputData`` entries (empty when it uses no dataset)."""
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    seen: dict[str, Any] = {}
    for item in _candidates(ws, arguments, run_config):
        name = item.name if not isinstance(item, DataReference) else item.data_reference_name
        if name in seen:
            if seen[name] is item or repr(seen[name]) == repr(item):
                continue
            raise ConfigError(
                f"two different datasets of the run are named {name!r}; give each its own name"
            )
        seen[name] = item
        if isinstance(item, OutputFileDatasetConfig):
            outputs[name] = _output(ws, item, run_id)
        elif isinstance(item, DataReference) and item.mode == "upload":
            outputs[name] = _reference_output(ws, item, run_id)
        else:
            inputs[name] = _input(ws, item, run_id)
    return inputs, outputs


def _input(ws: WorkspaceServices, item: Any, run_id: str) -> dict[str, Any]:
    if isinstance(item, DataReference):
        catalog.datastore_spec(ws, item.datastore.name)
        source = {"datastore": item.datastore.name, "path": item.path_on_datastore or ""}
        dataset: Dataset = FileDataset(item.datastore.workspace, new_definition("file", [source]))
        name, mode, path, placeholder = (
            item.data_reference_name, item.mode, item.path_on_compute, str(item)
        )  # fmt: skip
    else:
        dataset, name, mode = item.dataset, item.name, item.mode
        path, placeholder = item.path_on_compute, item.placeholder
    record = dataset.record
    if record is None:
        record, _ = versions.snapshot_dataset(ws, dataset.definition, run_id=None, keep_remote=True)
        record = catalog.assets(ws).save_dataset(record)
    listing = versions.load_listing(ws, record)
    files = [rel for rel, _ in listing.manifest.files()]
    definition = dict(record.definition)
    return {
        "dataLocation": {
            "dataset": {"id": record.id, "name": record.name, "version": record.version},
            "dataPath": None,
            "uri": None,
        },
        "mechanism": _MECHANISM[mode],
        "environmentVariableName": name,
        "pathOnCompute": path,
        "overwrite": False,
        "options": {
            "manifest": record.manifest_id,
            "kind": record.kind,
            "files": record.files,
            "bytes": record.bytes,
            "singleFile": single_file(definition, files),
            "format": definition.get("format"),
            "transforms": definition.get("transforms") or [],
            "placeholder": placeholder,
        },
    }


def _output(ws: WorkspaceServices, item: OutputFileDatasetConfig, run_id: str) -> dict[str, Any]:
    store, template = item.destination
    catalog.datastore_spec(ws, store)  # an unknown datastore fails at submit
    path = template.replace("{output-name}", item.name)  # {run-id}: each run's own (jobdef)
    return {
        "outputLocation": {"datastore": store, "path": path},
        "mechanism": "Upload" if item.mode == "upload" else "Mount",
        "environmentVariableName": item.name,
        "pathOnCompute": item.source,
        "overwrite": item.overwrite,
        "additionalOptions": {
            "registration": item.registration,
            "format": item.tabular,
            "placeholder": item.placeholder,
        },
    }


def _reference_output(ws: WorkspaceServices, item: DataReference, run_id: str) -> dict[str, Any]:
    catalog.datastore_spec(ws, item.datastore.name)
    return {
        "outputLocation": {
            "datastore": item.datastore.name,
            "path": item.path_on_datastore or f"dataset/{{run-id}}/{item.data_reference_name}",
        },
        "mechanism": "Upload",
        "environmentVariableName": item.data_reference_name,
        "pathOnCompute": item.path_on_compute,
        "overwrite": item.overwrite,
        "additionalOptions": {"registration": None, "format": None, "placeholder": str(item)},
    }
