"""This package as files: what SSH hosts receive and Ray nodes write out to run the watchdog.

The name carries a hash of every file, so a host or node keeps one folder per version
(``bin/agent-<16 hex>/ferry_agent/``) and a client never talks to an agent of another version.

Example::

    name, files = bundle()       # ("agent-3f0c…", {"watchdog.py": b"…", …})
"""

from __future__ import annotations

import hashlib
import os
from typing import Dict, Tuple

PACKAGE = "ferry_agent"  # the package's name where it is shipped

_cached: Tuple[str, Dict[str, bytes]] | None = None


def bundle() -> Tuple[str, Dict[str, bytes]]:
    """``("agent-<16 hex>", {file name: content})`` of every module of this package."""
    global _cached
    if _cached is None:
        folder = os.path.dirname(os.path.abspath(__file__))
        files = {}
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as fh:
                    files[name] = fh.read()
        digest = hashlib.sha256()
        for name, data in files.items():
            digest.update(name.encode() + b"\0" + data + b"\0")
        _cached = ("agent-" + digest.hexdigest()[:16], files)
    return _cached


def publish(root: str, name: str, files: Dict[str, bytes]) -> str:
    """Write the package as ``<root>/bin/<name>/ferry_agent/`` unless it is there (temp folder +
    rename: a reader never sees half of it); returns the package folder."""
    import shutil
    import time

    final = os.path.join(root, "bin", name)
    package = os.path.join(final, PACKAGE)
    if os.path.isdir(package):
        return package
    temp = os.path.join(root, "tmp", "%s.%d.%d" % (name, os.getpid(), time.monotonic_ns()))
    os.makedirs(os.path.join(temp, PACKAGE))
    for file_name, data in files.items():
        if "/" in file_name or file_name.startswith("."):
            raise ValueError("not a module name: %r" % file_name)
        with open(os.path.join(temp, PACKAGE, file_name), "wb") as fh:
            fh.write(data)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    try:
        os.rename(temp, final)
    except OSError:  # another run published it first
        shutil.rmtree(temp, ignore_errors=True)
    return package
