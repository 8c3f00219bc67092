"""Workspace: where runs, metrics, snapshots and environments are kept.

The default is an embedded workspace in a folder (SQLite in WAL mode + a blob store), found by
:meth:`Workspace.from_config`: ``.ferry/config.json`` searched upward from the current folder,
else ``$FERRY_HOME``, else ``~/.ferry`` (created on first use).

Example::

    ws = Workspace.create("/tmp/my-ws")
    ws.write_config(".")                 # ./.ferry/config.json now points at it
    ws = Workspace.from_config()
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError
from ferry.tracking import RunStore, open_store

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.run import Run
    from ferry.snapshot import LocalBlobStore

CONFIG_DIR = ".ferry"
CONFIG_FILE = "config.json"


def default_home() -> Path:
    home = os.environ.get("FERRY_HOME")
    return Path(home).expanduser() if home else Path.home() / ".ferry"


class Workspace:
    """A ferry workspace on this machine (an embedded SQLite store and a blob store)."""

    def __init__(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        self.path = Path(path).expanduser().resolve()
        try:
            str(self.path).encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(
                f"the workspace path {str(self.path).encode('utf-8', 'backslashreplace').decode()} "
                "is not valid UTF-8; choose a folder whose name is UTF-8 text"
            ) from None
        self.name = name or self.path.name
        self._store: RunStore | None = None

    # creation and discovery --------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | os.PathLike[str], name: str | None = None, exist_ok: bool = True
    ) -> Workspace:
        """Create (or open, with ``exist_ok``) a workspace folder at ``path``."""
        ws = cls(path, name)
        if (ws.path / "ferry.db").exists() and not exist_ok:
            raise ConfigError(f"a workspace already exists at {ws.path}")
        ws._prepare()
        return ws

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, **_: Any) -> Workspace:
        """Find the workspace: ``.ferry/config.json`` upward from ``path``, else the default."""
        start = Path(path or ".").expanduser().resolve()
        if start.is_file():
            return cls._from_file(start)
        for folder in (start, *start.parents):
            candidate = folder / CONFIG_DIR / CONFIG_FILE
            if candidate.is_file():
                return cls._from_file(candidate)
        if path is not None and os.environ.get("FERRY_HOME") is None and not start.exists():
            raise ConfigError(f"no folder {str(start)!r} to search for {CONFIG_DIR}/{CONFIG_FILE}")
        return cls.create(default_home())

    @classmethod
    def _from_file(cls, config_file: Path) -> Workspace:
        data = _read_config(config_file)
        folder = Path(data["workspace"]).expanduser()
        if not folder.is_absolute():
            folder = config_file.parent / folder
        return cls.create(folder, name=data.get("name"))

    def write_config(
        self, path: str | os.PathLike[str] | None = None, file_name: str | None = None
    ) -> Path:
        """Write ``<path>/.ferry/config.json`` pointing at this workspace."""
        folder = Path(path or ".").expanduser().resolve() / CONFIG_DIR
        target = folder / (file_name or CONFIG_FILE)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(
                target, json.dumps({"workspace": str(self.path), "name": self.name}, indent=2)
            )
        except OSError as exc:
            raise ConfigError(f"cannot write {target}: {exc.strerror}") from exc
        return target

    def _prepare(self) -> None:
        """Make the workspace folders private (0700, whatever the umask) when ferry creates
        them; a folder that exists keeps its mode (a warning says when it is writable by
        others)."""
        try:
            existed = self.path.is_dir()
            _private_dir(self.path, parents=True)
            for sub in ("runs", "blobs", "envs", "cache"):
                _private_dir(self.path / sub)
            with tempfile.NamedTemporaryFile(dir=self.path, prefix=".probe-"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"the workspace folder {self.path} is not writable ({exc.strerror}); choose another "
                "with FERRY_HOME or `ferry init --workspace DIR`"
            ) from exc
        if existed:
            _warn_if_shared(self.path)

    # parts ---------------------------------------------------------------------------------
    @property
    def store(self) -> RunStore:
        if self._store is None:
            url = os.environ.get("FERRY_DATABASE_URL") or f"sqlite:///{self.path / 'ferry.db'}"
            self._store = open_store(url)
        return self._store

    @cached_property
    def blobs(self) -> LocalBlobStore:
        from ferry.snapshot import LocalBlobStore

        return LocalBlobStore(self.path / "blobs")

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def envs_dir(self) -> Path:
        return self.path / "envs"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    # the reference's collections ------------------------------------------------------------
    @property
    def experiments(self) -> dict[str, Experiment]:
        from ferry.experiment import Experiment

        return {name: Experiment(self, name) for name in self.store.list_experiments()}

    @property
    def compute_targets(self) -> dict[str, Any]:
        from ferry.compute import ComputeTarget

        return ComputeTarget.list(self)

    @property
    def environments(self) -> dict[str, Any]:
        """The latest version of every registered environment, and the curated ones."""
        from ferry.environment import Environment

        return Environment.list(self)

    def get_run(self, run_id: str) -> Run:
        from ferry.run import Run

        return Run.get(self, run_id)

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r}, path={str(self.path)!r})"


MAX_CONFIG_BYTES = 1024 * 1024
_warned_shared: set[Path] = set()


def _read_config(config_file: Path) -> dict[str, Any]:
    """``.ferry/config.json`` as a checked dict; anything else is a ConfigError naming it."""
    fix = "run `ferry init` to rewrite it"
    try:
        with open(config_file, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {config_file}: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{config_file} is larger than 1 MB, so it is not ferry's; {fix}")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{config_file} is not UTF-8 text (is it a binary file?); {fix}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{config_file} is not valid JSON ({exc}); fix it or run `ferry init` again"
        ) from exc
    except RecursionError:
        raise ConfigError(
            f"{config_file} nests too deeply to be ferry's configuration; {fix}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("workspace"), str):
        raise ConfigError(f'{config_file} must hold {{"workspace": "<folder>"}}; {fix}')
    if not data["workspace"].strip():
        raise ConfigError(
            f'{config_file} has an empty "workspace"; set it to the workspace folder '
            f"(relative paths are relative to {config_file.parent}) or {fix}"
        )
    if "\0" in data["workspace"]:
        raise ConfigError(f'{config_file}: "workspace" holds a NUL character; {fix}')
    if data.get("name") is not None and not isinstance(data["name"], str):
        raise ConfigError(f'{config_file}: "name" must be text; {fix}')
    return data


def _private_dir(path: Path, parents: bool = False) -> None:
    """Create ``path`` with mode 0700 (the umask cannot widen or narrow it); an existing folder
    is left as it is."""
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
        return
    os.chmod(path, 0o700)


def _warn_if_shared(path: Path) -> None:
    """Once per folder: say that other users can write into an existing workspace."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o022 and path not in _warned_shared:
        _warned_shared.add(path)
        import logging

        logging.getLogger("ferry.workspace").warning(
            "the workspace folder %s can be written by other users (mode %o); "
            "`chmod 700 %s` makes it private",
            path,
            mode & 0o777,
            path,
        )


def _atomic_write(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
