"""Datastores, datasets in runs and the model registry (issue 14), each against its anchor.

* Upload of 1 GB in 1,000 files to the default datastore against `cp -r` (goal ≤ 1.5×), and to
  an S3 server (moto's server mode on loopback, the tests' tests/data/services.py) against
  s3fs's own `put` of the same files (goal ≤ 1.0×); an unchanged re-upload moves nothing.
* A 1 GB registered dataset mounted in a run on the local target: time from submit to the
  script's first read, against the same script reading a file of its own snapshot (goal: no
  copy, overhead ≤ 0.1 s); and on an SSH host (the tests' loopback sshd): the second run moves
  nothing.
* Registering a 500 MB model from a run's outputs (goal ≤ 0.1 s, no copy), and what hashing
  the outputs when they are collected adds to the run's finalize phase.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from _common import HERE, median, scratch, write_result

sys.path.insert(0, str(HERE.parent / "tests" / "data"))
sys.path.insert(0, str(HERE.parent / "tests" / "targets"))
from services import s3_server  # the tests' loopback S3 server
from sshd import SshServer  # the tests' loopback sshd

FILES, FILE_BYTES = 1000, 1 << 20  # 1 GB in 1,000 files
REPEAT = 3
RUN_REPEAT = 5
MODEL_BYTES = 500 << 20
FIRST_READ = """
import sys, time
from azureml.core import Run
path = sys.argv[1] if len(sys.argv) > 1 else "local.bin"
import os
if os.path.isdir(path):
    path = os.path.join(path, sorted(os.listdir(path))[0])
with open(path, "rb") as fh:
    fh.read(1)
