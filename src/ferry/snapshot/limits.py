"""Snapshot limits: generous defaults, overridable, checked before anything is read or stored.

Defaults (the reference stops at 300 MB and 2,000 files; ferry stores each blob once, so a
resubmit costs only what changed and the limits can be far higher):

* ``max_bytes`` = 2 GiB in total — env ``FERRY_SNAPSHOT_MAX_BYTES``;
* ``max_files`` = 50,000 files — env ``FERRY_SNAPSHOT_MAX_FILES``;
* ``warn_file_bytes`` = 100 MiB for a single file (a warning, not an error) — env
  ``FERRY_SNAPSHOT_WARN_FILE_BYTES``.

Values accept a unit (``500MB``, ``4GiB``, ``10k``); ``0``, ``none`` or ``unlimited`` turn the
limit off::

    >>> SnapshotLimits.from_env({"FERRY_SNAPSHOT_MAX_BYTES": "4GiB"}).max_bytes == 4 << 30
    True
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ferry.errors import ConfigError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
ENV_MAX_BYTES = "FERRY_SNAPSHOT_MAX_BYTES"
ENV_MAX_FILES = "FERRY_SNAPSHOT_MAX_FILES"
ENV_WARN_FILE_BYTES = "FERRY_SNAPSHOT_WARN_FILE_BYTES"
_UNITS = {
    "": 1, "b": 1, "k": 1000, "kb": 1000, "kib": KiB, "m": 1000**2, "mb": 1000**2, "mib": MiB,
    "g": 1000**3, "gb": 1000**3, "gib": GiB, "t": 1000**4, "tb": 1000**4, "tib": 1 << 40,
}  # fmt: skip
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")
_SHOWN = 10


@dataclass(frozen=True, slots=True)
class SnapshotLimits:
    """Limits on one snapshot; ``None`` means no limit."""

    max_bytes: int | None = 2 * GiB
    max_files: int | None = 50_000
    warn_file_bytes: int | None = 100 * MiB

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SnapshotLimits:
        """The defaults, each overridden by its environment variable when set."""
        env = os.environ if env is None else env
        default = cls()
        return cls(
            max_bytes=_parse(env, ENV_MAX_BYTES, default.max_bytes),
            max_files=_parse(env, ENV_MAX_FILES, default.max_files),
            warn_file_bytes=_parse(env, ENV_WARN_FILE_BYTES, default.warn_file_bytes),
        )

    def problems(self, sizes: Sequence[tuple[str, int]]) -> list[str]:
        """What is over the limits, as sentences (empty when the tree fits)."""
        out: list[str] = []
        total = sum(size for _, size in sizes)
        if self.max_files is not None and len(sizes) > self.max_files:
            out.append(
                f"{len(sizes):,} files is over the limit of {self.max_files:,} files "
                f"({ENV_MAX_FILES})"
            )
        if self.max_bytes is not None and total > self.max_bytes:
            out.append(
                f"{format_bytes(total)} is over the limit of {format_bytes(self.max_bytes)} "
                f"({ENV_MAX_BYTES})"
            )
        return out

    def warnings(self, sizes: Sequence[tuple[str, int]]) -> list[str]:
        """One warning per file over ``warn_file_bytes``."""
        if self.warn_file_bytes is None:
            return []
        return [
            f"{path} is {format_bytes(size)}: consider keeping data outside the source folder "
            "(read it from a mounted or downloaded location in the job) or ignoring it"
            for path, size in sizes
            if size > self.warn_file_bytes
        ]


def limit_message(
    source_dir: str,
    problems: Sequence[str],
    sizes: Sequence[tuple[str, int]],
    ignore_files: Sequence[str],
) -> str:
    """The full explanation of a limit failure: what, the biggest offenders, and what to edit."""
    lines = [f"the snapshot of {source_dir} is too large: {'; '.join(problems)}."]
    lines.append("Nothing was stored. Largest files:")
    for path, size in largest(sizes, _SHOWN):
        lines.append(f"  {format_bytes(size):>10}  {path!r}")
    lines.append("Largest folders:")
    for folder, count, size in folders(sizes)[:_SHOWN]:
        lines.append(f"  {format_bytes(size):>10}  {folder!r} ({count:,} files)")
    root_file = next((f for f in ignore_files if "/" not in f), None)
    if root_file is not None:
        hint = f"add patterns for them (e.g. 'data/') to {posixpath.join(source_dir, root_file)}"
    else:
        hint = f"list them (e.g. 'data/') in {posixpath.join(source_dir, '.ferryignore')}"
    lines.append(
        f"To leave them out, {hint}; `ferry snapshot preview` shows the effect. Or raise the "
        f"limits with {ENV_MAX_BYTES} / {ENV_MAX_FILES}."
    )
    return "\n".join(lines)


def largest(sizes: Sequence[tuple[str, int]], n: int) -> list[tuple[str, int]]:
    return sorted(sizes, key=lambda item: (-item[1], item[0]))[:n]


def folders(sizes: Sequence[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """Top-level folders by total size: (folder/, files, bytes), biggest first."""
    totals: dict[str, list[int]] = {}
    for path, size in sizes:
        head, sep, _ = path.partition("/")
        if sep:
            slot = totals.setdefault(head + "/", [0, 0])
            slot[0] += 1
            slot[1] += size
    return sorted(((k, v[0], v[1]) for k, v in totals.items()), key=lambda t: (-t[2], -t[1], t[0]))


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _parse(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    if raw.strip().lower() in ("0", "none", "unlimited", "off"):
        return None
    m = _NUMBER.fullmatch(raw)
    if m is None or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"{name}={raw!r} is not a size or count (examples: 2000, 500MB, 4GiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
