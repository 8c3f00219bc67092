"""Workspace: where runs, metrics, snapshots and environments are kept.

The default is an embedded workspace in a folder (SQLite in WAL mode + a blob store), found by
:meth:`Workspace.from_config`: searched upward from the current folder for ferry's
``.ferry/config.json``, or the reference's ``config.json`` (in ``.azureml/``, ``aml_config/`` or
the folder itself), else ``$FERRY_HOME``, else ``~/.ferry`` (created on first use).

The reference's workspaces are named (``Workspace(subscription_id, resource_group, name)``, or
``workspace_name`` in its ``config.json``): ferry keeps a named workspace in
``$FERRY_HOME/workspaces/<name>/``, created on first use (its location is printed then), and
answers the reference's Azure attributes with local values (``subscription_id``,
``resource_group`` as given, else ``"local"``; ``location`` ``"local"``).

Example::

    ws = Workspace.create("/tmp/my-ws")
    ws.write_config(".")                 # ./.ferry/config.json now points at it
    ws = Workspace.from_config()
    ws = Workspace("sub-id", "rg", "my-workspace")     # the reference's form: a named workspace
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tempfile
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.agent.files import write_atomic
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


LOCAL = "local"
#: where a reference config.json may be, in the order the reference searches each folder
REFERENCE_FOLDERS = (".azureml", "aml_config", "")
REFERENCE_FILES = ("config.json", "project.json")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")


def named_workspace_path(name: str) -> Path:
    """Where the named workspace ``name`` is kept: ``$FERRY_HOME/workspaces/<name>``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"workspace name {name!r} is not valid: use 2-32 characters, starting with a letter "
            "or digit, then letters, digits, '-' or '_' (the reference's rule)"
        )
    return default_home() / "workspaces" / name


