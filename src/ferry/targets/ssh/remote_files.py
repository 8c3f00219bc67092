"""A run's files on an SSH host: its snapshot's blobs and its datasets there, its outputs back.

Only what the host lacks is sent. The host answers a request (``prepare`` for the snapshot,
``dataset`` for an input dataset) with the blobs it lacks; they go by SFTP
(:func:`~ferry.targets.ssh.transfer.upload_blobs`, small ones packed and unpacked by the agent)
and the request is asked again until nothing is missing. A blob that arrives corrupt is missing
again, so a few rounds are allowed before the run is refused. The runtime folder goes once per
content hash. An input dataset is a shared read-only copy per version in the host's cache
(linked from its ``path_on_compute`` when it has one), or a writable copy of the run's own for
``as_download``; output datasets get empty folders. When the job has ended, its ``./outputs`` and its output datasets come back by SFTP.

Example::

    reply = await send_missing(run, reply, "prepare", timeout, "blobs", ask)
    await place_datasets(run, ctx, manifests)     # run.data_inputs, run.data_outputs
    await collect_outputs(run, dest)              # ./outputs, when the job wrote any
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.errors import TargetRefused
from ferry.snapshot import Manifest
from ferry.spec import PrepareContext
from ferry.targets import datasets
from ferry.targets.ssh.transfer import download_folder, upload_blobs, upload_folder

if TYPE_CHECKING:
    from ferry.targets.ssh.remote_run import RemoteRun

ROUNDS = 4  # uploads of what the host lacks before blobs arriving corrupt refuse the run


async def send_blobs(run: RemoteRun, digests: list[str]) -> None:
    """The blobs ``digests`` into the host's store (counted in ``run.sent``)."""
    assert run.session is not None
    blobs = run.workspace.blobs
    size = sum(Path(blobs.path(d)).stat().st_size for d in digests)
    timeout = run.settings.command_timeout + size / 1e6
    sent, packs = await asyncio.wait_for(
        upload_blobs(await run.sftp(), blobs, digests, run.session.work_dir), timeout
    )
    if packs:
        await run.call("unpack", timeout, packs=packs, algo=blobs.algo)
    run.sent.files += sent.files
    run.sent.bytes += sent.bytes


async def send_missing(
    run: RemoteRun,
    reply: dict[str, Any],
    op: str,
    timeout: float,
    what: str,
    ask: Mapping[str, Any],
) -> dict[str, Any]:
    """Send the blobs the host's ``reply`` says it lacks and ask ``op`` again, until it lacks
    nothing; ``what`` names them in the refusal when they keep arriving corrupt."""
    for _ in range(ROUNDS):
        if not reply["missing"]:
            return reply
        await send_blobs(run, reply["missing"])
        reply = await run.call(op, timeout, **ask)
    raise TargetRefused(
        f"{what} keep arriving corrupt on {run.settings.where}",
        run_id=run.job.run_id,
        target=run.name,
    )


async def send_runtime(run: RemoteRun, runtime: Path, found: str | None) -> str:
    """The runtime folder on the host: ``found`` there already, else sent now (once per content
    hash: its name)."""
    if found is not None:
        return found
    assert run.session is not None
    work_dir = run.session.work_dir
    folder = f"{work_dir}/runtime/{runtime.name}"
    await asyncio.wait_for(
        upload_folder(await run.sftp(), runtime, work_dir, folder),
        run.settings.command_timeout,
    )
    return folder


async def place_datasets(
    run: RemoteRun, ctx: PrepareContext, manifests: Mapping[str, Manifest]
) -> None:
    """The job's input datasets in the host's cache (only the blobs it lacks are sent): a
    shared read-only copy per version, or a copy for ``as_download``; its output folders."""
    job = run.job
    where = {"run_dir": run.run_dir, "workdir": f"{run.run_dir}/wd"}
    places = datasets.input_places(job, **where)
    for spec in job.inputs:
        shared = spec.mechanism != "download" and spec.path_on_compute is None
        ask = {
            "manifest": spec.manifest_id,
            "mechanism": spec.mechanism,
            "dest": None if shared else places[spec.name],
        }
        if spec.path_on_compute is not None:
            run.data_paths.append(places[spec.name])
        timeout = run.settings.command_timeout + len(manifests[spec.name]) / 200
        before = run.sent.bytes
        reply = await run.call("dataset", timeout, **ask)
        what = f"the blobs of dataset {spec.label}"
        reply = await send_missing(run, reply, "dataset", timeout, what, ask)
        run.data_inputs[spec.name] = datasets.job_path(spec, str(reply["path"]))
        ctx.log(
            f"ferry: {run.settings.where}: dataset {spec.label} as input {spec.name!r} at "
            f"{reply['path']} ({spec.mechanism}); sent {run.sent.bytes - before} bytes"
        )
    run.data_outputs = datasets.output_places(job, **where)
    if run.data_outputs:
        await run.call("mkdirs", paths=list(run.data_outputs.values()))
        run.data_paths += [p for p in run.data_outputs.values() if not p.startswith(run.run_dir)]
    if job.inputs:
        datasets.record_inputs(run.workspace, job, places)


async def collect_outputs(run: RemoteRun, dest: Path) -> None:
    """The job's ``./outputs`` into ``dest``, when the agent said it wrote anything there."""
    if not (run.exit and run.exit.get("outputs")):
        return
    await asyncio.wait_for(
        download_folder(await run.sftp(), f"{run.run_dir}/wd/outputs", dest),
        run.settings.build_timeout,
    )


async def collect_data_outputs(run: RemoteRun, staging: Path) -> dict[str, Path]:
    """Bring the job's output folders back (``staging/<name>``) to be saved."""
    staged = {}
    for name, remote in run.data_outputs.items():
        local = staging / name
        if local.exists():
            shutil.rmtree(local)
        await asyncio.wait_for(
            download_folder(await run.sftp(), remote, local), run.settings.build_timeout
        )
        staged[name] = local
    return staged
