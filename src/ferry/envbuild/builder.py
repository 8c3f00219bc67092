"""Build one environment with uv, once per spec hash, and publish it atomically.

``uv venv --relocatable`` creates the environment in ``<envs_root>/.tmp-<hash>-…``, ``uv pip
install`` fills it, the packages are byte-compiled (the machine may set PYTHONDONTWRITEBYTECODE, so
runs would otherwise compile on every start; packages' own ``tests`` folders are skipped, which
halves the build of a scientific stack), ``uv pip freeze`` records the lock, and a rename
publishes the folder. A file lock per hash turns concurrent builds of one spec into one build; the others wait
and reuse it. A failed or killed build leaves nothing published. uv's output goes to ``log``.

With conda packages and a conda/micromamba executable, the environment is created by conda in its
final folder (conda environments cannot move) and published by writing the marker last.

Example::

    folder, built_here = build(plan, EnvCache(ws.envs_dir), print)
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.agent.proc import die_with_parent
from ferry.envbuild import conda as conda_mod
from ferry.envbuild.cache import LOCK_TEXT, EnvCache, write_marker
from ferry.envbuild.interpreters import Interpreter, find_python
from ferry.envbuild.pipconfig import describe, read_pip_settings, uv_arguments, uv_environment
from ferry.errors import EnvironmentBuildError

if TYPE_CHECKING:
    from ferry.spec import EnvironmentSpec

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuildPlan:
    """What to build for one spec hash (derived from an environment spec, nothing run yet)."""

    name: str
    spec_hash: str
    spec: dict[str, Any]
    python_request: str | None
    pip_packages: list[str]
    pip_options: list[str]
    conda_packages: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    from_conda: dict[str, str] = field(default_factory=dict)  # pip requirement -> conda spec
    conda_exe: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    python_asked: str | None = None  # as the spec spelled it (``3.8.13``), for the log


def plan_build(env: EnvironmentSpec, spec: dict[str, Any], spec_hash: str) -> BuildPlan:
    """Decide how to build ``env``: conda packages go to conda if present, else to pip."""
    conda_packages = [p for p in env.conda if conda_mod.conda_name(p) not in conda_mod.IGNORED]
    exe = conda_mod.find_conda() if conda_packages else None
    from_conda: dict[str, str] = {}
    if conda_packages and exe is None:
        only = conda_mod.conda_only(conda_packages)
        if only:
            raise EnvironmentBuildError(_conda_only_message(env.name, only))
        for package in conda_packages:
            requirement = conda_mod.conda_to_pip(package)
            if requirement:
                from_conda[requirement] = package
    return BuildPlan(
        name=env.name,
        spec_hash=spec_hash,
        spec=spec,
        python_request=spec["python"] if env.python is not None else None,
        pip_packages=[*env.pip, *from_conda],
        pip_options=list(spec["pipOptions"]),
        conda_packages=conda_packages if exe else [],
        channels=list(env.channels) if exe else [],
        from_conda=from_conda,
        conda_exe=exe,
        environment={"name": env.name, "version": env.version, "variables": dict(env.variables)},
        python_asked=env.python,
    )


def _conda_only_message(name: str, packages: Sequence[str]) -> str:
    return (
        f"environment {name!r} needs conda-only packages: {', '.join(packages)}. They are not on "
        "the Python package index, and no conda or micromamba executable was found (ferry looks "
        f"at $FERRY_CONDA_EXE, $MAMBA_EXE, $CONDA_EXE and PATH): {conda_mod.MICROMAMBA_HINT}; "
        "or remove them from the conda file (Python packages can go in its pip: section)"
    )


def _run(argv: list[str], env: dict[str, str], log: Log, what: str, cwd: Path) -> str:
    """Run a build step, streaming its output to ``log``; EnvironmentBuildError on failure."""
    tail: collections.deque[str] = collections.deque(maxlen=80)
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            preexec_fn=die_with_parent,  # imports nothing: safe beside the heartbeat thread
        )
    except OSError as exc:
        raise EnvironmentBuildError(f"cannot start {argv[0]!r} to {what}: {exc.strerror}") from exc
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            line = line.rstrip()
            if line.startswith("Activate with:"):
                continue
            tail.append(line)
            log(f"  {line}")
    if proc.returncode != 0:
        message = "\n".join(t for t in tail if t.strip())
        raise EnvironmentBuildError(f"{what} failed (exit {proc.returncode}):\n{message}")
    return "\n".join(tail)


def _uv() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        import shutil

        found = shutil.which("uv")
        if found:
            return found
    raise EnvironmentBuildError("uv was not found; install it with `pip install uv`")


def _capture(argv: list[str], env: dict[str, str], what: str, cwd: Path) -> str:
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise EnvironmentBuildError(f"{what} failed: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout


def _fill(folder: Path, plan: BuildPlan, python: Interpreter, log: Log) -> dict[str, Any]:
    """Create the environment in ``folder`` and install the plan's packages; returns facts."""
    uv = _uv()
    settings = read_pip_settings()
    env = uv_environment(settings)
    env["UV_NO_PROGRESS"] = "1"
    sources = uv_arguments(settings, plan.pip_options)
    if settings.files:
        log(f"environment: pip configuration read from {', '.join(settings.files)}")
    log(f"environment: package sources: {describe(sources)}")
    if plan.conda_exe:
        _run(
            [plan.conda_exe, "create", "--yes", "--prefix", str(folder), "--override-channels",
             *[a for c in plan.channels or ["conda-forge"] for a in ("-c", c)],
             f"python={plan.spec['python']}", *plan.conda_packages],
            env, log, f"{Path(plan.conda_exe).name} create", folder.parent,
        )  # fmt: skip
    else:
        _run(
            [uv, "--color", "never", "venv", "--relocatable", "--no-project",
             "--python", python.path, "--python-preference", "only-system", str(folder)],
            env, log, "uv venv", folder.parent,
        )  # fmt: skip
    target = str(folder / "bin" / "python")
    if plan.pip_packages:
        requirements = folder / "ferry-requirements.in"
        requirements.write_text("\n".join(plan.pip_packages) + "\n", encoding="utf-8")
        try:
            _run(
                [uv, "--color", "never", "pip", "install", "--python", target,
                 "--python-preference", "only-system",
                 "-r", str(requirements), *sources],
                env, log, "uv pip install", folder.parent,
            )  # fmt: skip
        except EnvironmentBuildError as exc:
            raise EnvironmentBuildError(_explain(plan, str(exc))) from None
        _compile(folder, target, env, log)
    lock = _capture([uv, "pip", "freeze", "--python", target], env, "uv pip freeze", folder.parent)
    if plan.conda_exe:
        conda_list = _capture(
            [plan.conda_exe, "list", "--prefix", str(folder), "--export"],
            env,
            "conda list",
            folder.parent,
        )
        lock = f"{lock}\n# conda packages\n{conda_list}"
    (folder / LOCK_TEXT).write_text(lock, encoding="utf-8")
    return {"sources": describe(sources), "packages": len(lock.splitlines())}


