"""Content digests: the one place that knows which hash functions a store may use.

ferry uses SHA-256 by default: hardware-accelerated (SHA-NI, ARMv8 crypto) it hashes at
~1.7 GB/s, faster than BLAKE2b in :mod:`hashlib`, and users can check a blob with ``sha256sum``.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Protocol

DEFAULT_ALGO = "sha256"
# Read size for hashing and copying big files: large reads keep the per-call cost negligible.
CHUNK = 1 << 20

_HEX_LENGTH = {"sha256": 64, "blake2b": 64}
_DIGEST_RE = {algo: re.compile(f"[0-9a-f]{{{n}}}") for algo, n in _HEX_LENGTH.items()}


class Hasher(Protocol):
    """The part of a :mod:`hashlib` object ferry uses."""

    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


def check_algo(algo: str) -> str:
    """Return ``algo`` if ferry supports it, else raise ValueError."""
    if algo not in _HEX_LENGTH:
        raise ValueError(f"unsupported digest algorithm {algo!r}; use one of {sorted(_HEX_LENGTH)}")
    return algo


def new_hasher(algo: str = DEFAULT_ALGO) -> Hasher:
    """A fresh incremental hasher for ``algo`` (BLAKE2b is used with a 32-byte digest)."""
    if algo == "sha256":
        return hashlib.sha256()
    if algo == "blake2b":
        return hashlib.blake2b(digest_size=32)
    raise ValueError(f"unsupported digest algorithm {algo!r}")


def hash_bytes(data: bytes | memoryview, algo: str = DEFAULT_ALGO) -> str:
    """Hex digest of ``data``."""
    hasher = new_hasher(algo)
    hasher.update(data)
    return hasher.hexdigest()


def is_digest(value: object, algo: str = DEFAULT_ALGO) -> bool:
    """True when ``value`` is a well-formed lowercase hex digest for ``algo``."""
    return isinstance(value, str) and _DIGEST_RE[algo].fullmatch(value) is not None


def hash_fd(fd: int, algo: str = DEFAULT_ALGO) -> tuple[str, int]:
    """Hash everything readable from ``fd``; return the hex digest and the byte count."""
    hasher = new_hasher(algo)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    total = 0
    while True:
        n = os.readv(fd, [buffer])
        if not n:
            return hasher.hexdigest(), total
        hasher.update(view[:n])
        total += n
