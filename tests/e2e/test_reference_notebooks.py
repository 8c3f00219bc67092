"""Notebooks written for the reference SDK run with no change at all (issue 11).

Each folder of tests/notebooks holds a notebook in the reference's style (``notebook.py``, cells
marked ``# %%``) and its training scripts. The runner turns it into a real notebook and executes
it in a real Jupyter kernel (nbclient + ipykernel) twice:

- unchanged, with the compatibility package ``ferry-azureml`` (``compat/azureml``) on the
  kernel's path — ``from azureml.core import Workspace`` is ferry's;
- with the imports rewritten to ``from ferry import …`` — ferry's own names.

The reference's ``.azureml/config.json`` sits beside each notebook, as the portal writes it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import nbformat  # the dev extra installs nbformat, nbclient and ipykernel
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "tests" / "notebooks"
COMPAT = ROOT / "compat" / "azureml" / "src"
CONFIG = {"subscription_id": "0000", "resource_group": "rg", "workspace_name": "nb-ws"}

#: the reference's module paths → ferry's (for the ``from ferry import …`` variant)
FERRY_PATHS = {
    "azureml.core.conda_dependencies": "ferry",
    "azureml.core.runconfig": "ferry",
    "azureml.core.compute_target": "ferry",
    "azureml.core.compute": "ferry",
    "azureml.core.run": "ferry",
    "azureml.core.environment": "ferry",
    "azureml.core.dataset": "ferry",
    "azureml.core.datastore": "ferry",
    "azureml.core.model": "ferry",
    "azureml.data.datapath": "ferry",
    "azureml.data": "ferry",
    "azureml.core": "ferry",
    "azureml.widgets": "ferry",
    "azureml.telemetry": "ferry",
}


def _cells(source: str) -> list[tuple[str, str]]:
    """(kind, text) per ``# %%`` cell of a percent-format script."""
    cells = []
    for block in re.split(r"^# %%", source, flags=re.M)[1:]:
        header, _, body = block.partition("\n")
        if "[markdown]" in header:
            text = "\n".join(line.removeprefix("# ") for line in body.strip().splitlines())
            cells.append(("markdown", text))
        else:
            cells.append(("code", body.strip()))
    return cells


def _ferry_imports(text: str) -> str:
    for module, replacement in FERRY_PATHS.items():
        text = re.sub(
            rf"^from {re.escape(module)} import", f"from {replacement} import", text, flags=re.M
        )
    return re.sub(
        r"^import azureml\.core$", "import ferry as azureml_core", text, flags=re.M
    ).replace("azureml.core.VERSION", "azureml_core.VERSION")


def _run(folder: Path, work: Path, *, compat: bool) -> None:
    shutil.copytree(folder, work)
    (work / ".azureml").mkdir()
    (work / ".azureml" / "config.json").write_text(json.dumps(CONFIG))
    source = (work / "notebook.py").read_text(encoding="utf-8")
    cells = _cells(source)
    scripts = [p for p in work.glob("*.py") if p.name != "notebook.py"]
    if not compat:
        cells = [(kind, _ferry_imports(text) if kind == "code" else text) for kind, text in cells]
        for script in scripts:
            script.write_text(_ferry_imports(script.read_text(encoding="utf-8")))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(text) if kind == "code" else nbformat.v4.new_markdown_cell(text)
        for kind, text in cells
    ]
    env_path = os.pathsep.join([str(COMPAT), os.environ.get("PYTHONPATH", "")]) if compat else None
    old = os.environ.get("PYTHONPATH")
    if env_path is not None:
        os.environ["PYTHONPATH"] = env_path
    try:
        client = NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}
        )
        client.execute()
    finally:
        if env_path is not None:
            if old is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old
    outputs = "".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []))
    assert "Traceback" not in outputs, outputs


FOLDERS = sorted(p for p in NOTEBOOKS.iterdir() if (p / "notebook.py").is_file())


@pytest.mark.slow
@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
@pytest.mark.parametrize("compat", [True, False], ids=["azureml-paths", "ferry-imports"])
def test_a_reference_notebook_runs_unchanged(folder: Path, compat: bool, tmp_path: Path) -> None:
    _run(folder, tmp_path / folder.name, compat=compat)


def test_the_compatibility_package_builds_with_every_module(tmp_path: Path) -> None:
    """``pip install ./compat/azureml`` installs the reference's module paths (the wheel)."""
    import subprocess
    import sys
    import zipfile

    uv = Path(sys.executable).with_name("uv")
    subprocess.run(
        [str(uv), "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT / "compat" / "azureml")],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ferry_azureml-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "azureml/__init__.py",
        "azureml/core/__init__.py",
        "azureml/core/runconfig.py",
        "azureml/core/compute/__init__.py",
        "azureml/core/compute_target.py",
        "azureml/core/conda_dependencies.py",
        "azureml/core/environment.py",
        "azureml/core/script_run_config.py",
        "azureml/core/run.py",
        "azureml/core/experiment.py",
        "azureml/exceptions/__init__.py",
        "azureml/widgets/__init__.py",
        "azureml/telemetry/__init__.py",
        "azureml/train/hyperdrive/__init__.py",
        "azureml/train/hyperdrive/parameter_expressions.py",
        "azureml/train/hyperdrive/sampling.py",
        "azureml/train/hyperdrive/policy.py",
        "azureml/train/hyperdrive/runconfig.py",
        "azureml/train/hyperdrive/run.py",
        "azureml/train/estimator/__init__.py",
        "azureml/train/sklearn.py",
        "azureml/train/dnn/__init__.py",
        "azureml/core/compute/amlcompute.py",
        "azureml/core/compute/hdinsight.py",
        "azureml/core/dataset.py",
        "azureml/core/datastore.py",
        "azureml/core/model.py",
        "azureml/core/resource_configuration.py",
        "azureml/data/__init__.py",
        "azureml/data/datapath.py",
        "azureml/data/output_dataset_config.py",
    ):
        assert module in names, module
