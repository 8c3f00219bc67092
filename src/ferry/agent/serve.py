"""The agent's protocol: requests on stdin, frames on stdout.

Requests are JSON lines ``{"id": 1, "op": "prepare", ...}``; ``ping`` has no reply. Everything
the agent says is a frame: a JSON header line, then ``n`` raw bytes when the header has ``"n"``::

    {"t": "hello", "work_dir": …, "python": [3, 11, 7], "platform": "linux-x86_64", "uv": true, …}
    {"t": "reply", "id": 1, "ok": true, "result": {…}}       or "ok": false, "error": "…"
    {"t": "log", "text": "…"}                                  a line of an environment build
    {"t": "data", "f": "spool/12-ab.jsonl", "reset": false, "n": 120}   + 120 new bytes
    {"t": "data", "f": "user_logs/std_log.txt", "reset": false, "pos": 4096, "n": 96}
    {"t": "exit", "code": 0, "reason": "exit", "outputs": true, "failed_rank": null, …}
    {"t": "exit", "lost": true, "code": null, "reason": "lost"}   the job's watchdog vanished

The ``data`` and ``exit`` frames come from the run's follower (:mod:`.follow`): a job's capped
logs are followed by stream position (``pos``), so a compaction on the host never sends a byte
twice nor skips one that is kept, and a follower that starts again after a reconnection goes on
from the ``pos`` the client last received.

Every request refreshes the lease of the run being followed. When stdin closes (the supervisor
died or the connection dropped) the agent exits at once; the job's watchdog decides the rest.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import time
from typing import Any, BinaryIO

from . import container, hostenv, jobs, mpirun
from .follow import Follower, Gone, Out, is_log
from .store import Store, check_name, make_empty, place_dataset

# the follower's names too: they were defined here before it had a module of its own, and
# ferry.agent.daemon (Out) and ferry.targets.ssh.sink (is_log) import them from here
__all__ = ["VERSION", "Agent", "Follower", "Gone", "Out", "is_log", "main", "prepare_root"]

VERSION = 2
KEEP_FINISHED_SECONDS = 86400.0  # finished runs nobody cleaned up are removed after a day


class Agent:
    """Serves one SSH channel: prepares runs, launches and follows them, cleans up."""

    def __init__(
        self, root: str, reader: BinaryIO, out: Out, facts: dict[str, Any] | None = None
    ) -> None:
        self.store = Store(root)
        self.reader = reader
        self.out = out
        self.facts = facts or {}
        self.follower: Follower | None = None
        self.lease: str | None = None

    def serve(self) -> None:
        """Say hello, then answer requests until the client closes the channel."""
        uname = os.uname()
        self.out.send(
            {
                "t": "hello",
                "v": VERSION,
                "work_dir": self.store.root,
                "python": list(sys.version_info[:3]),
                "executable": sys.executable,
                "platform": f"{sys.platform}-{uname.machine.lower()}",
                "host": uname.nodename,
                "pid": os.getpid(),
                "uv": hostenv.find_uv("") is not None,  # decides the build recipe (and the hash)
                # for Docker runs: the engine as Docker's clients find it here, who runs jobs
                "docker_host": container.engine_address(os.environ),
                "uid": os.getuid(),
                "gid": os.getgid(),
                "gpus": bool(glob.glob("/dev/nvidia[0-9]*")),
                **self.facts,
            }
        )
        try:
            while True:
                line = self.reader.readline()
                if not line:
                    return
                self.handle(line)
        except (Gone, OSError):
            return
        finally:
            if self.follower is not None:
                self.follower.stopped = True

    def handle(self, line: bytes) -> None:
        try:
            req = json.loads(line)
        except ValueError:
            return
        if self.lease is not None:
            try:
                os.utime(self.lease)
            except OSError:
                pass
        if req.get("op") == "ping":
            return
        try:
            result = getattr(self, "op_" + str(req.get("op")))(req)
            reply = {"t": "reply", "id": req.get("id"), "ok": True, "result": result}
        except Exception as exc:  # the client raises it as a TargetError
            error = f"{type(exc).__name__}: {exc}"
            reply = {"t": "reply", "id": req.get("id"), "ok": False, "error": error}
        self.out.send(reply)

    def op_prepare(self, req: dict[str, Any]) -> dict[str, Any]:
        """What the run lacks (blobs, runtime, environment); the tree is copied if it can be."""
        root = self.store.root
        result: dict[str, Any] = {"runtime": None, "env": None, "missing": [], "files": None}
        if req.get("runtime"):
            folder = os.path.join(root, "runtime", check_name(req["runtime"]))
            result["runtime"] = folder if os.path.isdir(folder) else None
        if req.get("env"):
            result["env"] = hostenv.env_facts(os.path.join(root, "envs", check_name(req["env"])))
        if req.get("snapshot"):
            manifest = self.store.manifest(req["snapshot"])
            if manifest is None:
                result["missing"] = self.store.missing([req["snapshot"]])
                return result
            entries = manifest["entries"].values()
            result["missing"] = self.store.missing(e["digest"] for e in entries if "digest" in e)
            if not result["missing"]:
                wd = os.path.join(self.store.run_dir(req["run"]), "wd")
                result.update(self.store.materialize(manifest, wd))
        return result

    def op_dataset(self, req: dict[str, Any]) -> dict[str, Any]:
        """A run's input dataset here (:func:`.store.place_dataset`)."""
        return place_dataset(
            self.store, str(req["manifest"]), str(req.get("mechanism")), req.get("dest")
        )

    def op_mkdirs(self, req: dict[str, Any]) -> dict[str, Any]:
        """Empty folders for a run's outputs (a folder left by an earlier run is refused)."""
        make_empty(req["paths"])
        return {}

    def op_unpack(self, req: dict[str, Any]) -> dict[str, Any]:
        bad = []
        for name in req["packs"]:
            bad.extend(self.store.unpack(name, str(req.get("algo") or "sha256")))
        return {"missing": bad}

    def op_build_env(self, req: dict[str, Any]) -> dict[str, Any]:
        return hostenv.build_env(
            self.store.root, req, lambda text: self.out.send({"t": "log", "text": text})
        )

    def op_docker_check(self, req: dict[str, Any]) -> dict[str, Any]:
        """The engine's version and Docker's client here; a message saying how to start an
        engine when none answers (raised: the client shows it)."""
        engine = str(req.get("engine") or container.engine_address(os.environ))
        try:
            version = container.version(engine, timeout=3.0)
        except container.EngineError as exc:
            raise RuntimeError(
                "no Docker engine answers on this host at %s (%s): start one there with "
                "`sudo systemctl start docker` (or `sudo dockerd &`; Debian: `apt-get install "
                "docker.io`), or set docker_host on the target" % (engine, exc)
            ) from None
        client = shutil.which("docker")
        if client is None:
            raise RuntimeError(
                "the Docker engine at %s answers, but Docker's client `docker` is not on this "
                "host's PATH (Debian: `apt-get install docker.io`)" % engine
            )
        return {"engine": engine, "version": version.get("Version"), "client": client}

    def op_mpi_check(self, req: dict[str, Any]) -> dict[str, Any]:
        """Open MPI's mpirun here (the path asked for, else on PATH), and what it says it is;
        the client judges it (:func:`ferry.targets.mpi.judge`)."""
        return mpirun.locate(str(req.get("mpirun") or ""))

    def op_launch(self, req: dict[str, Any]) -> dict[str, Any]:
        status = jobs.launch(self.store.run_dir(req["run"]), req)
        self._follow(req)
        return status

    def op_follow(self, req: dict[str, Any]) -> dict[str, Any]:
        """Follow a run again (a reconnected client), from the offsets it received."""
        run_dir = self.store.run_dir(req["run"])
        if not os.path.isdir(run_dir):
            raise RuntimeError("the run folder %s is gone" % run_dir)
        running = not os.path.exists(os.path.join(run_dir, "exit.json"))
        self._follow(req)
        return {"running": running, "watchdog": jobs.watchdog_alive(run_dir)}

    def _follow(self, req: dict[str, Any]) -> None:
        run_dir = self.store.run_dir(req["run"])
        self.lease = os.path.join(run_dir, "lease")
        if self.follower is not None:
            self.follower.stopped = True
        watch = req.get("watch")
        self.follower = Follower(
            self.out,
            run_dir,
            dict(req.get("offsets") or {}),
            None if watch is None else list(watch),
        )
        self.follower.start()

    def op_free_port(self, req: dict[str, Any]) -> dict[str, Any]:
        """A TCP port free on this host now (MASTER_PORT of a distributed job)."""
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return {"port": int(sock.getsockname()[1])}

    def op_kill(self, req: dict[str, Any]) -> dict[str, Any]:
        """Cancel the run's job: its watchdog stops every process of it."""
        run_dir = self.store.run_dir(req["run"])
        return {"killed": jobs.cancel(run_dir, float(req.get("grace", 10)))}

    def op_cleanup(self, req: dict[str, Any]) -> dict[str, Any]:
        """Stop following; stop a job still running; remove the run folder (unless kept)."""
        run_dir = self.store.run_dir(req["run"])
        if self.follower is not None:
            self.follower.stopped = True
        self.lease = None
        if not os.path.exists(os.path.join(run_dir, "exit.json")):
            jobs.stop_and_wait(run_dir, 5.0)
        if not req.get("keep"):
            shutil.rmtree(run_dir, ignore_errors=True)
            for path in req.get("remove") or []:  # dataset folders given outside the run's
                path = str(path)
                if os.path.islink(path):
                    os.unlink(path)
                elif os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
        return {"removed": not req.get("keep")}

    def collect_garbage(self) -> None:
        """Remove finished runs nobody cleaned up (their supervisor died) after a day."""
        now = time.time()
        for entry in os.scandir(os.path.join(self.store.root, "runs")):
            try:
                age = now - os.stat(os.path.join(entry.path, "exit.json")).st_mtime
            except OSError:
                continue
            if age > KEEP_FINISHED_SECONDS:
                shutil.rmtree(entry.path, ignore_errors=True)


def prepare_root(work_dir: str) -> str:
    """The absolute work folder (``~`` expanded), with its sub-folders."""
    root = os.path.abspath(os.path.expanduser(work_dir))
    os.makedirs(root, mode=0o700, exist_ok=True)  # a new work folder is the user's alone
    for sub in ("bin", "blobs", "runs", "envs", "runtime", "tmp", "data"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    return root


def main(work_dir: str, agent_dir: str) -> None:
    """Serve this SSH channel (stdin/stdout) for ``work_dir``; make sure the daemon runs."""
    from . import daemon

    root = prepare_root(work_dir)
    socket_path = daemon.ensure(root, agent_dir)
    facts = {"socket": socket_path} if socket_path else {}
    agent = Agent(root, sys.stdin.buffer, Out(sys.stdout.buffer, exit_when_gone=True), facts)
    agent.collect_garbage()
    agent.serve()
    os._exit(0)  # the channel closed: the job's watchdog decides the rest
