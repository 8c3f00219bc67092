"""Datastores as fsspec file systems: a folder (the workspace's by default), S3, Azure Blob.

A datastore is plain data (:class:`DatastoreSpec`: name, kind, settings — never a secret);
:func:`open_store` turns it into a :class:`StoreFS`, a rooted file system with the few
operations the data layer needs (list a path or pattern, read, write a file whole, probe).
Remote kinds go through fsspec's own backends (``s3fs``, ``adlfs``), imported only when used
and named with the extra to install when missing. Their errors are translated where they
cross into ferry: unreachable → :class:`~.errors.DatastoreUnavailable` (worth a retry), refused
credentials → :class:`~.errors.DatastoreAccessDenied`; every secret is scrubbed from messages.

Example::

    store = open_store(DatastoreSpec("workspaceblobstore", "folder", {"path": "/ws/datastores/x"}),
                       workspace=Path("/ws"))
    for f in store.find("mnist/**"):
        print(f.rel, f.size)
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ferry.data.credentials import scrub, secrets_for
from ferry.data.errors import DataPathNotFound, DatastoreAccessDenied, DatastoreUnavailable
from ferry.errors import ConfigError

DEFAULT_NAME = "workspaceblobstore"
KINDS = ("folder", "s3", "azureblob")
#: the extra that brings each remote kind's library
_BACKENDS = {
    "s3": ("s3fs", "s3fs.S3FileSystem"),
    "azureblob": ("adlfs", "adlfs.AzureBlobFileSystem"),
}
#: temporary names of files being written into a folder store (never listed)
PARTIAL_PREFIX = ".ferry-upload-"
_WILDCARDS = frozenset("*?[")


@dataclass(frozen=True)
class DatastoreSpec:
    """A datastore as the workspace records it (``config`` holds no secret)."""

    name: str
    kind: str
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteFile:
    """A file on a datastore: its path relative to the store's root, size, and what changes
    when its content does (``size, mtime_ns, inode, ctime_ns`` for folders; the ETag remotely)."""

    rel: str
    size: int
    fingerprint: tuple[Any, ...]


def default_spec(workspace: Path) -> DatastoreSpec:
    """The built-in default datastore: a folder in the workspace, created when first used."""
    return DatastoreSpec(
        DEFAULT_NAME, "folder", {"path": str(Path(workspace) / "datastores" / DEFAULT_NAME)}
    )


def has_wildcard(pattern: str) -> bool:
    return any(c in _WILDCARDS for c in pattern)


def clean_rel(path: str, what: str = "path") -> str:
    """A relative posix path inside a store (``/`` and ``.`` parts dropped); ``..`` refused."""
    if not isinstance(path, str):
        raise ConfigError(f"the {what} on a datastore must be text, not {type(path).__name__}")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts or "\x00" in path:
        raise ConfigError(f"the {what} {path!r} must stay inside the datastore (no '..')")
    return "/".join(parts)


class StoreFS:
    """One datastore's file system, rooted at its folder, bucket or container."""

    def __init__(self, spec: DatastoreSpec, fs: Any, root: str, secrets: list[str]) -> None:
        self.spec = spec
        self.fs = fs
        self.root = root.rstrip("/") or ("/" if root.startswith("/") else "")
        self.secrets = secrets

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def is_folder(self) -> bool:
        return self.spec.kind == "folder"

    def full(self, rel: str) -> str:
        rel = clean_rel(rel)
        if not rel:
            return self.root
        return f"{self.root.rstrip('/')}/{rel}" if self.root else rel

    def rel_of(self, full: str) -> str:
        full = full.rstrip("/")
        prefix = self.root.rstrip("/") + "/"
        return full[len(prefix) :] if full.startswith(prefix) else clean_rel(full)

    # errors -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Translate the backend's errors met while ``doing``; secrets never reach a message."""
        try:
            yield
        except (DataPathNotFound, DatastoreUnavailable, DatastoreAccessDenied, ConfigError):
            raise
        except Exception as exc:
            raise self.translate(exc, doing) from None

    def translate(self, exc: BaseException, doing: str) -> Exception:
        names = {cls.__name__ for cls in type(exc).__mro__}
        raw = scrub(f"{type(exc).__name__}: {exc}".strip(), self.secrets)
        text = raw.splitlines()[0][:300] if raw else type(exc).__name__
        code = re.search(r"(?:ErrorCode:|<Code>)(\w+)", raw)
        if code and code.group(1) not in text:
            text += f" ({code.group(1)})"
        where = f"datastore {self.name!r} ({self.describe()})"
        denied = (
            "PermissionError" in names
            or "ClientAuthenticationError" in names
            or "NoCredentialsError" in names
            or any(
                code in text
                for code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                             "AuthenticationFailed", "AuthorizationFailure", "403")
            )
        )  # fmt: skip
        if denied:
            return DatastoreAccessDenied(
                f"{where} refused the credentials while {doing}: {text}. Check its secrets "
                "(FERRY_DATASTORE_<NAME>_… variables, or register it again with them)"
            )
        unreachable = bool(
            names
            & {"ConnectionError", "TimeoutError", "EndpointConnectionError", "ConnectTimeoutError",
               "ClientConnectorError", "ServiceRequestError", "ServerTimeoutError",
               "ReadTimeoutError", "ClientOSError", "ServiceResponseError"}
        )  # fmt: skip
        if unreachable or "Could not connect" in text or "Connection refused" in text:
            return DatastoreUnavailable(
                f"{where} cannot be reached while {doing}: {text}; check that the service is up "
                "and the endpoint is right, then retry"
            )
        if (
            isinstance(exc, FileNotFoundError)
            or "NoSuchBucket" in text
            or "ContainerNotFound" in text
        ):
            return DataPathNotFound(f"{where}: not found while {doing}: {text}")
        if isinstance(exc, OSError):
            return DatastoreUnavailable(f"{where}: {doing} failed: {text}")
        return DatastoreUnavailable(f"{where}: {doing} failed: {text}")

    def describe(self) -> str:
        config = self.spec.config
        if self.kind == "folder":
            return f"folder {config.get('path')}"
        if self.kind == "s3":
            where = config.get("endpoint") or "AWS"
            return f"S3 bucket {config.get('bucket_name')} at {where}"
        where = config.get("endpoint") or f"{config.get('account_name')}.blob.core.windows.net"
        return f"Azure Blob container {config.get('container_name')} at {where}"

    # reading ------------------------------------------------------------------------------
    def probe(self) -> None:
        """Reach the store once (its root must exist): unreachable or refused says so now."""
        with self.errors("checking that it can be reached"):
            if self.is_folder:
                if not os.path.isdir(self.root):
                    raise DataPathNotFound(
                        f"the folder {self.root} of datastore {self.name!r} does not exist; "
                        "create it, or register the datastore with create_if_not_exists=True"
                    )
                return
            self.fs.invalidate_cache()
            try:
                self.fs.ls(self.root, detail=False)  # exists() would hide a refusal
            except FileNotFoundError:
                raise DataPathNotFound(
                    f"datastore {self.name!r}: {self.describe()} does not exist; create it, or "
                    "register the datastore with create_if_not_exists=True"
                ) from None

    def create_root(self) -> None:
        with self.errors("creating its bucket or container"):
            if self.is_folder:
                os.makedirs(self.root, mode=0o700, exist_ok=True)
            elif not self.fs.exists(self.root):
                self.fs.mkdir(self.root)

    def find(self, pattern: str) -> list[RemoteFile]:
        """The files a path matches: a file, every file below a folder (``a/`` or ``a``), or a
        glob (``*``, ``?``, ``[…]``; ``**`` crosses folders). Empty when nothing matches."""
        clean = clean_rel(pattern, "path pattern")
        if self.is_folder:
            return self._list_folder(clean)
        with self.errors(f"listing {pattern!r}"):
            self.fs.invalidate_cache()
            full = self.full(clean)
            if has_wildcard(clean):
                found = self.fs.glob(full, detail=True)
            elif self.fs.isfile(full):
                found = {full: self.fs.info(full)}
            else:
                found = self.fs.find(full, detail=True)
        files = [
            RemoteFile(self.rel_of(path), int(info.get("size") or 0), _etag(info))
            for path, info in found.items()
            if info.get("type") == "file" and not path.endswith("/")
        ]
        return sorted(files, key=lambda f: f.rel)

    def _list_folder(self, clean: str) -> list[RemoteFile]:
        root = self.root
        if not os.path.isdir(root):
            raise DataPathNotFound(f"the folder {root} of datastore {self.name!r} is gone")
        full = os.path.join(root, clean) if clean else root
        if has_wildcard(clean):
            import glob as globbing

            paths = [p for p in globbing.glob(full, recursive=True) if os.path.isfile(p)]
            files = [self._folder_file(p) for p in paths]
        elif os.path.isfile(full):
            files = [self._folder_file(full)]
        elif os.path.isdir(full):
            files = []
            for folder, dirs, names in os.walk(full):
                dirs[:] = sorted(d for d in dirs if not d.startswith(PARTIAL_PREFIX))
                files += [self._folder_file(os.path.join(folder, n)) for n in names]
        else:
            files = []
        return sorted(
            (
                f
                for f in files
                if f is not None and not f.rel.rsplit("/", 1)[-1].startswith(PARTIAL_PREFIX)
            ),
            key=lambda f: f.rel,
        )

    def _folder_file(self, path: str) -> RemoteFile | None:
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None  # links are never followed out of a folder store
        rel = os.path.relpath(path, self.root).replace(os.sep, "/")
        return RemoteFile(rel, st.st_size, (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))

    def open(self, rel: str) -> BinaryIO:
        with self.errors(f"reading {rel!r}"):
            if self.is_folder:
                return open(self.full(rel), "rb")
            return self.fs.open(self.full(rel), "rb", block_size=8 << 20)  # type: ignore[no-any-return]

    def info(self, rel: str) -> RemoteFile | None:
        """The file now at ``rel``, or None when there is none."""
        if self.is_folder:
            return self._folder_file(self.full(rel))
        with self.errors(f"looking at {rel!r}"):
            try:
                found = self.fs.info(self.full(rel))
            except FileNotFoundError:
                return None
        if found.get("type") != "file":
            return None
        return RemoteFile(clean_rel(rel), int(found.get("size") or 0), _etag(found))

    # writing ------------------------------------------------------------------------------
    def put_file(self, local: Path, rel: str) -> None:
        """Write the local file at ``rel``, whole: a reader never sees half of it (a folder
        store writes a temporary name and renames it; remote objects appear on completion)."""
        if self.is_folder:
            _copy_atomic(Path(local), Path(self.full(rel)))
            return
        with self.errors(f"uploading {rel!r}"):
            self.fs.put_file(str(local), self.full(rel))

    def put_many(
        self,
        pairs: list[tuple[Path, str]],
        on_done: Callable[[int], None],
        stats: Mapping[Path, os.stat_result] | None = None,
    ) -> None:
        """Upload many files (``on_done(bytes)`` after each; ``stats`` of the local files when
        the caller has them): folder stores copy with a few threads, remote ones through the
        backend's own concurrent batch upload."""
        if not pairs:
            return
        if self.is_folder:
            from concurrent.futures import ThreadPoolExecutor

            made: set[str] = set()
            for folder in sorted({posixpath.dirname(self.full(rel)) for _, rel in pairs}):
                os.makedirs(folder, exist_ok=True)
                made.add(folder)

            def copy(pair: tuple[Path, str]) -> None:
                local, rel = pair
                st = stats[local] if stats is not None else os.stat(local)
                _copy_atomic(local, Path(self.full(rel)), st, made)
                on_done(st.st_size)

            with ThreadPoolExecutor(4) as pool:
                for _ in pool.map(copy, pairs):
                    pass
            return
        # one call, so the backend keeps its whole concurrency (batches would wait for their
        # slowest file); the bar moves as the backend reports each file's bytes
        total = sum((stats[p] if stats is not None else os.stat(p)).st_size for p, _ in pairs)
        progress = _Progress(on_done)
        with self.errors("uploading files"):
            self.fs.put(
                [str(p) for p, _ in pairs],
                [self.full(r) for _, r in pairs],
                callback=progress.callback,
            )
        if total > progress.reported:  # a backend that reports no bytes: the bar ends full
            on_done(total - progress.reported)

    def get_file(self, rel: str, local: Path) -> None:
        """Copy the file at ``rel`` to the new local path ``local`` (written whole)."""
        tmp = local.with_name(f"{PARTIAL_PREFIX}{uuid.uuid4().hex[:8]}-{local.name}")
        try:
            if self.is_folder:
                _copy_atomic(Path(self.full(rel)), local)
                return
            with self.errors(f"downloading {rel!r}"):
                self.fs.get_file(self.full(rel), str(tmp))
            os.replace(tmp, local)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _etag(info: Mapping[str, Any]) -> tuple[Any, ...]:
    tag = (
        info.get("ETag")
        or info.get("etag")
        or info.get("LastModified")
        or info.get("last_modified")
    )
    return (int(info.get("size") or 0), str(tag or ""))


