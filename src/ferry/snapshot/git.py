"""Git state of a source folder, recorded with each run as the reference does (§9), and more.

Properties (missing values are omitted, never empty):

==========================  ================================  ======================
``azureml.git.*``           ``mlflow.source.git.*``           ``ferry.git.*``
==========================  ================================  ======================
repository_uri              repoURL                           repository_uri
branch                      branch                            branch
commit                      commit                            commit
dirty ("True"/"False")      —                                 dirty
==========================  ================================  ======================

Environment overrides win over git: ``FERRY_GIT_REPOSITORY_URI``, ``FERRY_GIT_BRANCH``,
``FERRY_GIT_COMMIT``, ``FERRY_GIT_DIRTY`` (and ``FERRY_GIT_BUILD_ID``/``_BUILD_URI``), each also
accepted under the reference's ``AZUREML_GIT_*`` name. Beyond the reference, a dirty tree keeps
``diff`` (``git diff HEAD`` of the source folder) and ``untracked`` (repository-relative paths),
so an uncommitted experiment stays reproducible. Credentials in a remote URL are removed.

Cost: one ``git status --porcelain=v2 --branch`` (branch, commit, dirtiness and untracked files
at once), one ``git ls-remote --get-url``, and ``git diff HEAD`` only when dirty. No git, or not a
repository: ``None`` (or only the overrides), never an error::

    info = capture_git(Path("src"))
    if info is not None:
        run_properties.update(info.properties)
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ferry.errors import ConfigError

MAX_DIFF_BYTES = 10 << 20
_TIMEOUT = 60.0
_FIELDS = ("repository_uri", "branch", "commit", "dirty", "build_id", "build_uri")
_MLFLOW = {"repository_uri": "repoURL", "branch": "branch", "commit": "commit"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class GitInfo:
    """What git (or the environment) says about the source folder."""

    repository_uri: str | None = None
    branch: str | None = None
    commit: str | None = None
    dirty: bool | None = None
    build_id: str | None = None
    build_uri: str | None = None
    diff: str | None = None  # `git diff HEAD -- <source folder>` when dirty
    untracked: tuple[str, ...] = field(default_factory=tuple)

    @property
    def properties(self) -> dict[str, str]:
        """Run properties: ``azureml.git.*``, ``mlflow.source.git.*`` and ``ferry.git.*``."""
        out: dict[str, str] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            text = str(value) if not isinstance(value, bool) else ("True" if value else "False")
            out[f"azureml.git.{name}"] = text
            out[f"ferry.git.{name}"] = text
            if name in _MLFLOW:
                out[f"mlflow.source.git.{_MLFLOW[name]}"] = text
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["untracked"] = list(self.untracked)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GitInfo:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["untracked"] = tuple(known.get("untracked") or ())
        return cls(**known)


def capture_git(source_dir: Path, env: Mapping[str, str] | None = None) -> GitInfo | None:
    """Git state of ``source_dir`` with environment overrides; None when there is nothing."""
    env = os.environ if env is None else env
    overrides = _overrides(env)
    found = _from_git(Path(source_dir)) if not _complete(overrides) else {}
    merged: dict[str, Any] = {**found, **overrides}
    if not any(merged.get(name) is not None for name in _FIELDS):
        return None
    if not merged.get("dirty"):
        merged.pop("diff", None)
        merged.pop("untracked", None)
    return GitInfo(**merged)


def scrub_url(url: str) -> str:
    """Remove user names and passwords/tokens from an http(s) URL; keep ssh users."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if parts.password is not None:
        user_host = f"{parts.username}@{parts.netloc.rpartition('@')[2]}"
        return urlunsplit(parts._replace(netloc=user_host))
    return url


def _overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        for prefix in ("FERRY_GIT_", "AZUREML_GIT_"):
            value = env.get(prefix + name.upper())
            if value is not None:
                out[name] = _parse_dirty(prefix + name.upper(), value) if name == "dirty" else value
                break
    return out


def _complete(overrides: Mapping[str, Any]) -> bool:
    return all(name in overrides for name in ("repository_uri", "branch", "commit", "dirty"))


def _parse_dirty(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r}: use true/false (or 1/0)")


def _from_git(source_dir: Path) -> dict[str, Any]:
    # the remote's URL is asked for beside the status (two git processes at once: ~5 ms less
    # of every submit from a repository)
    remote = _start_git(source_dir, "ls-remote", "--get-url")
    status = _git(source_dir, "status", "--porcelain=v2", "--branch", "-z",
                  "--untracked-files=all", "--", ".")  # fmt: skip
    url = _finish_git(remote)
    if status is None:
        return {}  # not a repository, git missing, or git failing: no properties, no error
    out: dict[str, Any] = {}
    records = status.split("\0")
    untracked: list[str] = []
    dirty = False
    skip_next = False
    for record in records:
        if skip_next:  # the original path of a rename record
            skip_next = False
            continue
        if record.startswith("# branch.oid "):
            oid = record.removeprefix("# branch.oid ")
            if oid != "(initial)":
                out["commit"] = oid
        elif record.startswith("# branch.head "):
            head = record.removeprefix("# branch.head ")
            if head != "(detached)":
                out["branch"] = head
        elif record.startswith("? "):
            untracked.append(record[2:])
            dirty = True
        elif record[:2] in ("1 ", "2 ", "u "):
            dirty = True
            skip_next = record.startswith("2 ")
    out["dirty"] = dirty
    if url is not None and url.strip():
        out["repository_uri"] = scrub_url(url.strip())
    if dirty:
        out["untracked"] = tuple(untracked)
        if "commit" in out:
            text = _git(source_dir, "-c", "core.quotepath=off", "diff", "--no-color",
                        "--no-ext-diff", "HEAD", "--", ".")  # fmt: skip
            if text is not None:
                if len(text) > MAX_DIFF_BYTES:
                    text = text[:MAX_DIFF_BYTES] + "\n# ferry: diff truncated\n"
                out["diff"] = text
    return out


def _git(cwd: Path, *args: str) -> str | None:
    """Run git in ``cwd``; its stdout, or None if git is missing or the command failed."""
    return _finish_git(_start_git(cwd, *args))


def _start_git(cwd: Path, *args: str) -> subprocess.Popen[bytes] | None:
    """Start git in ``cwd`` (None if it cannot start); :func:`_finish_git` reads its answer."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    command: Sequence[str] = ("git", *args)
    try:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def _finish_git(proc: subprocess.Popen[bytes] | None) -> str | None:
    """The started git's stdout, or None if it failed or took over the time limit."""
    if proc is None:
        return None
    try:
        out, _ = proc.communicate(timeout=_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    if proc.returncode != 0:
        return None
    return out.decode("utf-8", "surrogateescape")
