"""The server's supervisors: runs submitted to the server are driven here, not on the laptop.

Each API process with ``--supervisors N`` (> 0) runs one :class:`SupervisorPool`: a thread that
claims queued runs from the shared ``dispatch`` table (a compare-and-set, so one process gets
each run) and starts each run's ordinary supervisor in a session of its own — the one the pool
started ahead of its run (:mod:`ferry.server.standby`: imported, its database connected; a new
one is started for the next run), else forked by the warm zygote
(:func:`ferry.cli.fast.start_supervisor_via_zygote`), else spawned (``python -m
ferry.supervisor``) — at most N at once (its claimed runs that have not ended). A supervisor
outlives the server process that started it: a server restarted mid-run leaves its runs
running, and their supervisors keep beating.

On every tick the pool also: reaps supervisors that ended (revoking their run's token); beats
for the runs still waiting in the queue (however long they wait for a free supervisor, they are
not lost while a server process lives); checks every live run's heartbeat
(:func:`ferry.liveness.sweep`), so a run whose supervisor died with
its machine is ended ``Failed`` with the reason, never left ``Running``; and takes over runs
claimed by a process of this host that died before starting them.

Each run's job gets a token scoped to that run (``MLFLOW_TRACKING_TOKEN``), of the user who
submitted it; it is revoked when the supervisor ends.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time

from ferry import liveness
from ferry.agent.proc import pid_alive
from ferry.errors import FerryError
from ferry.server.services import ServerServices
from ferry.server.standby import READY
from ferry.status import RunStatus
from ferry.targets.jobenv import RUN_TOKEN_VARIABLE, SERVER_URI_VARIABLE

log = logging.getLogger("ferry.server")
TICK = 0.05
SWEEP_EVERY = 2.0
STANDBY_RETRY = 10.0


class SupervisorPool:
    """Claims queued runs and supervises up to ``config.supervisors`` of them at once."""

    def __init__(self, services: ServerServices) -> None:
        self.services = services
        self.size = services.config.supervisors
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._tokens: dict[str, str] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sweep = 0.0
        #: a supervisor started ahead of its run (:mod:`ferry.server.standby`), and whether
        #: it said it is ready
        self._standby: subprocess.Popen[bytes] | None = None
        self._standby_ready = False
        self._next_standby = 0.0  # a standby that died is not replaced before this moment

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ferry-supervisors", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop claiming runs; the supervisors started keep running (detached)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._drop_standby()

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> list[str]:
        return list(self._children)

    # the loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            self._adopt_orphans()
        except FerryError as exc:
            log.warning("could not look for orphaned runs: %s", exc)
        while not self._stop.is_set():
            try:
                self._tick()
            except FerryError as exc:  # the database went away: try again next tick
                log.warning("supervisor pool: %s", exc)
            except Exception:
                log.exception("supervisor pool")
            self._wake.wait(TICK)
            self._wake.clear()

    def _tick(self) -> None:
        self._reap()
        store = self.services.store
        mine = [run_id for run_id, owner in store.claims().items() if owner == self.owner]
        free = self.size - len(mine)
        launched = False
        for run_id in store.claim_dispatch(self.owner, free):
            self._launch(run_id)
            launched = True
        if not mine and not launched:
            self._keep_standby()  # warmed while idle: never beside a run on a small machine
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_EVERY:
            self._last_sweep = now
            wall = time.time()
            store.beat_waiting(wall, wall - liveness.heartbeat_interval())
            liveness.sweep(store)
            store.revoke_ended_run_tokens()

    def _reap(self) -> None:
        """Spawned supervisors that ended: collected, their run's token revoked (those the
        zygote started are revoked by the sweep once their run has ended)."""
        for run_id, proc in list(self._children.items()):
            if proc.poll() is None:
                continue
            del self._children[run_id]
            token_id = self._tokens.pop(run_id, None)
            if token_id is not None:
                self.services.store.revoke_token(token_id)

    def _adopt_orphans(self) -> None:
        """Runs claimed by a process of this host that died before starting them."""
        store = self.services.store
        host = socket.gethostname()
        for run_id, owner in store.claims().items():
            owner_host, _, pid = owner.rpartition(":")
            if owner == self.owner or owner_host != host or not pid.isdigit():
                continue
            if pid_alive(int(pid)):
                continue
            record = store.get_run(run_id)
            waiting = record.status == RunStatus.QUEUED and record.supervisor_pid is None
            if waiting and store.reclaim(run_id, owner, self.owner):
                log.info("run %s: its server process %s died; starting it here", run_id, owner)
                self._launch(run_id)

    # the supervisor started ahead ------------------------------------------------------------
    def _keep_standby(self) -> None:
        """Have a supervisor ready for the next run. It is started while this pool runs
        nothing: its start (~0.3 s of CPU for imports) would otherwise slow the runs."""
        if os.environ.get("FERRY_SUPERVISOR_SPAWN") == "1" or self.size < 1:
            return
        if self._standby is not None and self._standby.poll() is None:
            return
        now = time.monotonic()
        if self._standby is not None:  # it died waiting (its database went away?)
            self._drop_standby()
            self._next_standby = now + STANDBY_RETRY
        if now < self._next_standby:
            return
        svc = self.services
        env = dict(os.environ)
        env.update(svc.config.to_env())
        env[SERVER_URI_VARIABLE] = svc.config.url
        try:
            self._standby = subprocess.Popen(
                [sys.executable, "-m", "ferry.server.standby", str(svc.workspace.path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                cwd=str(svc.workspace.path),
                env=env,
            )
        except OSError as exc:
            log.warning("could not start a supervisor ahead of its run: %s", exc)

    def _hand_to_standby(self, run_id: str, env: dict[str, str], log_path: str) -> bool:
        """Give the run to the supervisor waiting for one, if it is ready; False otherwise."""
        proc = self._standby
        if proc is None or proc.stdin is None or proc.stdout is None or proc.poll() is not None:
            return False
        if not self._standby_ready:
            readable, _, _ = select.select([proc.stdout], [], [], 0)
            if not readable:
                return False  # still starting: the zygote is faster for this run
            self._standby_ready = os.read(proc.stdout.fileno(), 64).startswith(READY)
            if not self._standby_ready:
                self._drop_standby()
                return False
        request = json.dumps({"run": run_id, "log": log_path, "env": env}) + "\n"
        try:
            proc.stdin.write(request.encode())
            proc.stdin.close()
        except OSError:
            self._drop_standby()
            return False
        proc.stdout.close()
        self._children[run_id] = proc
        self._standby, self._standby_ready = None, False
        return True

    def _drop_standby(self) -> None:
        proc, self._standby, self._standby_ready = self._standby, None, False
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()  # its input closed: it leaves (no run was given to it)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _launch(self, run_id: str) -> None:
        svc = self.services
        try:
            record = svc.store.get_run(run_id)
            if record.status.is_terminal():
                return
            if record.run_type == "hyperdrive":  # a sweep: its controller, on this machine
                from ferry.hyperdrive.keeper import launch_controller

                launch_controller(svc.workspace.path, svc.workspace.runs_dir, run_id)
                return
            env = dict(os.environ)
            env.update(svc.config.to_env())
            env[SERVER_URI_VARIABLE] = svc.config.url
            user = svc.store.dispatch_user(run_id)
            if user is not None:
                token = svc.store.create_token(user, scope=f"run:{run_id}")
                env[RUN_TOKEN_VARIABLE] = token
                self._tokens[run_id] = token.split("_")[1]
            run_dir = svc.workspace.runs_dir / run_id
            run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            log_path = run_dir / "supervisor.log"
            run_env = {RUN_TOKEN_VARIABLE: env[RUN_TOKEN_VARIABLE]} if user is not None else {}
            if self._hand_to_standby(run_id, run_env, str(log_path)):
                return
            if os.environ.get("FERRY_SUPERVISOR_SPAWN") != "1":
                from ferry.cli import fast  # the warm zygote forks it: no interpreter start

                if fast.start_supervisor_via_zygote(
                    str(svc.workspace.path), run_id, env, str(log_path)
                ):
                    return
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                self._children[run_id] = subprocess.Popen(
                    [sys.executable, "-m", "ferry.supervisor", str(svc.workspace.path), run_id],
                    stdin=subprocess.DEVNULL,
                    stdout=fd,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    cwd=str(svc.workspace.path),
                    env=env,
                )
            finally:
                os.close(fd)
        except (OSError, FerryError) as exc:
            log.warning("run %s: could not start its supervisor: %s", run_id, exc)
            try:
                svc.store.set_status(
                    run_id,
                    RunStatus.FAILED,
                    error={
                        "error": {
                            "code": "SystemError",
                            "message": f"the server could not start the run: {exc}",
                        }
                    },
                )
            except FerryError:
                pass
