"""A run's output folder becomes a dataset version: uploaded to its datastore, its files kept.

Called when a run completes (:func:`ferry.targets.datasets.finish`), on the machine that drives
the run, with the output's files brought back there. The folder is uploaded (``overwrite`` as
the output says: without it, a target already on the datastore is kept and the run's file is
not uploaded), its files enter the workspace's blob store as they are (hard links from the
staged copy: no copy), and the version is saved — registered under the output's name when
``register_on_complete`` asked — and recorded as the run's output.

Example::

    publish_output(ws, run_id, spec, Path(run_dir, "data_outputs", spec.name), log)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ferry.data import catalog, transfer
from ferry.data.definition import new_definition
from ferry.data.versions import Listing, Origin
from ferry.model.registry import digest_of, link_in
from ferry.snapshot import FileEntry, Manifest, save_manifest
from ferry.spec import DataOutputSpec, WorkspaceServices
from ferry.tracking.assets import DatasetRecord, RunDatasetRecord, new_dataset_id


def publish_output(
    ws: WorkspaceServices,
    run_id: str,
    spec: DataOutputSpec,
    folder: Path | None,
    log: Callable[[str], None],
) -> DatasetRecord | None:
    """Upload and save one output; None (with a note) when the job wrote nothing there."""
    files = transfer.files_of(folder, spec.destination) if folder and folder.is_dir() else []
    files = [(p, rel) for p, rel in files if not p.is_symlink()]
    if not files:
        log(f"ferry: output dataset {spec.name!r} is empty: nothing was saved")
        return None
    store = catalog.open_datastore(ws, spec.datastore)
    moved = transfer.upload(ws, store, files, overwrite=spec.overwrite, show_progress=False)
    there = {f.rel: f for f in store.find(spec.destination)}
    entries: dict[str, FileEntry] = {}
    origins: dict[str, Origin] = {}
    cache: dict[str, list[object]] = {}
    prefix = spec.destination.rstrip("/") + "/" if spec.destination else ""
    for path, rel in files:
        digest, st = digest_of(path, cache)
        link_in(ws, path, digest, st)
        name = rel[len(prefix) :]
        entries[name] = FileEntry(digest, st.st_size)
        found = there.get(rel)
        origins[name] = Origin(0, rel, found.fingerprint if found else ())
    listing = Listing(Manifest(entries, ws.blobs.algo), origins)
    save_manifest(ws.blobs, listing.manifest)
    kind = "tabular" if spec.tabular else "file"
    definition = new_definition(
        kind, [{"datastore": store.name, "path": spec.destination}], spec.tabular
    )
    record = DatasetRecord(
        id=new_dataset_id(),
        kind=kind,
        definition=definition,
        manifest_id=listing.manifest.snapshot_id,
        files=len(entries),
        bytes=listing.manifest.total_bytes,
        locator_id=ws.blobs.put_bytes(listing.document()),
        run_id=run_id,
    )
    assets = catalog.assets(ws)
    if spec.register_name:
        record = replace(
            record, name=spec.register_name, description=spec.description, tags=dict(spec.tags)
        )
        record = assets.register_dataset(record, create_new_version=True)
    else:
        record = assets.save_dataset(record)
    assets.add_run_datasets(
        [RunDatasetRecord(run_id, "output", spec.name, record.id, spec.mechanism)]
    )
    label = f"{record.name}:{record.version}" if record.name else record.id
    log(
        f"ferry: output dataset {spec.name!r}: {len(entries)} files ({moved.uploaded} uploaded) "
        f"to {store.name}:{spec.destination}, saved as {label}"
    )
    return record
