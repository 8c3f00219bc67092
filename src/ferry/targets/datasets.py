"""A job's datasets on the machine that runs it: where they go, what the job sees, and what
becomes of its outputs. Written once for every target.

Inputs (:class:`~ferry.spec.DataInputSpec`) land at ``path_on_compute`` (absolute, or relative
to the job's working folder) or, by default, in the run's folder. On this machine a mounted
input is a read-only view of links into the workspace's blob store (nothing is copied), a
downloaded one a copy; SSH hosts and Ray nodes keep blobs in their own content-addressed cache
(only what they lack moves) and share one read-only copy per version. A single-file dataset is
given as that file's path. The job sees each path in its argument placeholders
(``DatasetConsumptionConfig:<name>``), in a variable named after the input (the reference's),
and in ``FERRY_INPUT_DATASETS`` for ``Run.get_context().input_datasets``.

Outputs (:class:`~ferry.spec.DataOutputSpec`) are empty folders the job writes; when it
completes, :func:`finish` uploads each one to its datastore and saves it as a dataset version
(registered when asked), and registers the models the job asked for (``run.register_model``)
from the files the run kept. The run's lineage records every version read and written.

Example::

    places = input_places(job, run_dir=str(job.run_dir), workdir=str(workdir))
    seen = deliver_here(workspace, job, places, ctx.log)
    argv = substitute(argv, job, seen, outputs)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ferry.errors import ConfigError, FerryError
from ferry.snapshot import Manifest
from ferry.spec import DataInputSpec, JobSpec, WorkspaceServices

#: variables an input's name must not replace (the reference sets one per input name)
_RESERVED = re.compile(
    r"^(PATH|HOME|USER|SHELL|PWD|LANG|TERM|TMPDIR|PYTHON\w*|LD_\w+|VIRTUAL_ENV|FERRY_\w+|AZUREML_\w+)$",
    re.IGNORECASE,
)
Log = Callable[[str], None]


# where things go (pure) --------------------------------------------------------------------------
def _place(path: str | None, default: str, workdir: str) -> str:
    if path is None:
        return default
    return path if path.startswith("/") else f"{workdir.rstrip('/')}/{path}"


def input_places(job: JobSpec, *, run_dir: str, workdir: str) -> dict[str, str]:
    """Where each input's folder goes on the job's machine."""
    return {
        i.name: _place(i.path_on_compute, f"{run_dir}/inputs/{i.name}", workdir) for i in job.inputs
    }


def output_places(job: JobSpec, *, run_dir: str, workdir: str) -> dict[str, str]:
    """Where each output folder is on the job's machine."""
    return {
        o.name: _place(o.path_on_compute, f"{run_dir}/data_outputs/{o.name}", workdir)
        for o in job.outputs
    }


def job_path(spec: DataInputSpec, folder: str) -> str:
    """What the job gets for an input: the folder, or the file of a single-file dataset."""
    return f"{folder.rstrip('/')}/{spec.single_file}" if spec.single_file else folder


def variables(
    job: JobSpec, inputs: Mapping[str, str], outputs: Mapping[str, str]
) -> dict[str, str]:
    """The job's data variables: ``FERRY_INPUT_DATASETS``/``FERRY_OUTPUT_DATASETS`` for the
    runtime, and the reference's (one variable per name, ``AZUREML_DATAREFERENCE_<name>``,
    ``AZUREML_DATASET_ENVIRONMENT_VARS``, ``AZUREML_DATASET_FILE_OUTPUTS``)."""
    if not job.inputs and not job.outputs:
        return {}
    described = {}
    for spec in job.inputs:
        entry: dict[str, object] = {"path": inputs[spec.name], "mechanism": spec.mechanism,
                                    "kind": spec.kind, "id": spec.dataset_id,
                                    "label": spec.label}  # fmt: skip
        if spec.tabular:
            entry.update(spec.tabular)
        described[spec.name] = entry
    values = {
        "FERRY_INPUT_DATASETS": json.dumps(described),
        "FERRY_OUTPUT_DATASETS": json.dumps(dict(outputs)),
        "AZUREML_DATASET_ENVIRONMENT_VARS": ",".join(f"{i.name}:{i.mechanism}" for i in job.inputs),
        "AZUREML_DATASET_FILE_OUTPUTS": ";".join(o.name for o in job.outputs),
    }
    for name, path in [*inputs.items(), *outputs.items()]:
        values[f"AZUREML_DATAREFERENCE_{name}"] = path
        if not _RESERVED.match(name):
            values[name] = path
    return values


