"""A training script that reports what it sees of its datasets, and the submit helpers the run
tests share (local, SSH and Ray targets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

JOB = r"""
import json, os, sys
from azureml.core import Run

run = Run.get_context()


def read(path):
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    out = {}
    for folder, _, names in os.walk(path, followlinks=True):
        for name in names:
            full = os.path.join(folder, name)
            out[os.path.relpath(full, path).replace(os.sep, "/")] = read(full)
    return out


seen = {"argv": sys.argv[1:], "inputs": {}, "read": {}, "outputs": run.output_datasets,
        "variables": {k: v for k, v in os.environ.items()
                      if k.startswith("AZUREML_DATA") or k in ("mnist", "extra")}}
for name, value in run.input_datasets.items():
    if isinstance(value, str):
        seen["inputs"][name] = value
        seen["read"][name] = read(value)
    else:
        seen["inputs"][name] = {"tabular": value.to_pandas_dataframe().to_dict("list")}
for name, folder in run.output_datasets.items():
    with open(os.path.join(folder, "made-by.txt"), "w") as fh:
        fh.write(run.id)
    os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
    with open(os.path.join(folder, "sub", "n.txt"), "w") as fh:
        fh.write("nested")
os.makedirs("outputs/model", exist_ok=True)
with open("outputs/model/weights.bin", "wb") as fh:
    fh.write(b"w" * 1000)
with open("outputs/seen.json", "w") as fh:
    json.dump(seen, fh)
if os.environ.get("REGISTER"):
    run.register_model("job-model", "outputs/model", tags={"from": "job"})
if os.environ.get("FAIL"):
    sys.exit(3)
"""


def write_job(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(JOB)
    return folder


def seen(run: Any) -> dict[str, Any]:
    """What the job reported (``outputs/seen.json`` kept with the run)."""
    record = {a.name: a for a in run.workspace.store.list_artifacts(run.id)}["outputs/seen.json"]
    return json.loads((run.workspace.path / record.path).read_text())  # type: ignore[no-any-return]


def log_of(run: Any) -> str:
    return Path(run.get_details()["logFiles"]["user_logs/std_log.txt"]).read_text(encoding="utf-8")
