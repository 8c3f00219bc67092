"""Python interpreters on this machine: find the one a specification asks for, never download one.

Candidates come from the interpreter running ferry, ``pythonX.Y`` on PATH, pyenv's versions
(``$PYENV_ROOT/versions``), the usual system folders and uv's own discovery of installed
interpreters, uv-managed ones included (``uv python install``). A request matches on the same
major.minor version: ``3.11``, ``3.11.7`` and ``python=3.11.7`` in a conda file all take the one
running ferry if it is a 3.11, else the newest 3.11 found — the reference's pins name patch
releases (its default is ``python=3.8.13``) that no machine is expected to hold exactly.

Example::

    find_python("3.8.13")    # Interpreter(version=(3, 8, 18), path='/root/.pyenv/versions/…')
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ferry.errors import ConfigError, EnvironmentBuildError

#: the in-job runtime needs this Python or newer.
MIN_PYTHON = (3, 8)
_PROBE = "import sys; print('.'.join(map(str, sys.version_info[:3])))"


@dataclass(frozen=True, order=True)
class Interpreter:
    """A Python interpreter found on this machine."""

    version: tuple[int, ...]
    path: str

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def find_interpreter(path: str) -> str:
    """The absolute path of an interpreter given as a path or a command name."""
    found = path if os.sep in path else shutil.which(path)
    if not found or not Path(found).is_file() or not os.access(found, os.X_OK):
        raise ConfigError(
            f"the interpreter {path!r} was not found or is not executable; set "
            "environment.python.interpreter_path to an existing Python (e.g. the output of "
            "`which python3`)"
        )
    return str(found)


def running_interpreter() -> Interpreter:
    """The interpreter running ferry (outside any virtual environment ferry runs in)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Interpreter(tuple(sys.version_info[:3]), os.path.realpath(base))


def parse_request(request: str) -> tuple[int, ...]:
    text = request.strip().lstrip("=").strip().removesuffix(".*")
    if not re.fullmatch(r"\d+(\.\d+){0,2}", text):
        raise ConfigError(f"python version {request!r} is not a version like '3.11' or '3.11.7'")
    return tuple(int(p) for p in text.split("."))


def _candidates() -> list[str]:
    names = re.compile(r"^python\d(\.\d+)?$")
    found: list[str] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or "shims" in Path(folder).parts:  # pyenv shims fail for inactive versions
            continue
        try:
            found += [str(Path(folder) / n) for n in os.listdir(folder) if names.match(n)]
        except OSError:
            continue
    pyenv = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found += sorted(glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python[0-9]*")))
    for folder in ("/usr/bin", "/usr/local/bin", "/opt/python/bin"):
        found += sorted(glob.glob(os.path.join(folder, "python[0-9]*")))
    return [p for p in found if names.match(Path(p).name)]


def _uv_interpreters() -> list[str]:
    try:
        from uv import find_uv_bin

        uv = find_uv_bin()
    except (ImportError, FileNotFoundError):
        return []
    try:
        out = subprocess.run(
            [uv, "python", "list", "--only-installed", "--python-preference", "system",
             "--output-format", "json"],
            capture_output=True, text=True, timeout=20, check=False,
            env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
        )  # fmt: skip
        import json

        items = json.loads(out.stdout or "[]")
        return [os.path.abspath(str(item["path"])) for item in items if item.get("path")]
    except (OSError, subprocess.SubprocessError, ValueError, TypeError, KeyError):
        return []


def probe_version(path: str) -> tuple[int, ...] | None:
    """The version of the interpreter at ``path`` (run isolated: ``-E -S``); None if it fails."""
    try:
        out = subprocess.run(
            [path, "-E", "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return tuple(int(p) for p in text.split(".")) if re.fullmatch(r"\d+\.\d+\.\d+", text) else None


@cache
def discover(with_uv: bool = True) -> tuple[Interpreter, ...]:
    """Every distinct interpreter found on this machine (by real path), newest first.

    ``with_uv`` adds uv's own discovery (thorough, but it takes a second or two).
    """
    from concurrent.futures import ThreadPoolExecutor

    current = running_interpreter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        listed = pool.submit(_uv_interpreters) if with_uv else None
        paths = set(_candidates()) | set(listed.result() if listed else [])
        real = {os.path.realpath(p) for p in paths if "shims" not in Path(p).parts}
        real = {p for p in real - {current.path} if os.access(p, os.X_OK)}
        found = {p: pool.submit(probe_version, p) for p in sorted(real)}
        interpreters = {current}
        interpreters |= {Interpreter(v, p) for p, f in found.items() if (v := f.result())}
    return tuple(sorted(interpreters, reverse=True))


def matches(interpreter: Interpreter, wanted: tuple[int, ...]) -> bool:
    """Same major.minor version (or same major, for a request like ``3``)."""
    return interpreter.version[: min(len(wanted), 2)] == wanted[:2]


def find_python(request: str | None) -> Interpreter:
    """The interpreter for a requested version (None: the one running ferry); see the module
    docstring for the matching rule."""
    current = running_interpreter()
    if request is None:
        return current
    wanted = parse_request(request)
    if wanted < MIN_PYTHON[: len(wanted)]:
        raise EnvironmentBuildError(
            f"Python {request} is too old: ferry's in-job runtime needs Python "
            f"{'.'.join(map(str, MIN_PYTHON))} or newer; ask for a newer version"
        )
    if matches(current, wanted):
        return current
    for with_uv in (False, True):
        found = [i for i in discover(with_uv) if matches(i, wanted)]
        if found:
            return found[0]
    versions = sorted({i.version_text for i in discover()}, key=parse_request)
    short = ".".join(map(str, wanted[:2]))
    raise EnvironmentBuildError(
        f"no Python {short} on this machine for the requested Python {request} (ferry matches "
        f"the major.minor version and never downloads interpreters). Found: "
        f"{', '.join(versions) or 'none'}. Install Python {short} with `pyenv install {short}` "
        f"or `uv python install {short}` (or your system's package manager), or choose a "
        "version found here with env.python.conda_dependencies.set_python_version('X.Y') or "
        "'python=X.Y' in the conda file"
    )