def substitute(
    argv: list[str], job: JobSpec, inputs: Mapping[str, str], outputs: Mapping[str, str]
) -> list[str]:
    """The command line with each dataset placeholder replaced by its path."""
    if not job.inputs and not job.outputs:
        return argv
    pairs = [(i.placeholder, inputs[i.name]) for i in job.inputs]
    pairs += [(o.placeholder, outputs[o.name]) for o in job.outputs]
    pairs.sort(key=lambda p: len(p[0]), reverse=True)  # a longer placeholder first
    out = []
    for arg in argv:
        for placeholder, path in pairs:
            if placeholder and placeholder in arg:
                arg = arg.replace(placeholder, path)
        out.append(arg)
    return out


# this machine ---------------------------------------------------------------------------------------
def deliver_here(
    ws: WorkspaceServices,
    job: JobSpec,
    places: Mapping[str, str],
    log: Log,
    made: list[str] | None = None,
) -> dict[str, str]:
    """Put every input at its place on this machine; returns what the job gets per input.
    Each folder made is appended to ``made`` (to be removed after the run)."""
    from ferry.data.views import copy_view, shared_view

    seen = {}
    for spec in job.inputs:
        manifest = _local_manifest(ws, spec, log)
        folder = Path(places[spec.name])
        _fresh(folder)
        if made is not None:
            made.append(str(folder))
        if spec.mechanism == "download":
            copy_view(manifest, ws.blobs, folder)
        else:  # one link to the version's shared read-only view: nothing is copied
            os.symlink(shared_view(manifest, ws.blobs, Path(ws.cache_dir) / "views"), folder)
        seen[spec.name] = job_path(spec, str(folder))
        log(f"ferry: dataset {spec.label} ({len(manifest)} files) as input {spec.name!r}: "
            f"{'copied' if spec.mechanism == 'download' else 'read-only view'} at {folder}")  # fmt: skip
    record_inputs(ws, job, places)
    return seen


def local_manifests(ws: WorkspaceServices, job: JobSpec, log: Log) -> dict[str, Manifest]:
    """Every input's manifest with all its blobs in the workspace (before shipping them)."""
    return {spec.name: _local_manifest(ws, spec, log) for spec in job.inputs}


def _local_manifest(ws: WorkspaceServices, spec: DataInputSpec, log: Log) -> Manifest:
    from ferry.data.versions import ensure_local
    from ferry.tracking.assets import asset_store

    record = asset_store(ws.store).get_dataset_by_id(spec.dataset_id)
    manifest = ensure_local(ws, record, log)
    if manifest.snapshot_id != spec.manifest_id:
        raise ConfigError(
            f"input {spec.name!r}: dataset {spec.label} does not hold the files the run was "
            "submitted with; submit the run again"
        )
    return manifest


def _fresh(folder: Path) -> None:
    """Make way for an input's folder: a link or an empty folder goes; anything else is
    someone's data, and the run is refused with the path (never overwritten)."""
    from ferry.agent.store import free_path

    try:
        free_path(str(folder))
    except RuntimeError as exc:
        raise ConfigError(str(exc)) from None
    folder.parent.mkdir(parents=True, exist_ok=True)


def remove_places(places: Iterable[str], keep_under: Path) -> None:
    """After the run: remove the dataset folders it made outside ``keep_under`` (the run's own
    folder goes with the run)."""
    for folder in places:
        path = Path(folder)
        if path.resolve().is_relative_to(keep_under.resolve()):
            continue
        if path.is_symlink():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def prepare_outputs_here(places: Mapping[str, str], made: list[str] | None = None) -> None:
    """Empty output folders (one holding someone's data is refused, as for inputs)."""
    for folder in places.values():
        _fresh(Path(folder))
        Path(folder).mkdir()
        if made is not None:
            made.append(folder)


def record_inputs(ws: WorkspaceServices, job: JobSpec, places: Mapping[str, str]) -> None:
    """The run's lineage: the dataset versions it read."""
    from ferry.tracking.assets import RunDatasetRecord, asset_store

    asset_store(ws.store).add_run_datasets(
        [
            RunDatasetRecord(
                job.run_id, "input", i.name, i.dataset_id, i.mechanism, places.get(i.name)
            )
            for i in job.inputs
        ]
    )


