"""Bad input: a clear message naming the problem and the fix, exit 2, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
from nothing_submitted import assert_no_runs

from ferry.workspace import Workspace


@pytest.fixture
def project(awkward_dir: Path) -> Path:
    folder = awkward_dir / "proj"
    folder.mkdir()
    (folder / "train.py").write_text("print('hi')\n")
    return folder


def test_missing_script(ferry, project: Path) -> None:  # type: ignore[no-untyped-def]
    res = ferry("submit", str(project / "nope.py"))
    assert res.code == 2 and "does not exist" in res.err
    assert "Traceback" not in res.err
    assert_no_runs(ferry)


def test_script_outside_source_directory(ferry, project: Path, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    other = awkward_dir / "other"
    other.mkdir()
    res = ferry("submit", str(project / "train.py"), "--source-dir", str(other))
    assert res.code == 2 and "not inside the source folder" in res.err
    assert_no_runs(ferry)


def test_unknown_target_lists_known_ones(ferry, project: Path) -> None:  # type: ignore[no-untyped-def]
    res = ferry("submit", str(project / "train.py"), "-t", "gpu-cluster")
    assert res.code == 2 and "'gpu-cluster'" in res.err and "attached targets: local" in res.err
    assert_no_runs(ferry)


@pytest.mark.parametrize("name", ["-bad", "has space", "x" * 256, "ü"])
def test_bad_experiment_name(ferry, project: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    res = ferry("submit", str(project / "train.py"), "-e", name)
    assert res.code == 2 and "experiment name" in res.err
    assert_no_runs(ferry)


def test_malformed_yaml(ferry, project: Path) -> None:  # type: ignore[no-untyped-def]
    job = project / "job.yml"
    job.write_text("script: train.py\narguments: [--a, 1\n")
    res = ferry("submit", str(job))
    assert res.code == 2 and "not valid YAML" in res.err
    assert_no_runs(ferry)


def test_unknown_yaml_key_names_allowed_keys(ferry, project: Path) -> None:  # type: ignore[no-untyped-def]
    job = project / "job.yml"
    job.write_text("script: train.py\nargs: [1]\n")
    res = ferry("submit", str(job))
    assert res.code == 2 and "unknown key 'args'" in res.err and "arguments" in res.err
    assert_no_runs(ferry)


def test_wrong_yaml_types(ferry, project: Path) -> None:  # type: ignore[no-untyped-def]
    job = project / "job.yml"
    job.write_text("script: train.py\narguments: --alpha 1\n")
    res = ferry("submit", str(job))
    assert res.code == 2 and "'arguments' must be a list" in res.err


def test_yaml_job_runs(ferry, project: Path) -> None:  # type: ignore[no-untyped-def]
    job = project / "job.yml"
    job.write_text(
        "experiment: yamljob\nscript: train.py\narguments: [--x, 1]\n"
        "environment_variables: {GREETING: hello}\ntags: {kind: yaml}\n"
    )
    (project / "train.py").write_text(
        "import os, sys\nprint(os.environ['GREETING'], sys.argv[1:])\n"
    )
    res = ferry("submit", str(job))
    assert res.code == 0, res.err
    assert "hello ['--x', '1']" in res.out


def test_missing_interpreter(ferry, project: Path) -> None:  # type: ignore[no-untyped-def]
    job = project / "job.yml"
    job.write_text(
        "script: train.py\nenvironment:\n  python:\n    userManagedDependencies: true\n"
        "    interpreterPath: /no/such/python3\n"
    )
    res = ferry("submit", str(job))
    assert res.code == 2 and "/no/such/python3" in res.err and "interpreter_path" in res.err
    assert_no_runs(ferry)


def test_unwritable_workspace(ferry, project: Path, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = awkward_dir / "a file"
    blocker.write_text("")
    res = ferry("submit", str(project / "train.py"), workspace=blocker / "ws")
    assert res.code == 2 and "not writable" in res.err


def test_bad_tag_and_status_options(ferry, project: Path, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert ferry("submit", str(project / "train.py"), "--tag", "novalue").code == 2
    Workspace.create(awkward_dir / "cli ws")  # the refused submit made none
    res = ferry("runs", "list", "--status", "finished")
    assert res.code == 2 and "use one of" in res.err


def test_unknown_run_id(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    Workspace.create(awkward_dir / "cli ws")
    res = ferry("runs", "show", "nope_1_deadbeef")
    assert res.code == 2 and "no run 'nope_1_deadbeef'" in res.err


def test_corrupt_config_json(ferry, awkward_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    proj = awkward_dir / "cfg"
    (proj / ".ferry").mkdir(parents=True)
    (proj / ".ferry" / "config.json").write_text("{not json")
    monkeypatch.chdir(proj)
    res = ferry("runs", "list", workspace=None)
    assert res.code == 2 and "config.json is not valid JSON" in res.err


def test_a_target_refuses_a_job_it_cannot_run_before_anything_is_written(
    ferry, project: Path
) -> None:  # type: ignore[no-untyped-def]
    assert ferry("target", "attach", "spark1", "--type", "spark", "--master", "local[1]").code == 0
    res = ferry("submit", str(project / "train.py"), "-t", "spark1")
    assert res.code == 2 and "framework='pyspark'" in res.err
    assert_no_runs(ferry)
    res = ferry("submit", str(project / "train.py"), "--framework", "jax")
    assert res.code == 2 and "unknown framework 'jax'" in res.err
    assert_no_runs(ferry)


def test_a_source_folder_over_the_snapshot_limit_fails_before_anything_is_stored(
    ferry, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        (project / f"data{i}.csv").write_text("x\n" * 100)
    monkeypatch.setenv("FERRY_SNAPSHOT_MAX_FILES", "3")
    res = ferry("submit", str(project / "train.py"))
    assert res.code == 2 and "data" in res.err and ".ferryignore" in res.err
    assert_no_runs(ferry)
