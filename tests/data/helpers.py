"""Small helpers of the data and model tests."""

from __future__ import annotations

from pathlib import Path


def write_files(root: Path, files: dict[str, bytes | str]) -> Path:
    """Make ``root/<rel>`` for each file; returns ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root