print("first-read", repr(time.time()))
"""


def make_tree(root: Path) -> Path:
    root.mkdir(parents=True)
    for i in range(FILES):
        (root / f"part-{i:04}.bin").write_bytes(os.urandom(FILE_BYTES))
    return root


def _sync() -> None:
    os.sync()


def bench_default_upload(ws: Any, tree: Path, work: Path) -> list[str]:
    ds = ws.get_default_datastore()
    cp, ferry_times = [], []
    for i in range(REPEAT):
        dest = work / f"cp-{i}"
        _sync()
        t = time.perf_counter()
        subprocess.run(["cp", "-r", str(tree), str(dest)], check=True)
        cp.append(time.perf_counter() - t)
        shutil.rmtree(dest)
        _sync()
        t = time.perf_counter()
        ds.upload(str(tree), target_path=f"up-{i}", overwrite=True, show_progress=False)
        ferry_times.append(time.perf_counter() - t)
        if i < REPEAT - 1:
            shutil.rmtree(Path(ds.path_on_disk) / f"up-{i}")
    t = time.perf_counter()
    ds.upload(str(tree), target_path=f"up-{REPEAT - 1}", overwrite=True, show_progress=False)
    again = time.perf_counter() - t
    from ferry.data import transfer

    moved = transfer.upload(
        ws, ds._store(), transfer.files_of(tree, f"up-{REPEAT - 1}"), overwrite=True,
        show_progress=False,
    )  # fmt: skip
    a, f = median(cp), median(ferry_times)
    return [
        f"| default datastore (a folder in the workspace) | `cp -r` {a:.2f} s | "
        f"`ds.upload(…, overwrite=True)` {f:.2f} s | **{f / a:.2f}×** | ≤ 1.5× | "
        f"{again * 1000:.0f} ms, {moved.uploaded} files moved |",
    ]


def bench_s3_upload(ws: Any, tree: Path) -> list[str]:
    import s3fs

    from ferry.data import Datastore

    with s3_server() as s3:
        bucket = s3.make_bucket(f"bench-{uuid.uuid4().hex[:8]}")
        fs = s3fs.S3FileSystem(
            key=s3.access_key_id, secret=s3.secret_access_key, endpoint_url=s3.endpoint,
            skip_instance_cache=True,
        )  # fmt: skip
        ds = Datastore.register_s3(
            ws, "bench", bucket, endpoint=s3.endpoint, access_key_id=s3.access_key_id,
            secret_access_key=s3.secret_access_key,
        )  # fmt: skip
        files = sorted(tree.iterdir())
        anchor, ferry_times = [], []
        for i in range(REPEAT):
            t = time.perf_counter()
            fs.put([str(p) for p in files], [f"{bucket}/anchor-{i}/{p.name}" for p in files])
            anchor.append(time.perf_counter() - t)
            fs.rm(f"{bucket}/anchor-{i}", recursive=True)
            t = time.perf_counter()
            ds.upload(str(tree), target_path=f"up-{i}", overwrite=True, show_progress=False)
            ferry_times.append(time.perf_counter() - t)
            if i < REPEAT - 1:
                fs.rm(f"{bucket}/up-{i}", recursive=True)
        from ferry.data import transfer

        t = time.perf_counter()
        moved = transfer.upload(
            ws, ds._store(), transfer.files_of(tree, f"up-{REPEAT - 1}"), overwrite=True,
            show_progress=False,
        )  # fmt: skip
        again = time.perf_counter() - t
    a, f = median(anchor), median(ferry_times)
    return [
        f"| S3 (moto server on loopback) | `s3fs.put(files)` {a:.2f} s | "
        f"`ds.upload(…, overwrite=True)` {f:.2f} s | **{f / a:.2f}×** | ≤ 1.0× | "
        f"{again * 1000:.0f} ms, {moved.uploaded} files moved |",
    ]


def _submit_and_time(ws: Any, source: Path, target: str, arguments: list[Any]) -> tuple[float, Any]:
    from ferry import Experiment, ScriptRunConfig

    start = time.time()
    run = Experiment(ws, "bench-data").submit(
        ScriptRunConfig(str(source), "read.py", arguments=arguments, compute_target=target)
    )
    run.wait_for_completion()
    log = Path(run.get_details()["logFiles"]["user_logs/std_log.txt"]).read_text()
    stamp = float(log.split("first-read ", 1)[1].split()[0])
    return stamp - start, run


def bench_run_local(ws: Any, tree: Path, work: Path) -> tuple[list[str], Any]:
    from ferry.data import Dataset

    ds = ws.get_default_datastore()
    t = time.perf_counter()
    dataset = Dataset.File.from_files((ds, f"up-{REPEAT - 1}/")).register(ws, "gigabyte")
    register = time.perf_counter() - t
    source = work / "src"
    source.mkdir()
    (source / "read.py").write_text(FIRST_READ)
    (source / "local.bin").write_bytes(b"x")
    plain, mounted = [], []
    for _ in range(RUN_REPEAT):
        plain.append(_submit_and_time(ws, source, "local", [])[0])
        seconds, run = _submit_and_time(
            ws, source, "local", [dataset.as_named_input("data").as_mount()]
        )
        mounted.append(seconds)
    view = run.run_dir / "inputs" / "data"
    copied = sum(p.lstat().st_size for p in view.rglob("*") if p.is_file() and not p.is_symlink())
    a, f = median(plain), median(mounted)
    rows = [
        f"| local target | script reading its own file {a * 1000:.0f} ms | 1 GB dataset mounted "
        f"{f * 1000:.0f} ms | **+{(f - a) * 1000:.0f} ms** | ≤ +100 ms, no copy | "
        f"{copied} bytes copied (the view is {FILES} links into the blob store) |",
    ]
    return rows, (dataset, register)


def bench_run_ssh(ws: Any, dataset: Any, work: Path) -> list[str]:
    import re

    from ferry import ComputeTarget, RemoteCompute

    (work / "sshd").mkdir()
    server = SshServer(work / "sshd")
    server.start()
    try:
        remote = work / "remote"
        ComputeTarget.attach(
            ws,
            "vm",
            RemoteCompute.attach_configuration(**server.attach_config(work_dir=str(remote))),
        )
        source = work / "src"
        sent = re.compile(r"as input 'data' at .+? \(mount\); sent (\d+) bytes")
        first_s, first = _submit_and_time(
            ws, source, "vm", [dataset.as_named_input("data").as_mount()]
        )
        first_sent = int(sent.search(_log(first)).group(1))  # type: ignore[union-attr]
        plain, again = [], []
        for _ in range(RUN_REPEAT):
            plain.append(_submit_and_time(ws, source, "vm", [])[0])
            seconds, run = _submit_and_time(
                ws, source, "vm", [dataset.as_named_input("data").as_mount()]
            )
            again.append(seconds)
        second_sent = int(sent.search(_log(run)).group(1))  # type: ignore[union-attr]
    finally:
        server.stop()
    a, f = median(plain), median(again)
    return [
        f"| SSH host (loopback sshd) | script reading its own file {a * 1000:.0f} ms | 1 GB dataset "
        f"mounted, host warm {f * 1000:.0f} ms | **+{(f - a) * 1000:.0f} ms** | second run: "
        f"nothing moves | first run sent {first_sent / 1e6:.0f} MB ({first_s:.1f} s), later runs "
        f"**{second_sent} bytes** |",
    ]


def _log(run: Any) -> str:
    return Path(run.get_details()["logFiles"]["user_logs/std_log.txt"]).read_text()


def bench_model(ws: Any, work: Path) -> list[str]:
    from ferry import Experiment, ScriptRunConfig

    source = work / "model-src"
    source.mkdir()
    (source / "train.py").write_text(
        "import os\nos.makedirs('outputs', exist_ok=True)\n"
        f"with open('outputs/model.bin', 'wb') as fh:\n    fh.write(os.urandom({MODEL_BYTES}))\n"
    )
    times, finalize = [], []
    for _ in range(REPEAT):
        run = Experiment(ws, "bench-model").submit(ScriptRunConfig(str(source), "train.py"))
        run.wait_for_completion()
        finalize.append(run.record.timings.get("finalize", 0.0))
        t = time.perf_counter()
        model = run.register_model("big", "outputs/model.bin")
        times.append(time.perf_counter() - t)
    from ferry.snapshot import load_manifest

    (digest,) = {e.digest for _, e in load_manifest(ws.blobs, model.record.manifest_id).files()}
    kept = ws.path / {a.name: a for a in ws.store.list_artifacts(run.id)}["outputs/model.bin"].path
    same = os.stat(kept).st_ino == os.stat(ws.blobs.path(digest)).st_ino
    f = median(times)
    return [
        f"| register a 500 MB model from a run's outputs | — | `run.register_model` "
        f"{f * 1000:.0f} ms | — | ≤ 100 ms, no copy | "
        f"{'the blob is the kept file itself (same inode): no copy' if same else 'COPIED'}; "
        f"the run's finalize (outputs collected and hashed) took {median(finalize) * 1000:.0f} ms |",
    ]


def main() -> None:
    from ferry import Workspace

    work = scratch("data")
    os.environ["FERRY_HOME"] = str(work / "home")
    ws = Workspace.create(work / "ws")
    tree = make_tree(work / "tree")
    rows = [
        "| what | anchor | ferry | ratio / overhead | goal | notes |",
        "|---|---|---|---|---|---|",
    ]
    rows += bench_default_upload(ws, tree, work)
    rows += bench_s3_upload(ws, tree)
    run_rows, (dataset, register) = bench_run_local(ws, tree, work)
    rows += run_rows
    rows += bench_run_ssh(ws, dataset, work)
    rows += bench_model(ws, work)
    cores = os.cpu_count()
    write_result(
        "data",
        f"""## Datastores, datasets in runs, models (issue 14)

1 GB in {FILES:,} files of 1 MiB (random bytes); medians of {REPEAT} uploads and {RUN_REPEAT}
runs; {cores} cores, one ext4 disk (no reflinks), services on loopback. The S3 server is moto's
(a Python server), so both columns of that row are bound by it. Registering the 1 GB dataset
(hash every file, keep its bytes in the workspace's blob store) took {register:.1f} s once.

"""
        + "\n".join(rows)
        + """

Reading: the upload rows copy whole files through a temporary name (a reader never sees half a
file) and skip what is already there unchanged (size and time on a folder, size, time and ETag
remotely), so the re-upload lists the target once and moves nothing. A mounted input on this
machine is a folder of links into the blob store, made in the run's folder while it prepares;
on an SSH host the version is one shared read-only copy made from the host's content-addressed
cache, so only blobs the host lacks cross the connection. A model registered from a run's
outputs is those very files, entered into the blob store by hard links; their digests were taken
when the outputs were collected (the finalize figure), so registering only looks them up.
""",
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