def _copy_atomic(
    src: Path, dest: Path, st: os.stat_result | None = None, made: set[str] | None = None
) -> None:
    """Copy ``src`` to ``dest`` through a temporary name, keeping its modification time (so an
    unchanged file is recognised by size and time next time)."""
    import shutil

    parent = os.path.dirname(dest)
    if made is None or parent not in made:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/{PARTIAL_PREFIX}{uuid.uuid4().hex[:8]}-{os.path.basename(dest)}"
    try:
        shutil.copyfile(src, tmp)
        st = st if st is not None else os.stat(src)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def open_store(spec: DatastoreSpec, workspace: Path) -> StoreFS:
    """The file system of ``spec``, with its secrets from the environment or the workspace's
    credentials file (:mod:`.credentials`)."""
    if spec.kind == "folder":
        from fsspec.implementations.local import LocalFileSystem

        return StoreFS(spec, LocalFileSystem(), os.path.abspath(str(spec.config["path"])), [])
    if spec.kind not in _BACKENDS:
        raise ConfigError(
            f"datastore {spec.name!r} has an unknown kind {spec.kind!r}; known: {KINDS}"
        )
    package, _ = _BACKENDS[spec.kind]
    try:
        __import__(package)
    except ImportError:
        raise ConfigError(
            f"datastore {spec.name!r} is {spec.kind}, which needs the {package} package: "
            "pip install 'ferry[data]'"
        ) from None
    secrets = secrets_for(workspace, spec.name)
    if spec.kind == "s3":
        fs, root = _s3(spec, secrets)
    else:
        fs, root = _azure(spec, secrets)
    return StoreFS(spec, fs, root, list(secrets.values()))