def _compile(folder: Path, python: str, env: dict[str, str], log: Log) -> None:
    """Byte-compile the installed packages in parallel, except their test suites."""
    started = time.monotonic()
    for site in sorted(folder.glob("lib/python*/site-packages")):
        out = subprocess.run(
            [python, "-m", "compileall", "-q", "-j", "0", "-x", r"[/\\]tests?[/\\]", str(site)],
            env=env, cwd=folder, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if out.returncode != 0:  # a file that does not compile is the package's problem
            log(f"  some files could not be byte-compiled: {out.stdout.strip()[-300:]}")
    log(f"  Byte-compiled the packages (test suites skipped) in {time.monotonic() - started:.2f}s")


def _explain(plan: BuildPlan, message: str) -> str:
    """Add which conda packages the index does not have to uv's message."""
    text = f"environment {plan.name!r} could not be built: {message}"
    missing = [
        conda
        for requirement, conda in plan.from_conda.items()
        if re.search(rf"\b{re.escape(conda_mod.conda_name(requirement))}\b", message)
        and re.search(r"not found in the (package )?registry|no version", message)
    ]
    if missing:
        text += "\n" + _conda_only_message(plan.name, missing)
    return text


def build(plan: BuildPlan, cache: EnvCache, log: Log) -> tuple[Path, bool]:
    """Publish the environment of ``plan``; returns its folder and whether this call built it."""
    lock = cache.build_lock(plan.spec_hash)
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(
            f"environment {plan.name!r}: another process is building {plan.spec_hash[:12]}; waiting"
        )
        lock.acquire()
    try:
        folder = cache.lookup(plan.spec_hash)
        if folder is not None:
            log(f"environment {plan.name!r}: reusing {plan.spec_hash[:12]} (built meanwhile)")
            return folder, False
        for leftover in cache.leftovers(plan.spec_hash):
            cache.discard(leftover)  # from a build that was killed
        final = cache.folder(plan.spec_hash)
        cache.discard(final)  # an unpublished conda build or an environment whose Python vanished
        python = find_python(plan.python_request)
        started = time.monotonic()
        asked = (plan.python_asked or "").strip().lstrip("=").strip()
        if asked and not (python.version_text + ".").startswith(asked.removesuffix(".*") + "."):
            log(
                f"environment {plan.name!r}: Python {asked} asked; using {python.version_text}, "
                "the same minor version (ferry matches major.minor)"
            )
        log(
            f"environment {plan.name!r}: building {plan.spec_hash[:12]} with Python "
            f"{python.version_text} ({python.path})"
        )
        workdir = final if plan.conda_exe else cache.new_temporary(plan.spec_hash)
        try:
            facts = _fill(workdir, plan, python, log)
            seconds = time.monotonic() - started
            write_marker(workdir, _meta(plan, python, facts, seconds))
            if workdir != final:
                os.rename(workdir, final)
        except BaseException:
            cache.discard(workdir)
            raise
        log(
            f"environment {plan.name!r}: built {plan.spec_hash[:12]} in {seconds:.1f} s "
            f"({facts['packages']} packages)"
        )
        return final, True
    finally:
        lock.release()


def _meta(
    plan: BuildPlan, python: Interpreter, facts: dict[str, Any], seconds: float
) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        uv_version = version("uv")
    except PackageNotFoundError:
        uv_version = None
    return {
        "hash": plan.spec_hash,
        "name": plan.name,
        "spec": plan.spec,
        "environment": plan.environment,
        "python": {"version": python.version_text, "base": python.path},
        "builtAt": time.time(),
        "buildSeconds": round(seconds, 3),
        "builtBy": os.getpid(),
        "tool": "conda+uv" if plan.conda_exe else "uv",
        "uv": uv_version,
        "sources": facts["sources"],
        "packages": facts["packages"],
    }
