"""ferry's agent on a Ray node: one actor per node of a run (standard library only).

Ray ships this class by value (``ray.cloudpickle.register_pickle_by_value``), so nodes need Ray
but not ferry. The code it uses from ferry — the content-addressed store and environment builds
of the remote agent, and :class:`~ferry.targets.distributed.RankGroup` — is handed to it as a
``kit`` and shipped by value too.

Layout under the node folder (``/tmp/ferry-ray`` by default), shared by every run on the node::

    blobs/ab/cdef…                       content-addressed cache (only missing blobs are sent)
    runtime/runtime-<hash>/              ferry's in-job runtime, put on the job's PYTHONPATH
    envs/<spec-hash>/                    environments built here, reused by later runs
    runs/<run-id>/node-<i>/              wd/, user_logs/, spool/ of this node's ranks

The supervisor pulls: every :meth:`NodeAgent.step` returns the new bytes of the logs and the
spool, new artifact files and changed ./logs files. Every call renews a lease; when no call
comes for ``lease_seconds`` (the supervisor is gone) the ranks are stopped. When the actor dies
(its driver, the supervisor, died; or it was killed), a guardian process kills the ranks' group.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

PER_FILE_MAX = 4 << 20  # bytes of one log or spool file per step
FILES_BUDGET = 16 << 20  # bytes of whole files (artifacts, ./logs) per step
LOGS_FILE_MAX = 8 << 20  # ./logs files larger than this are not mirrored live
KEEP_ABANDONED_SECONDS = 86400.0  # run folders nobody has touched for a day are removed
_ABORT_AFTER_LEASE = 5.0


def _touch(method: Callable[..., Any]) -> Callable[..., Any]:
    """Every call renews the lease; a call in progress counts as contact."""

    @functools.wraps(method)
    def wrapper(self: NodeAgent, *args: Any, **kwargs: Any) -> Any:
        self._busy += 1
        self._contact = time.monotonic()
        try:
            return method(self, *args, **kwargs)
        finally:
            self._busy -= 1
            self._contact = time.monotonic()

    return wrapper


class NodeAgent:
    """Materialises a run's snapshot on this node, starts its ranks and streams them back."""

    def __init__(
        self, node_dir: str, run_id: str, node_index: int, lease_seconds: float, kit: dict[str, Any]
    ) -> None:
        self.kit = kit
        self.root = os.path.abspath(os.path.expanduser(node_dir))
        self.store = kit["Store"](self.root)
        self.run_root = os.path.join(self.root, "runs", run_id, f"node-{node_index}")
        self.wd = os.path.join(self.run_root, "wd")
        self.group: Any = None
        self.guardian: subprocess.Popen[bytes] | None = None
        self.offsets: dict[str, int] = {}
        self.seen: dict[str, tuple[int, int]] = {}
        self.lease_seconds = lease_seconds
        self._contact = time.monotonic()
        self._busy = 0
        self._env: dict[str, Any] = {"lines": [], "done": False, "result": None, "error": None}
        os.makedirs(self.run_root, exist_ok=True)
        self._alive = os.path.join(self.run_root, ".alive")
        open(self._alive, "a").close()  # touched by the lease thread while this agent lives
        _prune_abandoned(os.path.join(self.root, "runs"))
        threading.Thread(target=self._watch_lease, daemon=True).start()

    # facts and transfers ------------------------------------------------------------------
    @_touch
    def hello(self) -> dict[str, Any]:
        import platform

        import ray

        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
                boot = fh.read().strip()
        except OSError:
            boot = platform.node()
        return {
            "ip": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
            "hostname": platform.node(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "python": list(sys.version_info[:3]),
            "platform": f"{sys.platform}-{platform.machine().lower()}",
            "executable": sys.executable,
            "root": self.root,
            "run_root": self.run_root,
            "cache_key": f"{boot}:{self.root}",
        }

    @_touch
    def missing(self, digests: list[str]) -> list[str]:
        return list(self.store.missing(digests))

    @_touch
    def put_blobs(self, items: list[tuple[str, bytes]], algo: str) -> None:
        for digest, data in items:
            self._write_blob(digest, data, 0, len(data), algo)

    @_touch
    def put_blob_part(self, digest: str, data: bytes, offset: int, size: int, algo: str) -> None:
        self._write_blob(digest, data, offset, size, algo)

    def _write_blob(self, digest: str, data: bytes, offset: int, size: int, algo: str) -> None:
        import hashlib

        final = self.store.blob(digest)
        part = os.path.join(self.root, "tmp", f"{digest}.{os.getpid()}.part")
        os.makedirs(os.path.dirname(part), exist_ok=True)
        with open(part, "r+b" if offset else "wb") as fh:
            fh.seek(offset)
            fh.write(data)
        if offset + len(data) < size:
            return
        hasher = hashlib.sha256() if algo == "sha256" else hashlib.blake2b(digest_size=32)
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                hasher.update(block)
        if hasher.hexdigest() != digest:
            os.unlink(part)
            raise ValueError(f"blob {digest} arrived corrupt; it will be sent again")
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.chmod(part, 0o444)
        os.replace(part, final)

    @_touch
    def ensure_runtime(self, name: str, files: dict[str, bytes] | None) -> bool:
        """True when ``runtime/<name>`` is there (after writing ``files`` when given)."""
        final = os.path.join(self.root, "runtime", name)
        if os.path.exists(os.path.join(final, ".ferry-runtime.json")):
            return True
        if files is None:
            return False
        tmp = os.path.join(self.root, "tmp", f"{name}.{os.getpid()}.{time.monotonic_ns()}")
        for rel, data in files.items():
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:  # another run published it first
            shutil.rmtree(tmp, ignore_errors=True)
        return True

    @_touch
    def materialize(self, snapshot_id: str) -> dict[str, Any]:
        manifest = self.store.manifest(snapshot_id)
        if manifest is None:
            return {"missing": [snapshot_id]}
        result: dict[str, Any] = self.store.materialize(manifest, self.wd)
        for folder in ("outputs", "logs"):
            os.makedirs(os.path.join(self.wd, folder), exist_ok=True)
        return result

    # the environment -------------------------------------------------------------------------
    @_touch
    def start_env(self, request: dict[str, Any]) -> None:
        """Resolve the job's interpreter: a given one, or a build (in the background)."""
        if "python" in request:
            python = str(request["python"])
            if not (os.path.isfile(python) and os.access(python, os.X_OK)):
                self._env.update(done=True, error=f"the interpreter {python!r} is not on this node")
            else:
                self._env.update(done=True, result={"python": python, "lock": None})
            return

        def build() -> None:
            try:
                facts = self.kit["build_env"](self.root, request["build"], self._env_say)
                self._env.update(result={"python": facts["python"], "lock": facts.get("lock")})
            except BaseException as exc:  # reported to the supervisor
                self._env.update(error=str(exc) or type(exc).__name__)
            finally:
                self._env["done"] = True

        threading.Thread(target=build, daemon=True).start()

    def _env_say(self, line: str) -> None:
        self._env["lines"].append(line)

    @_touch
    def env_status(self) -> dict[str, Any]:
        lines, self._env["lines"] = self._env["lines"], []
        return {**self._env, "lines": lines}

    # the ranks ---------------------------------------------------------------------------------
    @_touch
    def free_port(self) -> int:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("", 0))
            return int(sock.getsockname()[1])

    @_touch
    def start(self, launches: list[dict[str, Any]], grace: float) -> int:
        """Start this node's ranks in one process group watched by a guardian."""
        base = dict(os.environ)
        made = []
        for item in launches:
            env = dict(base)
            env.update({str(k): str(v) for k, v in item["set"].items()})
            for key, value in item["prepend"].items():
                env[key] = value + (os.pathsep + env[key] if env.get(key) else "")
            for key in item["unset"]:
                env.pop(key, None)
            log = os.path.join(self.run_root, item["log"])
            made.append(self.kit["RankLaunch"](int(item["rank"]), list(item["argv"]), env, log))
        os.makedirs(os.path.join(self.run_root, "spool"), exist_ok=True)
        os.makedirs(os.path.join(self.run_root, "user_logs"), exist_ok=True)
        self.group = self.kit["RankGroup"](made, self.wd, grace)
        pgid = int(self.group.start())
        # when this actor dies (its driver died, or it was killed), the guardian sees its pipe
        # close and kills the ranks' whole group
        self.guardian = subprocess.Popen(
            ["/bin/sh", "-c", 'read _; kill -KILL -- "-$0" 2>/dev/null', str(pgid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return pgid

    @_touch
    def step(self, timeout: float, logs_dir: bool) -> dict[str, Any]:
        """Wait up to ``timeout`` for the ranks to end; return what is new since the last step."""
        ended = self.group.wait(timeout) if self.group is not None else None
        out: dict[str, Any] = {"ended": None, "logs": {}, "spool": {}, "files": {}, "more": False}
        if ended is not None:
            out["ended"] = {
                "code": ended.code,
                "failed_rank": ended.failed_rank,
                "failed_at": ended.failed_at,
            }
        user_logs = os.path.join(self.run_root, "user_logs")
        for name in _listdir(user_logs):
            chunk, more = self._read_new(os.path.join(user_logs, name), f"user_logs/{name}", False)
            out["more"] |= more
            if chunk:
                out["logs"][name] = chunk
        spool = os.path.join(self.run_root, "spool")
        pending = {}
        for name in _listdir(spool):
            if name.endswith(".jsonl"):
                key = f"spool/{name}"
                chunk, more = self._read_new(os.path.join(spool, name), key, True, commit=False)
                out["more"] |= more
                if chunk:
                    pending[name] = chunk
        # records name files copied before them: send every such file, or hold the records
        budget = [FILES_BUDGET]
        complete = self._changed_files(os.path.join(spool, "files"), "files", out["files"], budget)
        if complete:
            for name, chunk in pending.items():
                self.offsets[f"spool/{name}"] = self.offsets.get(f"spool/{name}", 0) + len(chunk)
            out["spool"] = pending
        out["more"] |= not complete
        if logs_dir:
            out["logs_dir"] = {}
            self._changed_files(os.path.join(self.wd, "logs"), "", out["logs_dir"], budget, True)
        return out

    def _read_new(
        self, path: str, key: str, whole_lines: bool, commit: bool = True
    ) -> tuple[bytes, bool]:
        offset = self.offsets.get(key, 0)
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(PER_FILE_MAX + 1)
        except OSError:
            return b"", False
        more = len(data) > PER_FILE_MAX
        data = data[:PER_FILE_MAX]
        if whole_lines:
            data = data[: data.rfind(b"\n") + 1]
        if commit:
            self.offsets[key] = offset + len(data)
        return data, more

    def _changed_files(
        self,
        folder: str,
        prefix: str,
        out: dict[str, bytes],
        budget: list[int],
        skip_big: bool = False,
    ) -> bool:
        """Add changed files under ``folder`` to ``out``; False when the budget ran out."""
        for dirpath, _, names in os.walk(folder):
            for name in sorted(names):
                if name.startswith(".ferry-"):
                    continue  # a copy in progress
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, folder).replace(os.sep, "/")
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                key, stamp = f"{prefix}:{rel}", (st.st_size, st.st_mtime_ns)
                if self.seen.get(key) == stamp or (skip_big and st.st_size > LOGS_FILE_MAX):
                    continue
                if st.st_size > budget[0] and out:
                    return False
                with open(path, "rb") as fh:
                    out[f"{prefix}/{rel}" if prefix else rel] = fh.read()
                budget[0] -= st.st_size
                self.seen[key] = stamp
        return True

    @_touch
    def stop(self, grace: float) -> None:
        if self.group is not None:
            self.group.stop(grace)

    @_touch
    def outputs(self, cursor: list[int]) -> tuple[list[dict[str, Any]], list[int] | None]:
        """A batch of ./outputs (files in pieces, links by target) from ``cursor`` on."""
        root = os.path.join(self.wd, "outputs")
        paths = sorted(
            os.path.join(d, n) for d, subdirs, names in os.walk(root) for n in names + subdirs
        )
        paths = [p for p in paths if os.path.islink(p) or os.path.isfile(p)]
        index, offset = cursor
        items: list[dict[str, Any]] = []
        budget = FILES_BUDGET
        while index < len(paths) and budget > 0:
            path = paths[index]
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if os.path.islink(path):
                items.append({"path": rel, "link": os.readlink(path)})
                index, offset = index + 1, 0
                continue
            st = os.stat(path)
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(budget)
            items.append({"path": rel, "offset": offset, "data": data, "mode": st.st_mode & 0o777})
            budget -= len(data)
            offset += len(data)
            if offset >= st.st_size:
                index, offset = index + 1, 0
        return items, ([index, offset] if index < len(paths) else None)

    @_touch
    def cleanup(self, keep: bool) -> None:
        """Stop what the ranks left behind, release the guardian, remove the run's folder."""
        if self.group is not None and self.group.pgid is not None:
            try:
                os.killpg(self.group.pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.guardian is not None:
            self.guardian.kill()
            self.guardian.wait()
            self.guardian = None
        if not keep:
            shutil.rmtree(self.run_root, ignore_errors=True)
            try:
                os.rmdir(os.path.dirname(self.run_root))
            except OSError:
                pass

    # the lease -------------------------------------------------------------------------------
    def _watch_lease(self) -> None:
        while True:
            time.sleep(min(1.0, self.lease_seconds / 4))
            try:
                os.utime(self._alive)
            except OSError:
                pass
            idle = time.monotonic() - self._contact
            if self._busy or idle <= self.lease_seconds or self.group is None:
                continue
            if not self.group.running():
                continue
            note = (
                f"\nferry: the supervisor following this run has been gone for {idle:.0f} s "
                f"(lease {self.lease_seconds:.0f} s); the ranks on this node are stopped\n"
            )
            for launch in self.group.launches:
                try:
                    with open(launch.log_path, "a", encoding="utf-8") as fh:
                        fh.write(note)
                except OSError:
                    pass
            self.group.stop(_ABORT_AFTER_LEASE)


def _prune_abandoned(runs: str) -> None:
    """Remove run folders whose agents died long ago without cleaning up (a crashed driver)."""
    now = time.time()
    for run in _subdirs(runs):
        try:
            stamps = [os.stat(run).st_mtime] + [
                os.stat(os.path.join(node, ".alive")).st_mtime
                for node in _subdirs(run)
                if os.path.exists(os.path.join(node, ".alive"))
            ]
        except OSError:
            continue
        if now - max(stamps) > KEEP_ABANDONED_SECONDS:
            shutil.rmtree(run, ignore_errors=True)


def _subdirs(folder: str) -> list[str]:
    try:
        return [e.path for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _listdir(folder: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)))
    except OSError:
        return []
