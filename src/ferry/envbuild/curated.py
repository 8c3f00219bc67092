"""Curated environments: ready by name, no registration needed — ferry's own and the reference's.

The reference's names (``Environment.get(ws, "AzureML-Minimal")``) resolve to environments ferry
builds with uv, with the same main packages at the versions the reference's curated environment
had. Sources of those versions: the reference's curated-environment list of June 2020 (the
``AzureML-<Framework>-<version>-{CPU,GPU}`` spellings, all on Python 3.6.2 with the azureml-*
1.8.0 packages), its list of 2021–2023 (``AzureML-<framework>-<version>-ubuntu…-py…-{cpu,gpu}``)
and the build contexts of the reference's ``sklearn-1.0`` and ``sklearn-1.5`` environments in its
public asset repository (see ``../shared/reference/azureml-v1.md`` §5). Each row says what the
reference had and, where ferry's build differs, why. Differences that hold for every row:

* **Python 3.6 and 3.7 become 3.8**: ferry's in-job runtime needs 3.8 or newer, and a package
  version without wheels for 3.8 becomes the nearest release that has them (said in the row).
* **azureml-core, azureml-defaults and the other azureml-\\* packages are not installed**: inside
  a ferry run, ``from azureml.core import Run`` and ``Run.get_context()`` are served by ferry's
  in-job runtime; the SDK's service clients have no service to talk to here.
* **GPU names build the same packages as CPU names**, from the Python package index: PyTorch's
  Linux wheels there run without a GPU (they carry their CUDA runtime), TensorFlow comes as
  ``tensorflow-cpu``. horovod and mkl are left out (horovod compiles against MPI and a framework at
  install time; ferry's distributed runs use the framework's own launcher).
* Packages the reference left unpinned (conda resolved them when its image was built) are pinned
  to their releases of the same time, so that every build of a name installs the same thing.

Clone one to change it::

    env = Environment.get(ws, "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu").clone("my-sklearn")
    env.python.conda_dependencies.add_pip_package("xgboost==1.5.2")
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

CURATED_PREFIX = "ferry-"
#: names starting with these are kept for curated environments (the reference reserves the last two)
RESERVED_PREFIXES = (CURATED_PREFIX, "AzureML-", "Microsoft")
CURATED_VERSION = 1


@dataclass(frozen=True)
class Curated:
    """One curated environment: its names, what ferry builds, what the reference had."""

    names: tuple[str, ...]
    python: str
    pip: tuple[str, ...]
    reference: str = ""
    why: str = ""


def _cpu_gpu(stem: str) -> tuple[str, str]:
    return (f"{stem}-CPU", f"{stem}-GPU")


_PY38 = "Python 3.8: the reference's 3.6/3.7 is older than ferry's in-job runtime supports"
_NO_HOROVOD = "horovod and mkl are not installed (see the module docstring)"
_TORCH_14 = ("torch==1.4.0", "torchvision==0.5.0", "numpy==1.18.5")
_TF_22 = ("tensorflow-cpu==2.2.0", "numpy==1.18.5", "protobuf==3.20.3")
_PROTOBUF = (
    "protobuf 3.20.3: code generated for protobuf 3 fails to import with protobuf 4 or newer"
)
_SKLEARN_10 = (
    "scikit-learn==1.0.2", "numpy==1.21.6", "scipy==1.7.3", "pandas==1.3.5",
    "matplotlib==3.5.3", "joblib==1.2.0", "tqdm==4.62.3", "psutil==5.8.0",
)  # fmt: skip
_FERRY_SKLEARN = (
    "numpy==2.4.6", "pandas==3.0.6", "scikit-learn==1.9.1", "scipy==1.17.1",
    "matplotlib==3.11.2", "joblib==1.6.0",
)  # fmt: skip

TABLE: tuple[Curated, ...] = (
    # ferry's own: pins chosen to install on Python 3.11 (manylinux and macOS wheels)
    Curated(("ferry-minimal",), "3.11", ()),
    Curated(("ferry-sklearn",), "3.11", _FERRY_SKLEARN),
    # the reference, 2020 spellings
    Curated(
        ("AzureML-Minimal",), "3.8", (),
        "python 3.6.2; azureml-core 1.8.0, azureml-defaults 1.8.0", _PY38,
    ),
    Curated(
        ("AzureML-Tutorial",), "3.8",
        ("numpy==1.18.5", "pandas==1.0.5", "scipy==1.4.1", "scikit-learn==0.22.2.post1",
         "matplotlib==3.2.2", "tqdm==4.46.1", "mlflow==1.9.1", "sklearn-pandas==1.8.0",
         "protobuf==3.20.3"),
        "python 3.6.2; pandas, numpy, tqdm, scikit-learn, matplotlib (unpinned), mlflow, "
        "sklearn-pandas and 19 azureml-* packages 1.8.0",
        f"{_PY38}; the unpinned packages pinned to their releases of June 2020; {_PROTOBUF}",
    ),
    Curated(
        ("AzureML-Scikit-learn-0.20.3",), "3.8",
        ("scikit-learn==0.22.2.post1", "scipy==1.3.2", "joblib==0.14.1", "numpy==1.17.5"),
        "python 3.6.2; scikit-learn 0.20.3, scipy 1.2.1, joblib 0.13.2",
        f"{_PY38}; scikit-learn 0.20/0.21 and scipy 1.2 have no wheels for 3.8: 0.22.2.post1 "
        "and 1.3.2 are the nearest releases that do; joblib 0.13 fails to import on Python 3.8 "
        "(its bundled cloudpickle predates 3.8): 0.14.1 is the nearest release that imports",
    ),
    *(
        Curated(
            _cpu_gpu(f"AzureML-PyTorch-{v}"), "3.8", _TORCH_14,
            f"python 3.6.2; torch {v}, torchvision, mkl, horovod",
            f"{_PY38}; torch {v} has no wheels for 3.8: 1.4.0 is the nearest; {_NO_HOROVOD}",
        )
        for v in ("1.0", "1.1", "1.2", "1.3")
    ),
    Curated(
        _cpu_gpu("AzureML-PyTorch-1.4"), "3.8", _TORCH_14,
        "python 3.6.2; torch 1.4.0, torchvision 0.5.0, mkl, horovod 0.18.1",
        f"{_PY38}; {_NO_HOROVOD}",
    ),
    Curated(
        _cpu_gpu("AzureML-PyTorch-1.5"), "3.8",
        ("torch==1.5.0", "torchvision==0.6.0", "numpy==1.18.5"),
        "python 3.6.2; torch 1.5.0, torchvision 0.5.0, mkl, horovod 0.19.1",
        f"{_PY38}; torchvision 0.6.0, the release made for torch 1.5 (0.5.0 requires torch "
        f"1.4.0); {_NO_HOROVOD}",
    ),
    Curated(
        _cpu_gpu("AzureML-PyTorch-1.6"), "3.8",
        ("torch==1.6.0", "torchvision==0.7.0", "numpy==1.18.5"),
        "python 3.6.2; torch 1.6.0, torchvision 0.7.0, horovod",
        f"{_PY38}; {_NO_HOROVOD}",
    ),
    *(
        Curated(
            _cpu_gpu(f"AzureML-TensorFlow-{v}"), "3.8", _TF_22,
            f"python 3.6.2; tensorflow {v} (tensorflow-gpu for GPU), horovod",
            f"{_PY38}; TensorFlow {v} has no wheels for 3.8: 2.2.0 is the nearest release "
            f"(1.x graph code runs through tf.compat.v1); {_PROTOBUF}; {_NO_HOROVOD}",
        )
        for v in ("1.10", "1.12", "1.13", "2.0", "2.1")
    ),
    Curated(
        _cpu_gpu("AzureML-TensorFlow-2.2"), "3.8", _TF_22,
        "python 3.6.2; tensorflow 2.2 (tensorflow-gpu for GPU), horovod",
        f"{_PY38}; tensorflow-cpu; {_PROTOBUF}; {_NO_HOROVOD}",
    ),
    Curated(
        _cpu_gpu("AzureML-TensorFlow-2.3"), "3.8",
        ("tensorflow-cpu==2.3.0", "numpy==1.18.5", "protobuf==3.20.3"),
        "python 3.6.2; tensorflow 2.3 (tensorflow-gpu for GPU), horovod",
        f"{_PY38}; tensorflow-cpu; {_PROTOBUF}; {_NO_HOROVOD}",
    ),
    # the reference, 2021 and later spellings
    Curated(
        ("AzureML-sklearn-0.24-ubuntu18.04-py37-cpu",), "3.8",
        ("scikit-learn==0.24.1", "numpy==1.19.5", "scipy==1.6.1", "pandas==1.2.3",
         "matplotlib==3.3.4", "joblib==1.0.1"),
        "python 3.7; scikit-learn 0.24.1, matplotlib, psutil, azureml SDK",
        f"{_PY38}; numpy, scipy, pandas, matplotlib pinned to their releases of early 2021",
    ),
    Curated(
        ("AzureML-sklearn-1.0-ubuntu20.04-py38-cpu",), "3.8", _SKLEARN_10,
        "python 3.8; scikit-learn ~=1.0.0, numpy ~=1.21.0, scipy ~=1.7.0, pandas ~=1.3.0, "
        "matplotlib ~=3.5.0, tqdm ~=4.62.0, psutil ~=5.8.0, azureml SDK",
        "the newest release within each ~= range",
    ),
    Curated(
        ("AzureML-sklearn-1.5",), "3.10",
        ("scikit-learn==1.5.2", "numpy==1.22.4", "scipy==1.10.1", "pandas==1.5.3",
         "matplotlib==3.5.3", "joblib==1.2.0", "tqdm==4.66.5", "psutil==5.9.0"),
        "python 3.10; scikit-learn ~=1.5.0, numpy ~=1.22.0, scipy ~=1.10.0, pandas ~=1.5.3, "
        "joblib ~=1.2.0, matplotlib ~=3.5.0, tqdm ~=4.66.3, psutil ~=5.8.0, azureml SDK",
        "the newest release within each ~= range; psutil 5.8 has no wheels for 3.10: 5.9.0 is "
        "the nearest",
    ),
    Curated(
        ("AzureML-pytorch-1.7-ubuntu18.04-py37-cuda11-gpu",), "3.8",
        ("torch==1.7.1", "torchvision==0.8.2", "numpy==1.19.5"),
        "python 3.7; torch 1.7, torchvision, CUDA 11", _PY38,
    ),
    Curated(
        ("AzureML-pytorch-1.8-ubuntu18.04-py37-cuda11-gpu",), "3.8",
        ("torch==1.8.1", "torchvision==0.9.1", "numpy==1.19.5"),
        "python 3.7; torch 1.8, torchvision, CUDA 11", _PY38,
    ),
    Curated(
        ("AzureML-pytorch-1.9-ubuntu18.04-py37-cuda11-gpu",), "3.8",
        ("torch==1.9.0", "torchvision==0.10.0", "numpy==1.20.3"),
        "python 3.7; torch 1.9, torchvision, CUDA 11", _PY38,
    ),
    Curated(
        ("AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu",), "3.8",
        ("torch==1.10.0", "torchvision==0.11.1", "numpy==1.21.6"),
        "python 3.8; torch 1.10, torchvision, CUDA 11",
        "PyPI's torch wheel, which runs without a GPU",
    ),
    Curated(
        ("AzureML-tensorflow-2.4-ubuntu18.04-py37-cuda11-gpu",), "3.8",
        ("tensorflow-cpu==2.4.1", "numpy==1.19.5", "protobuf==3.20.3"),
        "python 3.7; tensorflow-gpu 2.4.1, horovod, CUDA 11",
        f"{_PY38}; tensorflow-cpu; {_PROTOBUF}; {_NO_HOROVOD}",
    ),
)  # fmt: skip


def _spec(name: str, entry: Curated) -> dict[str, Any]:
    deps = {"pythonVersion": entry.python, "pipPackages": list(entry.pip)}
    return {"name": name, "version": CURATED_VERSION, "python": {"condaDependencies": deps}}


#: every curated name → its environment in the reference's dict shape
CURATED: dict[str, dict[str, Any]] = {
    name: _spec(name, entry) for entry in TABLE for name in entry.names
}
_BY_LOWER = {name.lower(): (name, entry) for entry in TABLE for name in entry.names}


def curated_entry(name: str) -> Curated | None:
    """The table row of a curated name (any letter case: the reference's spellings vary)."""
    found = _BY_LOWER.get(name.strip().lower())
    return found[1] if found else None


def curated_spec(name: str) -> dict[str, Any] | None:
    """The dict form of a curated environment (a fresh copy, under its canonical spelling)."""
    found = _BY_LOWER.get(name.strip().lower())
    return copy.deepcopy(CURATED[found[0]]) if found else None


def is_reserved(name: str) -> bool:
    """True for names kept for curated environments (registering one is refused)."""
    return name.startswith(RESERVED_PREFIXES)
