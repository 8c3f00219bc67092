"""Copying a registered model out of the workspace's blob store, inside a local job.

The manifest (a JSON blob named by its SHA-256) lists each file's digest; each blob is copied
and verified while it is read, into a temporary folder renamed into place, so concurrent jobs
asking for the same model agree. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from typing import Optional

_CHUNK = 1 << 20


def _blob(blobs: str, digest: str) -> str:
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a digest: {digest!r}")
    return os.path.join(blobs, digest[:2], digest[2:])


def copy_model(manifest_id: str, root: str, blobs: str, dest: str) -> Optional[str]:
    """``dest/<root>`` filled from the manifest (made once); returns that path."""
    target = os.path.join(dest, root)
    if os.path.exists(target):
        return target
    with open(_blob(blobs, manifest_id), "rb") as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != manifest_id:
        raise ValueError(f"the model's manifest {manifest_id} is damaged in the blob store")
    entries = json.loads(data)["entries"]
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(prefix=".model-", dir=parent)
    try:
        for rel, entry in sorted(entries.items()):
            if "digest" not in entry:
                continue
            parts = rel.split("/")
            if rel.startswith("/") or ".." in parts or "" in parts:
                raise ValueError(f"unsafe path in the model's manifest: {rel!r}")
            out = os.path.join(temp, *parts)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            hasher = hashlib.sha256()
            with open(_blob(blobs, entry["digest"]), "rb") as src, open(out, "wb") as dst:
                while True:
                    chunk = src.read(_CHUNK)
                    if not chunk:
                        break
                    hasher.update(chunk)
                    dst.write(chunk)
            if hasher.hexdigest() != entry["digest"]:
                raise ValueError(f"the model's file {rel!r} is damaged in the blob store")
            os.chmod(out, int(entry.get("mode", 0o644)) & 0o777)
        try:
            os.rename(temp, dest)
        except OSError:
            if not os.path.exists(target):  # not another job's copy: a real failure
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target
