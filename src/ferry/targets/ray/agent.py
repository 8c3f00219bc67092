"""ferry's agent on a Ray node: one actor per node of a run (standard library and ferry.agent).

Ray ships this class by value (``ray.cloudpickle.register_pickle_by_value``), together with the
neutral :mod:`ferry.agent` package it uses (the content-addressed store, environment builds,
capped logs, the job's environment), so nodes need Ray but not ferry. The job's watchdog runs as
a process of its own, so its files are written on the node once per version
(``bin/agent-<hash>/ferry_agent/``, :meth:`NodeAgent.ensure_agent`).

Layout under the node folder (``~/.cache/ferry-ray`` of the node's user by default: created
``0700`` and checked to be that user's alone, since the environments there are executed)::

    blobs/ab/cdef…                       content-addressed cache (only missing blobs are sent)
    runtime/runtime-<hash>/              ferry's in-job runtime, put on the job's PYTHONPATH
    bin/agent-<hash>/ferry_agent/        the watchdog and what it uses
    envs/<spec-hash>/                    environments built here, reused by later runs
    runs/<run-id>/node-<i>/              wd/, user_logs/, spool/, lease, exit.json of the ranks

This node's ranks run under ferry's watchdog (:mod:`ferry.agent.watchdog`), a child of the actor
that answers for every process they start: a rank that fails stops the others here, a cancel or
the job's end stops every descendant (also those that left the ranks' process group), and so
does the actor's death — its driver, the supervisor, died, or it was killed — which closes the
watchdog's control pipe. Every call renews a lease the watchdog checks too: a supervisor that
stops calling for ``lease_seconds`` stops the job. The supervisor pulls: every
:meth:`NodeAgent.step` returns the new bytes of the (capped) logs, by stream position, of the
spool, new artifact files and changed files of the watched folders (:mod:`.nodefiles`).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ferry.agent import bundle, files, hostenv
from ferry.agent.environ import apply_request
from ferry.agent.store import Store, check_path, make_empty, place_dataset
from ferry.targets.ray import nodefiles


def _touch(method: Callable[..., Any]) -> Callable[..., Any]:
    """Every call renews the lease (before and after: a call in progress counts as contact)."""

    @functools.wraps(method)
    def wrapper(self: NodeAgent, *args: Any, **kwargs: Any) -> Any:
        self.renew()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.renew()

    return wrapper


class NodeAgent:
    """Materialises a run's snapshot on this node, starts its ranks and streams them back."""

    def __init__(self, node_dir: str, run_id: str, node_index: int, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self.problem = ""
        try:
            self.root = files.private_folder(node_dir)
        except (files.PrivateFolderError, OSError) as exc:
            self.problem = f"the node folder cannot be used: {exc} (the target's node_dir)"
            self.root = ""
            return
        self.store = Store(self.root)
        self.run_root = os.path.join(self.root, "runs", run_id, f"node-{node_index}")
        self.wd = os.path.join(self.run_root, "wd")
        self.lease = os.path.join(self.run_root, "lease")
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.control = -1
        self.agent_dir = ""
        self.reader = nodefiles.RunReader(self.run_root)
        self._env: dict[str, Any] = {"lines": [], "done": False, "result": None, "error": None}
        os.makedirs(self.run_root, exist_ok=True)
        self._alive = os.path.join(self.run_root, ".alive")
        open(self._alive, "a").close()  # touched while this agent lives
        self.renew()
        nodefiles.prune_abandoned(os.path.join(self.root, "runs"))
        threading.Thread(target=self._keep_alive, daemon=True).start()

    def renew(self) -> None:
        """The supervisor called: the lease goes on."""
        if self.root:
            try:
                with open(self.lease, "a"):
                    pass
                os.utime(self.lease)
            except OSError:
                pass

    # facts and transfers ------------------------------------------------------------------
    @_touch
    def hello(self) -> dict[str, Any]:
        import platform

        import ray

        if self.problem:
            raise RuntimeError(self.problem)
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
            "uv": hostenv.find_uv("") is not None,  # decides the build recipe (and the hash)
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
            self.store.put(digest, data, 0, len(data), algo)

    @_touch
    def put_blob_part(self, digest: str, data: bytes, offset: int, size: int, algo: str) -> None:
        self.store.put(digest, data, offset, size, algo)

    @_touch
    def ensure_runtime(self, name: str, files_: dict[str, bytes] | None) -> bool:
        """True when ``runtime/<name>`` is there (after writing ``files_`` when given)."""
        final = os.path.join(self.root, "runtime", name)
        if os.path.exists(os.path.join(final, ".ferry-runtime.json")):
            return True
        if files_ is None:
            return False
        tmp = os.path.join(self.root, "tmp", f"{name}.{os.getpid()}.{time.monotonic_ns()}")
        for rel, data in files_.items():
            path = os.path.join(tmp, check_path(rel))
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
    def ensure_agent(self, name: str, files_: dict[str, bytes] | None) -> bool:
        """True when the watchdog's files (``bin/<name>``) are there (after writing ``files_``)."""
        package = os.path.join(self.root, "bin", name, bundle.PACKAGE)
        if not os.path.isfile(os.path.join(package, "watchdog.py")):
            if files_ is None:
                return False
            package = bundle.publish(self.root, name, files_)
        self.agent_dir = package
        return True

    @_touch
    def materialize(self, snapshot_id: str, watched: list[str]) -> dict[str, Any]:
        manifest = self.store.manifest(snapshot_id)
        if manifest is None:
            return {"missing": [snapshot_id]}
        result: dict[str, Any] = self.store.materialize(manifest, self.wd)
        for folder in ["outputs", *watched]:
            os.makedirs(os.path.join(self.wd, check_path(folder)), exist_ok=True)
        return result

    @_touch
    def dataset(self, manifest_id: str, mechanism: str, dest: str | None) -> dict[str, Any]:
        """An input dataset of the run on this node (only missing blobs were sent): the node's
        shared read-only copy, or a copy at ``dest`` (``download``)."""
        return place_dataset(self.store, manifest_id, mechanism, dest)

    @_touch
    def mkdirs(self, paths: list[str]) -> None:
        """Empty folders for the run's outputs."""
        make_empty(paths)

    @_touch
    def folder(self, path: str, cursor: list[int]) -> tuple[list[dict[str, Any]], list[int] | None]:
        """A batch of a folder of the run (an output dataset's), from ``cursor`` on."""
        return nodefiles.outputs_batch(path, cursor)

    # the environment -------------------------------------------------------------------------
    @_touch
    def start_env(self, request: dict[str, Any]) -> None:
        """Resolve the job's interpreter: a given one, or a build (in the background)."""
        if "python" in request:
            python = str(request["python"])
            found = python if os.path.isabs(python) else shutil.which(python)
            if not (found and os.path.isfile(found) and os.access(found, os.X_OK)):
                self._env.update(done=True, error=f"the interpreter {python!r} is not on this node")
            else:
                self._env.update(done=True, result={"python": found, "lock": None})
            return

        def build() -> None:
            try:
                facts = hostenv.build_env(self.root, request["build"], self._env["lines"].append)
                self._env.update(
                    result={
                        "python": facts["python"],
                        "lock": facts.get("lock"),
                        "folder": facts["folder"],
                    }
                )
            except BaseException as exc:  # reported to the supervisor
                self._env.update(error=str(exc) or type(exc).__name__)
            finally:
                self._env["done"] = True

        threading.Thread(target=build, daemon=True).start()

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
    def start(self, launches: list[dict[str, Any]], grace: float, log_max_bytes: int) -> int:
        """Start this node's ranks under the watchdog; returns their process group."""
        if not self.agent_dir:
            raise RuntimeError("the watchdog's files are not on this node (ensure_agent first)")
        for folder in ("spool", "user_logs"):
            os.makedirs(os.path.join(self.run_root, folder), exist_ok=True)
        exit_file = os.path.join(self.run_root, "exit.json")
        if os.path.exists(exit_file):
            os.unlink(exit_file)
        ranks = [
            {
                "rank": int(item["rank"]),
                "argv": [str(a) for a in item["argv"]],
                "env": apply_request(os.environ, item),
                "log": os.path.join(self.run_root, check_path(str(item["log"]))),
            }
            for item in launches
        ]
        read_end, self.control = os.pipe()
        spec = {
            "cwd": self.wd,
            "grace": grace,
            "exit_file": exit_file,
            "log_max_bytes": log_max_bytes,
            "control_fd": read_end,
            "lease_file": self.lease,
            "lease_seconds": self.lease_seconds,
            "ranks": ranks,
        }
        errors = os.open(
            os.path.join(self.run_root, "watchdog.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND
        )
        try:
            self.watchdog = subprocess.Popen(
                [sys.executable, "-S", "-E", "-s", os.path.join(self.agent_dir, "watchdog.py")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                pass_fds=(read_end,),
                start_new_session=True,
                cwd=self.run_root,
            )
        finally:
            os.close(errors)
            os.close(read_end)
        assert self.watchdog.stdin is not None and self.watchdog.stdout is not None
        self.watchdog.stdin.write(json.dumps(spec).encode("utf-8"))
        self.watchdog.stdin.close()
        line = self.watchdog.stdout.readline()
        self.watchdog.stdout.close()
        try:
            started = json.loads(line or b'{"error": "the watchdog exited at once"}')
        except ValueError:
            started = {"error": f"the watchdog answered {line[:200]!r}"}
        if "error" in started:
            self.watchdog.wait()
            raise RuntimeError(str(started["error"]))
        return int(started["pgid"])

    def _ended(self) -> dict[str, Any] | None:
        """The watchdog's result once it has exited (None while it runs)."""
        if self.watchdog is None or self.watchdog.poll() is None:
            return None
        try:
            with open(os.path.join(self.run_root, "exit.json"), encoding="utf-8") as fh:
                result: dict[str, Any] = json.load(fh)
        except (OSError, ValueError):
            result = {"code": -9, "reason": "lost", "failed_rank": None, "failed_at": None}
        code = result.get("code")
        return {
            "code": code if isinstance(code, int) else 1,
            "reason": result.get("reason", "exit"),
            "failed_rank": result.get("failed_rank"),
            "failed_at": result.get("failed_at"),
        }

    @_touch
    def step(self, timeout: float, watched: list[str] | None) -> dict[str, Any]:
        """Wait up to ``timeout`` for the ranks to end; return what is new since the last step
        (the watched folders' changed files only when ``watched`` names them)."""
        if self.watchdog is not None and timeout > 0:
            try:
                self.watchdog.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        ended = self._ended()  # before reading: the logs are then complete
        return {"ended": ended, **self.reader.read(watched)}

    @_touch
    def stop(self, grace: float) -> None:
        """Cancel: the watchdog stops every process of the ranks (TERM, KILL after ``grace``)."""
        if self.control >= 0 and self.watchdog is not None and self.watchdog.poll() is None:
            try:
                os.write(self.control, (f"cancel {float(grace)}\n").encode("ascii"))
            except OSError:
                pass

    @_touch
    def outputs(self, cursor: list[int]) -> tuple[list[dict[str, Any]], list[int] | None]:
        """A batch of ./outputs (files in pieces, links by target) from ``cursor`` on."""
        return nodefiles.outputs_batch(os.path.join(self.wd, "outputs"), cursor)

    @_touch
    def cleanup(self, keep: bool, remove: list[str] | None = None) -> None:
        """Stop what is still running (the watchdog stops all of it), remove the run's folder
        (and dataset folders given outside it, ``remove``)."""
        if self.watchdog is not None and self.watchdog.poll() is None:
            self.stop(0.0)
            try:
                self.watchdog.wait(10)
            except subprocess.TimeoutExpired:
                self.watchdog.kill()  # its pipe closes: the job goes with it
                self.watchdog.wait()
        if self.control >= 0:
            os.close(self.control)
            self.control = -1
        if not keep and self.root:
            shutil.rmtree(self.run_root, ignore_errors=True)
            for path in remove or []:
                if os.path.islink(path):
                    os.unlink(path)
                elif os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
            try:
                os.rmdir(os.path.dirname(self.run_root))
            except OSError:
                pass

    def _keep_alive(self) -> None:
        """Mark the run folder as in use while this agent lives (see :func:`.nodefiles.prune_abandoned`)."""
        while True:
            time.sleep(min(5.0, max(0.5, self.lease_seconds / 4)))
            try:
                os.utime(self._alive)
            except OSError:
                pass
