"""Model idioms of the reference's registration notebooks: ``ResourceConfiguration``, and the
messages of a registration or lookup that finds nothing (each names the fix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import write_files

from ferry.errors import ConfigError
from ferry.model import (
    Model,
    ModelNotFoundException,
    ModelPathNotFoundException,
    ResourceConfiguration,
)


def test_resource_configuration_keeps_the_references_dict_form() -> None:
    config = ResourceConfiguration(cpu=1, memory_in_gb=0.5)
    assert config.serialize() == {"cpu": 1, "memoryInGB": 0.5, "gpu": None}
    again = ResourceConfiguration.deserialize({"cpu": 2, "memoryInGB": 4, "gpu": 1})
    assert (again.cpu, again.memory_in_gb, again.gpu) == (2, 4, 1)
    for bad in ({"cpu": 0}, {"memory_in_gb": -1}, {"cpu": "1"}, {"gpu": 1.5}, {"gpu": True}):
        with pytest.raises(ConfigError, match="ResourceConfiguration"):
            ResourceConfiguration(**bad)


def test_a_model_registers_with_a_resource_configuration(
    workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Model.register(..., model_framework=…, resource_configuration=…)`` as in the
    reference's model-register-and-deploy notebook."""
    write_files(tmp_path, {"sklearn_regression_model.pkl": "pickled"})
    monkeypatch.chdir(tmp_path)
    model = Model.register(
        workspace=workspace, model_name="my-sklearn-model",
        model_path="./sklearn_regression_model.pkl",
        model_framework=Model.Framework.SCIKITLEARN, model_framework_version="1.9.1",
        resource_configuration=ResourceConfiguration(cpu=1, memory_in_gb=0.5),
        description="Ridge regression model to predict diabetes progression.",
        tags={"area": "diabetes", "type": "regression"},
    )  # fmt: skip
    assert (model.name, model.version, model.model_framework) == (
        "my-sklearn-model", 1, "ScikitLearn",
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"ResourceConfiguration\(cpu=…"):
        Model.register(
            workspace, "./sklearn_regression_model.pkl", "m",
            resource_configuration={"cpu": 1},
        )  # fmt: skip


def test_lookups_that_find_nothing_name_the_fix(
    workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelPathNotFoundException) as missing:
        Model.register(workspace, model_path="outputs/model.pkl", model_name="m")
    assert str(tmp_path) in str(missing.value) and "give the path" in str(missing.value)
    with pytest.raises(ModelNotFoundException) as offline:
        Model.get_model_path("never-registered")
    message = str(offline.value)
    assert message.startswith("Model not found in cache or in root at ./never-registered.")
    assert "_workspace=ws" in message
    with pytest.raises(ModelNotFoundException, match=r"Model\.list"):
        Model(workspace, "never-registered")


JOB = """
import os
from azureml.core import Run
run = Run.get_context()
os.makedirs("outputs/model", exist_ok=True)
with open("outputs/model/weights.bin", "wb") as fh:
    fh.write(b"w" * 100)
with open("outputs/model.pkl", "wb") as fh:
    fh.write(b"pickled")
run.register_model(model_name="in-job", model_path="./outputs/model.pkl")
"""


def test_a_model_path_is_normalised_as_the_references(workspace: Any, awkward_dir: Path) -> None:
    """``model_path='./outputs/model.pkl'`` or ``'outputs/model/'`` (the reference applies
    ``os.path.normpath``), on the driver and inside the job."""
    from jobs import log_of

    from ferry.experiment import Experiment
    from ferry.script_run_config import ScriptRunConfig

    write_files(awkward_dir / "src", {"train.py": JOB})
    run = Experiment(workspace, "norm").submit(
        ScriptRunConfig(str(awkward_dir / "src"), "train.py")
    )
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == "Completed", log_of(run)
    assert Model(workspace, "in-job").run_id == run.id
    dotted = run.register_model(model_name="dotted", model_path="./outputs/model.pkl")
    folder = run.register_model(model_name="folder", model_path="outputs/model/")
    assert dotted.download(str(awkward_dir / "d1")).endswith("model.pkl")
    assert Path(folder.download(str(awkward_dir / "d2")), "weights.bin").read_bytes() == b"w" * 100
    for wrong in ("../outputs/model.pkl", ".", "outputs/absent.pkl"):
        with pytest.raises(ModelPathNotFoundException, match="Could not locate"):
            run.register_model(model_name="never", model_path=wrong)


def test_serving_a_model_is_refused_naming_how_to_get_its_files(workspace: Any) -> None:
    """The deployment notebooks' ``Model.deploy(ws, "svc", [model], inference_config, …)``."""
    for call in (Model.deploy, Model.package, Model.profile):
        with pytest.raises(ConfigError, match=r"not part of ferry.*download\(target_dir\)"):
            call(workspace, "svc", [], None, None)