def _s3(spec: DatastoreSpec, secrets: Mapping[str, str]) -> tuple[Any, str]:
    import s3fs

    config = spec.config
    client: dict[str, Any] = {}
    if config.get("region"):
        client["region_name"] = config["region"]
    fs = s3fs.S3FileSystem(
        key=secrets.get("access_key_id") or None,
        secret=secrets.get("secret_access_key") or None,
        token=secrets.get("session_token") or None,
        endpoint_url=config.get("endpoint") or None,
        client_kwargs=client,
        config_kwargs={"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}},
        skip_instance_cache=True,
    )
    root = str(config["bucket_name"])
    if config.get("prefix"):
        root += "/" + clean_rel(str(config["prefix"]))
    return fs, root


def _azure(spec: DatastoreSpec, secrets: Mapping[str, str]) -> tuple[Any, str]:
    import adlfs

    config = spec.config
    account = str(config["account_name"])
    endpoint = str(config.get("endpoint") or "core.windows.net")
    protocol = str(config.get("protocol") or "https")
    options: dict[str, Any] = {"skip_instance_cache": True, "connection_timeout": 5}
    if secrets.get("connection_string"):
        options["connection_string"] = secrets["connection_string"]
    elif "://" in endpoint:  # a full blob endpoint (the storage emulator's is path-style)
        parts = [f"DefaultEndpointsProtocol={protocol}", f"AccountName={account}"]
        if secrets.get("account_key"):
            parts.append(f"AccountKey={secrets['account_key']}")
        if secrets.get("sas_token"):
            parts.append(f"SharedAccessSignature={secrets['sas_token'].lstrip('?')}")
        parts.append(f"BlobEndpoint={endpoint.rstrip('/')}")
        options["connection_string"] = ";".join(parts) + ";"
    else:
        options.update(
            account_name=account,
            account_key=secrets.get("account_key") or None,
            sas_token=secrets.get("sas_token") or None,
            account_host=f"{account}.blob.{endpoint}",
        )
        if not secrets.get("account_key") and not secrets.get("sas_token"):
            options["anon"] = config.get("credential_type") == "None"
    fs = adlfs.AzureBlobFileSystem(**options)
    _few_retries(fs)
    return fs, str(config["container_name"])


def _few_retries(fs: Any) -> None:
    """The Azure SDK retries a refused connection ten times, backing off from 15 s (minutes
    in all); adlfs cannot pass retry settings, so they are set on its client's policy: one
    retry, after a third of a second."""
    policy = getattr(
        getattr(getattr(fs, "service_client", None), "_config", None), "retry_policy", None
    )
    if policy is None:
        return
    for attribute, value in (("total_retries", 1), ("connect_retries", 1), ("read_retries", 1),
                             ("initial_backoff", 0.3), ("increment_base", 2)):  # fmt: skip
        if hasattr(policy, attribute):
            setattr(policy, attribute, value)


class _Progress:
    """An fsspec callback that hands each file's uploaded bytes to ``on_done`` (the backend
    calls it from its event loop's thread; a branch per file reports that file's bytes)."""

    def __init__(self, on_done: Callable[[int], None]) -> None:
        from fsspec.callbacks import Callback

        outer = self
        self.reported = 0

        class _FileBytes(Callback):  # type: ignore[misc]
            def relative_update(self, inc: int = 1) -> None:
                outer.reported += inc
                on_done(inc)

        class _Files(Callback):  # type: ignore[misc]
            def branched(self, path_1: Any, path_2: Any, **kwargs: Any) -> Callback:
                return _FileBytes()

        self.callback = _Files()
