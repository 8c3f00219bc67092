"""A throw-away Spark standalone cluster on loopback: one master and one worker.

For tests, benchmarks and trying a ``spark://`` target on one machine. Both daemons bind to
127.0.0.1 on free ports, keep their logs and the worker's folder under ``work_dir``, and die with
the process that started them.

Example::

    with StandaloneCluster(tmp_path / "spark") as cluster:
        cfg = SparkCompute.attach_configuration(master=cluster.master_url)
        ComputeTarget.attach(ws, "cluster", cfg)
        ...
        cluster.applications()   # {'activeapps': [...], 'completedapps': [...]}
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from ferry.agent.proc import die_with_parent
from ferry.errors import TargetError
from ferry.targets.spark import installation

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class StandaloneCluster:
    """A Spark standalone master and one worker on 127.0.0.1."""

    def __init__(
        self, work_dir: Path, *, cores: int = 1, memory: str = "1g", spark_home: str | None = None
    ) -> None:
        self.work_dir = Path(work_dir)
        self.cores, self.memory = cores, memory
        self.home = installation.spark_home({"spark_home": spark_home} if spark_home else {})
        self.port, self.ui_port, self.worker_ui_port = free_port(), free_port(), free_port()
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def master_url(self) -> str:
        return f"spark://{LOOPBACK}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ui_port}"

    def start(self, timeout: float = 120.0) -> StandaloneCluster:
        """Start the master, then the worker; return once the worker has registered."""
        installation.find_java(os.environ)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "worker").mkdir(exist_ok=True)
        self._daemon(
            "master",
            "org.apache.spark.deploy.master.Master",
            ["--host", LOOPBACK, "--port", str(self.port), "--webui-port", str(self.ui_port)],
        )
        self._daemon(
            "worker",
            "org.apache.spark.deploy.worker.Worker",
            [
                "--host",
                LOOPBACK,
                "--webui-port",
                str(self.worker_ui_port),
                "--cores",
                str(self.cores),
                "--memory",
                self.memory,
                "--work-dir",
                str(self.work_dir / "worker"),
                self.master_url,
            ],
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc, name in zip(self._procs, ("master", "worker"), strict=False):
                if proc.poll() is not None:
                    self.stop()
                    raise TargetError(f"the Spark {name} exited at start:\n{self.log_tail(name)}")
            try:
                if self.applications().get("aliveworkers", 0) >= 1:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TargetError(
            f"the Spark standalone cluster did not come up within {timeout:.0f} s\n"
            f"master:\n{self.log_tail('master')}\nworker:\n{self.log_tail('worker')}"
        )

    def _daemon(self, name: str, main_class: str, args: list[str]) -> None:
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(self.home),
            SPARK_LOCAL_IP=LOOPBACK,
            # no REST submission server (port 6066): a second cluster on this machine must start
            SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
            SPARK_WORKER_DIR=str(self.work_dir / "worker"),
        )
        with open(self.work_dir / f"{name}.log", "ab") as log:
            self._procs.append(
                subprocess.Popen(
                    [installation.spark_class(self.home), main_class, *args],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            )

    def applications(self) -> dict[str, Any]:
        """The master's state: workers, active and completed applications (its JSON view)."""
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=5) as response:
            data: dict[str, Any] = json.load(response)
        return data

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            text = (self.work_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """Stop the worker, then the master (TERM, KILL after ``grace`` seconds)."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self._procs.clear()

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
