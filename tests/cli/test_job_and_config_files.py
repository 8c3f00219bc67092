"""Job files and ``.ferry/config.json`` cannot blow up (probe 3.12, 3.13, R4, M2).

Every malformed file is a clear message (exit 2) that names the file, before anything is
written; an alias bomb is refused in milliseconds with bounded memory; Python tags never run.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from nothing_submitted import assert_no_runs

from ferry.errors import ConfigError
from ferry.jobfile import MAX_BYTES, MAX_DEPTH, load_job


def _alias_bomb() -> str:
    """The probe's 1 KB bomb: nine levels of nine aliases, 9**9 strings once expanded."""
    levels = ["&a [x,x,x,x,x,x,x,x,x]"] + [
        f"&{c} [" + ",".join(["*" + p] * 9) + "]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    return "script: train.py\narguments: [" + ", ".join(levels) + "]\n"


def _block_nesting(depth: int) -> str:
    """Block-style mappings, ``depth`` levels deep (under libyaml's own flow-level limit)."""
    lines = ["script: train.py", "run_config:"]
    lines += [f"{'  ' * (i + 1)}k{i}:" for i in range(depth)]
    lines.append(f"{'  ' * (depth + 1)}leaf")
    return "\n".join(lines) + "\n"


# (id, content, words the message must contain); every message must also name the file
JOB_CASES: list[tuple[str, str | bytes, str]] = [
    ("syntax error", "script: train.py\narguments: [--a, 1\n", "not valid YAML"),
    ("a list", "- script\n- train.py\n", "must be a mapping"),
    ("empty", "", "must be a mapping"),
    ("script list", "script: [a, b]\n", "'script' must be a str"),
    ("arguments int", "script: train.py\narguments: 5\n", "'arguments' must be a list"),
    ("unknown key", "scrpt: train.py\n", "unknown key 'scrpt'"),
    ("missing script", "arguments: [1]\n", "nothing to run"),
    ("escaping script", "script: ../outside.py\n", "inside the project folder"),
    ("absolute script", "script: /etc/passwd\n", "inside the project folder"),
    ("env list", "script: train.py\nenvironment_variables: [A, B]\n", "must be a dict"),
    ("duration text", "script: train.py\nmax_run_duration_seconds: soon\n", "must be a int"),
    ("duration negative", "script: train.py\nmax_run_duration_seconds: -5\n", "max_run_duration"),
    ("tags list", "script: train.py\ntags: [a, b]\n", "'tags' must be a dict"),
    ("unknown target", "script: train.py\ncompute_target: gpu-cluster\n", "gpu-cluster"),
    ("bad experiment", "script: train.py\nexperiment: '-bad name'\n", "experiment name"),
    ("binary", b"\x00\xff\xfe\x89PNG\r\n\x1a\n" * 64, "not UTF-8 text"),
    ("python tag", "script: !!python/object/apply:os.system ['touch {marker}']\n", "python/object"),
    ("deep flow nesting", "script: train.py\narguments: " + "[" * 5000 + "]" * 5000 + "\n", "nest"),
    ("deep block nesting", _block_nesting(MAX_DEPTH + 20), f"deeper than {MAX_DEPTH} levels"),
    ("alias bomb", _alias_bomb(), "expands to more than 100,000 values"),
    ("nested env value", "script: train.py\nenvironment_variables: {A: {b: 1}}\n", "environment_variables.A must be a plain value"),
    ("nested tag value", "script: train.py\ntags: {t: [1, 2]}\n", "tags.t must be a plain value"),
    ("nested argument", "script: train.py\narguments: [--a, [1, 2]]\n", "plain values"),
    ("self-containing alias", "script: train.py\narguments: &r [1, *r]\n", "contains itself"),
    ("too large", "script: train.py\n#" + "x" * MAX_BYTES + "\n", "larger than 4 MB"),
]  # fmt: skip
# messages from the run configuration's own checks, which name the setting but not the file
NAMES_NO_FILE = {"unknown target", "bad experiment"}


@pytest.fixture
def project(awkward_dir: Path) -> Path:
    folder = awkward_dir / "proj"
    folder.mkdir()
    (folder / "train.py").write_text("print('hi')\n")
    (awkward_dir / "outside.py").write_text("")
    return folder


@pytest.mark.parametrize(("case", "content", "words"), JOB_CASES, ids=[c[0] for c in JOB_CASES])
def test_a_malformed_job_file_is_a_clear_error(  # type: ignore[no-untyped-def]
    ferry, project: Path, case: str, content: str | bytes, words: str
) -> None:
    job = project / "job file.yml"
    marker = project.parents[1] / "pwned"  # a path without quotes, to put in the YAML
    if isinstance(content, bytes):
        job.write_bytes(content)
    else:
        job.write_text(content.replace("{marker}", str(marker)), encoding="utf-8")
    started = time.monotonic()
    res = ferry("submit", str(job))
    assert res.code == 2, (res.out, res.err)
    assert time.monotonic() - started < 10
    assert "Traceback" not in res.err and words in res.err, res.err
    if case not in NAMES_NO_FILE:
        assert "job file.yml" in res.err, res.err
    assert not marker.exists()  # the python tag was never executed
    assert_no_runs(ferry)


def _measure(load: Callable[[], object]) -> tuple[float, int, BaseException | None]:
    tracemalloc.start()
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        load()
    except ConfigError as exc:
        error = exc
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, error


def test_an_alias_bomb_is_refused_fast_with_bounded_memory(project: Path) -> None:
    job = project / "bomb.yml"
    job.write_text(_alias_bomb())
    assert len(job.read_bytes()) < 1100  # the probe's 1 KB file (69 s and 6.8 GB before)
    seconds, peak, error = _measure(lambda: load_job(job))
    assert isinstance(error, ConfigError) and "aliases" in str(error)
    assert seconds < 0.5, seconds
    assert peak < 8 * 1024 * 1024, peak


def test_a_few_aliases_are_fine(project: Path) -> None:
    job = project / "job.yml"
    job.write_text(
        "script: train.py\narguments: [--lr, &lr 0.1, --warmup-lr, *lr]\n"
        "environment_variables: &vars {SEED: 1, FLAG: true, EMPTY: null}\ntags: *vars\n"
    )
    loaded = load_job(job)
    assert loaded.config.arguments == ["--lr", 0.1, "--warmup-lr", 0.1]
    assert loaded.config.run_config.environment_variables == {
        "SEED": "1",
        "FLAG": "True",
        "EMPTY": "",
    }
    assert loaded.tags == {"SEED": 1, "FLAG": True, "EMPTY": None}


# .ferry/config.json, as found from the working folder (probe 3.13)
CONFIG_CASES: list[tuple[str, str | bytes, str]] = [
    ("invalid JSON", "{not json", "is not valid JSON"),
    ("a list", "[1, 2]", 'must hold {"workspace": "<folder>"}'),
    ("workspace number", '{"workspace": 5}', 'must hold {"workspace": "<folder>"}'),
    ("binary", b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00" * 8, "not UTF-8 text"),
    ("a file", '{"workspace": "{file}"}', "not writable"),
    ("proc", '{"workspace": "/proc/self"}', "not writable"),
    ("sys", '{"workspace": "/sys/kernel"}', "not writable"),
    ("empty workspace", '{"workspace": ""}', 'has an empty "workspace"'),
    ("blank workspace", '{"workspace": "  "}', 'has an empty "workspace"'),
    ("deep nesting", "[" * 100_000 + "]" * 100_000, "nests too deeply"),
    ("name number", '{"workspace": "ws", "name": 5}', '"name" must be text'),
    ("too large", '{"workspace": "ws", "pad": "' + "x" * 2_000_000 + '"}', "larger than 1 MB"),
]


@pytest.mark.parametrize(
    ("case", "content", "words"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES]
)
@pytest.mark.parametrize("command", ["runs list", "submit"])
def test_a_malformed_config_json_is_a_clear_error(  # type: ignore[no-untyped-def]
    ferry,
    awkward_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    content: str | bytes,
    words: str,
    command: str,
) -> None:
    project = awkward_dir / "p"
    config = project / ".ferry" / "config.json"
    config.parent.mkdir(parents=True)
    (project / "train.py").write_text("print('hi')\n")
    a_file = awkward_dir / "a file"
    a_file.write_text("")
    if isinstance(content, bytes):
        config.write_bytes(content)
    else:
        config.write_text(content.replace("{file}", str(a_file).replace('"', '\\"')))
    monkeypatch.chdir(project)
    argv = ["runs", "list"] if command == "runs list" else ["submit", "train.py", "--no-wait"]
    res = ferry(*argv, workspace=None)
    assert res.code == 2, (res.out, res.err)
    assert "Traceback" not in res.err and words in res.err, res.err
    if case not in ("a file", "proc", "sys"):
        assert "config.json" in res.err
    assert not (project / ".ferry" / "ferry.db").exists()  # .ferry/ did not become a workspace


def test_a_config_json_with_a_byte_order_mark_is_read(  # type: ignore[no-untyped-def]
    ferry, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = awkward_dir / "bom"
    (project / ".ferry").mkdir(parents=True)
    (project / ".ferry" / "config.json").write_bytes(b'\xef\xbb\xbf{"workspace": "team ws"}')
    monkeypatch.chdir(project)
    res = ferry("runs", "list", "--json", workspace=None)
    assert res.code == 0, res.err
    assert (project / ".ferry" / "team ws" / "runs").is_dir()