class Workspace:
    """A ferry workspace on this machine (an embedded SQLite store and a blob store).

    ``Workspace(path)`` opens the workspace in a folder; the reference's
    ``Workspace(subscription_id, resource_group, workspace_name)`` opens (creating on first
    use) the named workspace kept under ``$FERRY_HOME/workspaces/``.
    """

    def __init__(
        self,
        subscription_id: str | os.PathLike[str] | None = None,
        resource_group: str | None = None,
        workspace_name: str | None = None,
        auth: Any = None,
        _location: str | None = None,
        _disable_service_check: bool = False,
        _workspace_id: str | None = None,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        _cloud: str = "AzureCloud",
        *,
        path: str | os.PathLike[str] | None = None,
        name: str | None = None,
    ) -> None:
        if workspace_name is not None or resource_group is not None:
            if workspace_name is None:
                raise ConfigError(
                    "Workspace(subscription_id, resource_group, workspace_name) needs the "
                    "workspace's name; or open a folder with Workspace(path=...)"
                )
            self.subscription_id = str(subscription_id or LOCAL)
            self.resource_group = str(resource_group or LOCAL)
            path, name = named_workspace_path(workspace_name), workspace_name
            self._named = True
        else:
            if path is None:
                path = subscription_id
            if path is None:
                raise ConfigError(
                    "Workspace() needs a folder (Workspace(path='…')), the reference's "
                    "Workspace(subscription_id, resource_group, workspace_name), or use "
                    "Workspace.from_config()"
                )
            self.subscription_id = self.resource_group = LOCAL
            self._named = False
        self.location = _location or LOCAL
        self.tags = dict(tags or {})
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
        self._token: str | None = None
        #: the URL of the ferry server holding this workspace (None: a folder on this machine)
        self.server: str | None = None
        if self._named:
            self._open_named()

    def _open_named(self, source: str = "") -> None:
        """Make the named workspace's folders; say where it is the first time."""
        created = not (self.path / "ferry.db").exists() and not (self.path / "runs").exists()
        self._prepare()
        if created:
            where = f" (from {source})" if source else ""
            print(f"ferry: workspace {self.name!r}{where} is kept in {self.path}", file=sys.stderr)

    # creation and discovery --------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str] | None = None,
        name: str | None = None,
        exist_ok: bool = True,
        *,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        **kwargs: Any,
    ) -> Workspace:
        """Create (or open, with ``exist_ok``) a workspace.

        ``Workspace.create("/a/folder")`` is ferry's form (a folder); the reference's
        ``Workspace.create(name="ws", subscription_id=…, resource_group=…, location=…)`` (and a
        bare name without a path separator) makes the named workspace under ``$FERRY_HOME``.
        The reference's other arguments (``create_resource_group``, ``sku``, ``storage_account``
        …) mean nothing here and are accepted.
        """
        reference = subscription_id is not None or resource_group is not None or path is None
        if path is not None and not reference:
            text = os.fspath(path)
            reference = not any(sep in text for sep in ("/", os.sep)) and not text.startswith(
                (".", "~")
            )
        if reference:
            ws_name = name if path is None else os.fspath(path)
            if ws_name is None:
                raise ConfigError("Workspace.create needs a folder or the workspace's name")
            ws = cls(subscription_id or LOCAL, resource_group or LOCAL, ws_name, _location=location)
        else:
            assert path is not None
            ws = cls(path=path, name=name)
        if (ws.path / "ferry.db").exists() and not exist_ok:
            raise ConfigError(f"a workspace already exists at {ws.path}")
        ws._prepare()
        return ws

    @classmethod
    def get(
        cls,
        name: str,
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        cloud: str = "AzureCloud",
        id: str | None = None,
    ) -> Workspace:
        """The named workspace (the reference's ``Workspace.get``); created on first use."""
        return cls(subscription_id or LOCAL, resource_group or LOCAL, name, _location=location)

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str] | None = None,
        auth: Any = None,
        _logger: Any = None,
        _file_name: str | None = None,
    ) -> Workspace:
        """Find the workspace, upward from ``path`` (default: the current folder): in each
        folder ferry's ``.ferry/config.json``, then the reference's ``config.json`` (or
        ``_file_name``) in ``.azureml/``, ``aml_config/`` and the folder itself; else the
        default workspace (``$FERRY_HOME``, else ``~/.ferry``)."""
        start = Path(path or ".").expanduser().resolve()
        if start.is_file():
            return cls._from_any_file(start)
        names = (_file_name,) if _file_name else REFERENCE_FILES
        for folder in (start, *start.parents):
            candidate = folder / CONFIG_DIR / CONFIG_FILE
            if candidate.is_file():
                return cls._from_file(candidate)
            for sub in REFERENCE_FOLDERS:
                for file_name in names:
                    reference = folder / sub / file_name
                    if reference.is_file() and (sub or _is_reference_config(reference)):
                        return cls._from_reference(reference)
        if path is not None and os.environ.get("FERRY_HOME") is None and not start.exists():
            raise ConfigError(f"no folder {str(start)!r} to search for {CONFIG_DIR}/{CONFIG_FILE}")
        return cls.create(default_home())

    @classmethod
    def _from_any_file(cls, config_file: Path) -> Workspace:
        if config_file.parent.name == CONFIG_DIR:
            return cls._from_file(config_file)
        if _is_reference_config(config_file):
            return cls._from_reference(config_file)
        return cls._from_file(config_file)

    @classmethod
    def _from_reference(cls, config_file: Path) -> Workspace:
        """The named workspace a reference ``config.json`` names (created on first use)."""
        data = _read_json(config_file, "copy the config.json from the reference's portal again")
        name = data.get("workspace_name") if isinstance(data, dict) else None
        if not isinstance(name, str):
            raise ConfigError(
                f'{config_file} must hold {{"subscription_id": …, "resource_group": …, '
                '"workspace_name": …}} (the reference\'s workspace configuration)'
            )
        return cls(
            str(data.get("subscription_id") or LOCAL),
            str(data.get("resource_group") or LOCAL),
            name,
        )

    @classmethod
    def _from_file(cls, config_file: Path) -> Workspace:
        """The workspace a ``.ferry/config.json`` names. One that ferry wrote (``"made":
        true``: the folder was a workspace then) and whose folder holds none now is refused —
        deleted, or on a disk that is not mounted, or another machine's path — rather than
        silently made anew and empty; a hand-written one names a workspace made on first use."""
        data = _read_config(config_file)
        if "server" in data:
            return cls.connect(data["server"])
        folder = Path(data["workspace"]).expanduser()
        if not folder.is_absolute():
            folder = config_file.parent / folder
        if data.get("made") is True and not holds_workspace(folder):
            raise ConfigError(
                f"{config_file} names the workspace {folder}, which holds no workspace any "
                "more (deleted, or on a disk that is not mounted?); mount it, point that file "
                f"at the right folder, or run `ferry init {shlex.quote(str(config_file.parent.parent))}` "
                "to start a new workspace there"
            )
        return cls.create(folder, name=data.get("name"))

    @classmethod
    def connect(cls, url: str, token: str | None = None) -> Workspace:
        """The workspace a ferry server holds (``ferry login URL`` stores its token; else
        ``$FERRY_TOKEN``). Runs, metrics and snapshots live on the server; this machine keeps
        a cache in ``$FERRY_HOME/servers/<host>/`` (blobs read, logs followed)."""
        from ferry.server.client import check_server_url, server_cache_dir

        url = check_server_url(url)
        ws = cls(path=server_cache_dir(url), name=url)
        ws.server = url
        ws._token = token
        ws._prepare()
        return ws

    @classmethod
    def serving(cls, path: Path, store: RunStore, blobs: LocalBlobStore) -> Workspace:
        """The server's own workspace: a folder for run folders, with a given store and blobs."""
        ws = cls.create(path)
        ws._store = store
        ws.__dict__["blobs"] = blobs
        return ws

    def write_config(
        self, path: str | os.PathLike[str] | None = None, file_name: str | None = None
    ) -> Path:
        """Write ``<path>/.ferry/config.json`` pointing at this workspace (a folder, or the
        server holding it)."""
        folder = Path(path or ".").expanduser().resolve() / CONFIG_DIR
        target = folder / (file_name or CONFIG_FILE)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            content = (
                {"server": self.server}
                if self.server
                else {"workspace": str(self.path), "name": self.name, "made": True}
            )
            write_atomic(str(target), json.dumps(content, indent=2).encode())
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
            if self.server is not None:
                from ferry.server.client import http_store

                self._store = http_store(self.server, self._token, self.runs_dir)
            else:
                url = os.environ.get("FERRY_DATABASE_URL") or f"sqlite:///{self.path / 'ferry.db'}"
                self._store = open_store(url)
        return self._store

    @cached_property
    def blobs(self) -> LocalBlobStore:
        """The blob store: ``blobs/`` in the folder (or ``$FERRY_BLOB_STORE``: a folder, or a
        bucket URL whose blobs are cached in ``blobs/``); for a server's
        workspace, the server's store with this machine's copies as a cache."""
        from ferry.snapshot import LocalBlobStore

        if self.server is not None:
            from ferry.server.client import http_blobs

            return http_blobs(self.server, self._token, self.path / "blobs")
        location = os.environ.get("FERRY_BLOB_STORE")
        if location:  # a folder, or a bucket (s3://…) cached in blobs/
            from ferry.snapshot.blobstore.remote import open_blob_store

            return open_blob_store(location, self.path / "blobs")
        return LocalBlobStore(self.path / "blobs")

    def start_run(self, run_id: str) -> bool:
        """Start a recorded run: a supervisor on this machine, or, for a server's workspace,
        queued for the server's supervisors (the submitting machine may then go away).
        Returns False when the server had queued it already."""
        if self.server is not None:
            from ferry.server.client import start_remote_run

            return start_remote_run(self.store, run_id)
        from ferry.supervisor import launch_detached

        launch_detached(self, run_id)
        return True

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

    @property
    def datastores(self) -> dict[str, Any]:
        """Every datastore by name: ``workspaceblobstore`` (a folder in the workspace) and the
        registered ones."""
        from ferry.data.datastore import Datastore

        return Datastore.list(self)

    def get_default_datastore(self) -> Any:
        """The default datastore: ``workspaceblobstore`` unless another was made the default."""
        from ferry.data.datastore import Datastore

        return Datastore.get_default(self)

    def set_default_datastore(self, name: str) -> None:
        """Make the datastore ``name`` the default (DatastoreNotFound if there is none)."""
        from ferry.data.catalog import assets, datastore_spec

        assets(self).set_default_datastore(datastore_spec(self, name).name)

    @property
    def datasets(self) -> dict[str, Any]:
        """The latest version of every registered dataset, by name."""
        from ferry.data.dataset import Dataset

        return Dataset.get_all(self)

    @property
    def models(self) -> dict[str, Any]:
        """The latest version of every registered model, by name."""
        from ferry.model import Model

        return {model.name: model for model in Model.list(self, latest=True)}

    # the reference's descriptive attributes -----------------------------------------------
    @property
    def _workspace_id(self) -> str:
        import uuid

        return str(uuid.uuid5(uuid.NAMESPACE_URL, self.path.as_uri()))

    def get_details(self) -> dict[str, Any]:
        """The reference's workspace details, with local values."""
        return {
            "id": f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/ferry/workspaces/{self.name}",
            "name": self.name,
            "location": self.location,
            "type": "Ferry/workspaces",
            "tags": dict(self.tags),
            "sku": "local",
            "workspaceid": self._workspace_id,
            "description": f"a ferry workspace at {self.path}",
            "friendlyName": self.name,
            "discoveryUrl": self.path.as_uri(),
            "hbiWorkspace": False,
            "path": str(self.path),
        }

    @property
    def discovery_url(self) -> str:
        return self.path.as_uri()

    def get_mlflow_tracking_uri(self) -> str:
        """Where MLflow clients log into this workspace's experiments and runs.

        For a server's workspace: the server's URL (its MLflow API); the workspace's token is
        put in ``MLFLOW_TRACKING_TOKEN`` unless one is set, so
        ``mlflow.set_tracking_uri(ws.get_mlflow_tracking_uri())`` is all a script needs. For a
        folder: ``ferry:///<folder>``, served in-process by ferry's MLflow plugin.
        """
        if self.server is not None:
            from ferry.server.client import token_for

            os.environ.setdefault("MLFLOW_TRACKING_TOKEN", token_for(self.server, self._token))
            return self.server
        return self.path.as_uri().replace("file://", "ferry://", 1)

    def get_run(self, run_id: str) -> Run:
        from ferry.run import Run

        return Run.get(self, run_id)

    def __deepcopy__(self, memo: dict[int, Any]) -> Workspace:
        """A workspace is a handle on shared state (its store, its folder): copies of what
        holds one (a run configuration with a dataset in it) share it."""
        return self

    def __repr__(self) -> str:
        if self.server is not None:
            return f"Workspace(server={self.server!r})"
        return f"Workspace(name={self.name!r}, path={str(self.path)!r})"


