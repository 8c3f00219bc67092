"""The runtime path: the folder a target puts first on a job's ``PYTHONPATH``.

It holds ``ferry_runtime/`` (a copy of this package), and the shim packages ``azureml/``
(``azureml.core.Run``, ``azureml.core.run.Run``) and ``ferry/`` (``ferry.Run``), which step aside
for a real installed package (see :mod:`.shadowing`). Nothing is pip-installed into the job's
environment.

The folder is named after a hash of its contents (``<dest>/runtime-<16 hex>``), so several ferry
versions can share a workspace, and it is published atomically: built in a temporary folder, then
renamed. A folder already there with a matching stamp is reused as is.

Example::

    path = build_runtime_path(workspace / "runtime")
    env["PYTHONPATH"] = str(path) + os.pathsep + env.get("PYTHONPATH", "")
"""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import uuid
from typing import List, Optional, Tuple

PACKAGE_NAME = "ferry_runtime"
STAMP = ".ferry-runtime.json"
_LAYOUT_VERSION = "1"


def build_runtime_path(dest: pathlib.Path) -> pathlib.Path:
    """Create (or reuse) the runtime folder under ``dest``; return the folder to put on the path.

    Safe to call concurrently from several processes: the first complete folder wins.
    """
    dest = pathlib.Path(dest)
    files, digest = _content()
    target = dest / f"runtime-{digest[:16]}"
    if _is_complete(target, digest):
        return target
    dest.mkdir(parents=True, exist_ok=True)
    temp = pathlib.Path(tempfile.mkdtemp(prefix=".runtime-", suffix=".tmp", dir=dest))
    try:
        for relative, source in files:
            copy = temp / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
        # byte-compile once: jobs often run with PYTHONDONTWRITEBYTECODE and would otherwise
        # compile the runtime on every start (other Python versions simply ignore these files)
        compileall.compile_dir(str(temp), quiet=1)
        stamp = {"digest": digest, "files": [relative for relative, _ in files]}
        (temp / STAMP).write_text(json.dumps(stamp, indent=1), encoding="utf-8")
        _publish(temp, target, digest)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return target


_CONTENT: Optional[Tuple[List[Tuple[str, pathlib.Path]], str]] = None


def _content() -> Tuple[List[Tuple[str, pathlib.Path]], str]:
    # the package does not change while a process runs: hash it once per process
    global _CONTENT
    if _CONTENT is None:
        files = runtime_files()
        _CONTENT = (files, _digest(files))
    return _CONTENT


def runtime_digest() -> str:
    """The runtime folder's content hash (computed once per process: a forking parent that
    calls it spares its children the reading)."""
    return _content()[1]


def runtime_files() -> List[Tuple[str, pathlib.Path]]:
    """``(path inside the runtime folder, source file)`` for every file of the runtime path."""
    package = pathlib.Path(__file__).resolve().parent
    shims = package / "_shims"
    files: List[Tuple[str, pathlib.Path]] = []
    for source in sorted(package.rglob("*.py")):
        if "__pycache__" in source.parts:
            continue
        relative = source.relative_to(package).as_posix()
        files.append((f"{PACKAGE_NAME}/{relative}", source))
        if source.parent != shims and shims in source.parents:
            files.append((source.relative_to(shims).as_posix(), source))
    return sorted(files)


def _digest(files: List[Tuple[str, pathlib.Path]]) -> str:
    digest = hashlib.sha256(_LAYOUT_VERSION.encode())
    for relative, source in files:
        digest.update(b"\0" + relative.encode() + b"\0")
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _is_complete(folder: pathlib.Path, digest: str) -> bool:
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(stamp, dict) or stamp.get("digest") != digest:
        return False
    return all((folder / str(relative)).is_file() for relative in stamp.get("files") or ())


def _publish(temp: pathlib.Path, target: pathlib.Path, digest: str) -> None:
    try:
        os.rename(temp, target)
        return
    except OSError:
        if _is_complete(target, digest):  # another process published the same folder first
            return
    # An incomplete leftover (a copy interrupted by hand?): move it aside, then publish.
    aside = target.with_name(f".stale-{uuid.uuid4().hex[:8]}-{target.name}")
    try:
        os.rename(target, aside)
    except FileNotFoundError:
        pass
    try:
        os.rename(temp, target)
    except OSError:
        if not _is_complete(target, digest):
            raise
    shutil.rmtree(aside, ignore_errors=True)