# after the job -------------------------------------------------------------------------------------
def finish(
    ws: WorkspaceServices,
    job: JobSpec,
    *,
    outputs_dir: Path,
    staged: Mapping[str, Path],
    succeeded: bool,
    log: Log,
) -> None:
    """After the job: remember the digests of its kept outputs, save its output datasets (when
    it succeeded) and register the models it asked for. A failure is raised after the run's
    outputs are indexed, so the run fails with the reason and keeps what it made."""
    from ferry.model.registry import hash_kept_files

    if outputs_dir.is_dir():
        kept = [p for p in outputs_dir.rglob("*") if p.is_file() and not p.is_symlink()]
        hash_kept_files(ws, job.run_id, kept)
    problems: list[str] = []
    if job.outputs and not succeeded:
        log("ferry: the job did not succeed: its output datasets are not saved")
    elif job.outputs:
        from ferry.data.publish import publish_output

        for spec in job.outputs:
            try:
                publish_output(ws, job.run_id, spec, staged.get(spec.name), log)
            except FerryError as exc:
                problems.append(f"output dataset {spec.name!r} was not saved: {exc}")
    problems += register_pending_models(ws, job.run_id, outputs_dir, log)
    if problems:
        _index_outputs(ws, job, outputs_dir, log)
        for problem in problems:
            log(f"ferry: {problem}")
        raise ConfigError("; ".join(problems))


def _index_outputs(ws: WorkspaceServices, job: JobSpec, outputs_dir: Path, log: Log) -> None:
    from ferry.ingest import output_records

    ws.store.add_artifacts(output_records(outputs_dir, Path(ws.path), job.run_id, log))


def register_pending_models(
    ws: WorkspaceServices, run_id: str, outputs_dir: Path, log: Log
) -> list[str]:
    """Register the models the job asked for, once each (``<run>/models.pending.done`` keeps
    what was); returns what could not be registered."""
    from dataclasses import replace

    from ferry.ingest import PENDING_MODELS, output_records
    from ferry.model.registry import blank, register_from_run

    pending = Path(ws.runs_dir) / run_id / PENDING_MODELS
    try:
        lines = pending.read_text(encoding="ascii").splitlines()
    except OSError:
        return []
    done_path = pending.with_suffix(".done")
    try:
        done = set(done_path.read_text(encoding="ascii").split())
    except OSError:
        done = set()
    kept = {a.name: a for a in ws.store.list_artifacts(run_id)}
    for record in output_records(outputs_dir, Path(ws.path), run_id, lambda _: None):
        kept.setdefault(record.name, record)
    problems = []
    for line in lines:
        request = json.loads(line)
        if request["rid"] in done:
            continue
        done.add(request["rid"])
        model = replace(
            blank(request["name"]),
            tags=request["tags"],
            properties=request["properties"],
            description=request.get("description"),
            framework=request.get("framework"),
            framework_version=request.get("framework_version"),
        )
        pairs = [(str(s), str(d)) for s, d in request["datasets"]]
        try:
            saved = register_from_run(
                ws, request["run"], request["path"], model, pairs, artifacts=list(kept.values())
            )
        except FerryError as exc:
            problems.append(f"model {request['name']!r} was not registered: {exc}")
            continue
        log(f"ferry: registered model {saved.name}:{saved.version} from {request['path']}")
        with open(done_path, "a", encoding="ascii") as fh:
            fh.write(request["rid"] + "\n")
    return problems


def model_catalog(ws: WorkspaceServices, run_dir: Path) -> dict[str, str]:
    """For a job on this machine: the registered models (name → version → manifest) in the
    run's folder, and the blob store, so ``Model.get_model_path`` in the job can copy one."""
    from ferry.errors import StoreError
    from ferry.tracking.assets import asset_store

    try:
        models = asset_store(ws.store).list_models()
    except StoreError:
        return {}
    if not models:
        return {}
    catalog: dict[str, dict[str, dict[str, str]]] = {}
    for m in models:
        catalog.setdefault(m.name, {})[str(m.version)] = {"manifest": m.manifest_id, "root": m.root}
    path = Path(run_dir) / "models.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(catalog), encoding="utf-8")
    return {"FERRY_MODEL_CATALOG": str(path), "FERRY_BLOBS_DIR": str(ws.blobs.root)}