MAX_CONFIG_BYTES = 1024 * 1024
_warned_shared: set[Path] = set()


def _is_reference_config(path: Path) -> bool:
    """True for a reference workspace config.json (a JSON object with ``workspace_name``)."""
    try:
        data = json.loads(path.read_bytes()[:MAX_CONFIG_BYTES].decode("utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and "workspace_name" in data


def holds_workspace(path: Path) -> bool:
    """Whether ``path`` is a workspace folder: it has ``ferry.db`` or ``runs/``
    (``$FERRY_DATABASE_URL`` keeps the database elsewhere: the folder must exist)."""
    return path.is_dir() and bool(
        os.environ.get("FERRY_DATABASE_URL")
        or (path / "ferry.db").is_file()
        or (path / "runs").is_dir()
    )


def _read_config(config_file: Path) -> dict[str, Any]:
    """``.ferry/config.json`` as a checked dict; anything else is a ConfigError naming it."""
    fix = "run `ferry init` to rewrite it"
    data = _read_json(config_file, fix)
    if isinstance(data, dict) and "server" in data:
        if not isinstance(data["server"], str) or not data["server"].strip():
            raise ConfigError(
                f'{config_file}: "server" must be the server\'s URL; run `ferry login URL` to '
                "rewrite it"
            )
        return data
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


def _read_json(config_file: Path, fix: str) -> Any:
    """A small JSON file, or a ConfigError naming the file and ``fix``."""
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
            f"{config_file} nests too deeply to be a workspace configuration; {fix}"
        ) from None
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
