"""The local target: the job runs on this machine, in a materialised copy of its snapshot.

A distributed run (``ScriptRunConfig(distributed_job_config=PyTorchConfiguration(...))``) starts
one process per rank on this machine (one node), each with its own log beside the main one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ferry import envbuild
from ferry.environment import Environment
from ferry.errors import ConfigError, TargetError
from ferry.targets import distributed
from ferry.targets.base import JobSpec, Target


def job_argv(definition: Mapping[str, Any], python: str) -> list[str]:
    """The command line of a job: ``python script args…`` or the configured command."""
    command = definition.get("command")
    if command:
        if isinstance(command, list):
            return [str(c) for c in command]
        return ["/bin/sh", "-c", str(command)]
    return [python, str(definition["script"]), *(str(a) for a in definition.get("arguments") or [])]


def job_environment(
    job: JobSpec, workdir: Path, runtime_path: Path, extra: Mapping[str, str]
) -> dict[str, str]:
    """The variables a job sees: the caller's, the environment's, the runtime protocol's."""
    env = dict(os.environ)
    env.update(extra)
    env.update(job.env_vars)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(runtime_path) + (os.pathsep + old if old else "")
    env["PYTHONUNBUFFERED"] = "1"
    env["FERRY_RUN_ID"] = job.run_id
    env["FERRY_EXPERIMENT"] = job.experiment
    env["FERRY_RUN_DIR"] = str(job.run_dir)
    env["FERRY_SPOOL_DIR"] = str(job.spool_dir)
    env["FERRY_OUTPUT_DIR"] = str(workdir / "outputs")
    env["AZUREML_OUTPUT_DIRECTORY"] = "./outputs"
    if job.parent_run_id:
        env["FERRY_PARENT_RUN_ID"] = job.parent_run_id
    else:
        env.pop("FERRY_PARENT_RUN_ID", None)
    return env


def _load_prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:
        return None


# loaded up front: the pre-exec hook must not import anything (another thread of the
# supervisor, such as its heartbeat, may hold the import lock at the moment of the fork)
_PRCTL = _load_prctl()


def parent_death_signal(signum: int) -> None:
    """In a pre-exec hook: ``signum`` reaches this process when its parent dies
    (PR_SET_PDEATHSIG). Imports nothing, so it is safe beside other threads."""
    if _PRCTL is not None:
        _PRCTL(1, signum)


def _die_with_parent() -> None:
    """Runs in the child before exec: killed if the supervisor dies."""
    parent_death_signal(signal.SIGKILL)


def launch(
    argv: list[str],
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    preexec_fn: Callable[[], None],
    first_line: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a job in its own session, stdout and stderr appended (in order) to ``log_path``."""
    with open(log_path, "ab", buffering=0) as log_file:
        if first_line is not None:
            log_file.write(first_line.encode())
        try:
            return subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec_fn,
            )
        except OSError as exc:
            raise TargetError(f"cannot start {argv[0]!r}: {exc.strerror}") from exc


class LocalTarget(Target):
    """Runs jobs as child processes of the run's supervisor on this machine."""

    kind = "local"

    def __init__(self, name: str, config: Mapping[str, Any], workspace: Any) -> None:
        super().__init__(name, config, workspace)
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._python: str | None = None
        self._env_vars: dict[str, str] = {}
        self._owns_workdir = False
        self._plan: distributed.DistributedPlan | None = None
        self._ranks: distributed.RankGroup | None = None
        self._run_dir: Path | None = None
        self._run_id = ""
        self._noted = False

    @classmethod
    def check_definition(cls, name: str, definition: Mapping[str, Any]) -> None:
        """A user-managed interpreter must exist here (a remote kind checks on its host); a
        distributed job must fit on one machine."""
        _one_node_plan(definition)
        env = Environment.from_dict(definition.get("environment") or {})
        if env.python.user_managed_dependencies:
            envbuild.find_interpreter(env.python.interpreter_path)

    def prepare(self, job: JobSpec, log: Callable[[str], None]) -> dict[str, Any]:
        self._plan = _one_node_plan(job.definition)
        if job.snapshot_id:
            from ferry.snapshot import load_manifest, materialize

            self._workdir = job.run_dir / "wd"
            manifest = load_manifest(self.workspace.blobs, job.snapshot_id)
            materialize(manifest, self.workspace.blobs, self._workdir)
            self._owns_workdir = True
        elif job.source_dir is not None:
            self._workdir = job.source_dir
        else:
            raise TargetError("the run has neither a snapshot nor a source folder")
        (self._workdir / "outputs").mkdir(exist_ok=True)
        (self._workdir / "logs").mkdir(exist_ok=True)
        env = Environment.from_dict(job.definition.get("environment") or {})
        resolved = envbuild.resolve(env, self.workspace.envs_dir, log)
        self._python = resolved.python
        self._env_vars = dict(resolved.variables)
        return {"env_hash": resolved.spec_hash, "env_lock": resolved.lock}

    def start(self, job: JobSpec) -> dict[str, Any]:
        from ferry.runtime.layout import build_runtime_path

        assert self._workdir is not None and self._python is not None
        runtime_path = build_runtime_path(self.workspace.path / "runtime")
        argv = job_argv(job.definition, self._python)
        env = job_environment(job, self._workdir, runtime_path, self._env_vars)
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        job.spool_dir.mkdir(parents=True, exist_ok=True)
        if self._plan is not None:
            return self._start_ranks(job, self._plan, argv, env)
        self._proc = launch(argv, self._workdir, env, job.log_path, _die_with_parent)
        return {"job_pgid": self._proc.pid, "host": os.uname().nodename}

    def _start_ranks(
        self, job: JobSpec, plan: distributed.DistributedPlan, argv: list[str], env: dict[str, str]
    ) -> dict[str, Any]:
        """One process per rank, all in one process group led by rank 0."""
        assert self._workdir is not None
        host = "127.0.0.1"
        port = distributed.free_port(host)
        launches = [
            distributed.RankLaunch(
                rank=slot.rank,
                argv=argv,
                env={**env, **distributed.rank_environment(plan, slot, host, port)},
                log_path=str(job.run_dir / distributed.rank_log_name(slot.rank)),
            )
            for slot in plan.slots()
        ]
        from ferry.supervisor import kill_grace_seconds

        self._run_dir, self._run_id = job.run_dir, job.run_id
        self._ranks = distributed.RankGroup(
            launches, str(self._workdir), kill_grace_seconds(), preexec_fn=_die_with_parent
        )
        try:
            pgid = self._ranks.start()
        except OSError as exc:
            raise TargetError(str(exc.strerror)) from exc
        return {"job_pgid": pgid, "host": os.uname().nodename, "ranks": plan.world_size}

    def _ranks_ended(self, ended: distributed.GroupExit | None) -> int | None:
        if ended is None:
            return None
        if ended.failed_rank is not None and self._run_dir is not None and not self._noted:
            self._noted = True
            distributed.append_failure_note(
                str(self._run_dir / distributed.rank_log_name(0)),
                ended,
                str(self._run_dir / distributed.rank_log_name(ended.failed_rank)),
            )
        return ended.code

    def poll(self) -> int | None:
        if self._ranks is not None:
            return self._ranks_ended(self._ranks.poll())
        assert self._proc is not None
        return self._proc.poll()

    def wait(self, timeout: float) -> int | None:
        if self._ranks is not None:
            return self._ranks_ended(self._ranks.wait(timeout))
        assert self._proc is not None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def cancel(self, grace_seconds: float) -> None:
        if self._ranks is not None:
            self._ranks.stop(grace_seconds)
            return
        if self._proc is None or self._proc.poll() is not None:
            return
        kill_group(self._proc.pid, grace_seconds, self._proc.poll)

    def collect_outputs(self, dest: Path) -> None:
        if self._run_dir is not None:
            keep_rank_logs(self.workspace, self._run_id, self._run_dir)
        if self._workdir is None:
            return
        outputs = self._workdir / "outputs"
        if outputs.is_dir() and any(outputs.iterdir()):
            if self._owns_workdir:
                shutil.move(str(outputs), str(dest))
            else:
                shutil.copytree(outputs, dest, symlinks=True, dirs_exist_ok=True)

    def watched_dirs(self) -> list[Path]:
        return [self._workdir / "logs"] if self._workdir is not None else []

    def close(self) -> None:
        if (
            self._owns_workdir
            and self._workdir is not None
            and not os.environ.get("FERRY_KEEP_WORKDIR")
        ):
            shutil.rmtree(self._workdir, ignore_errors=True)


def _one_node_plan(definition: Mapping[str, Any]) -> distributed.DistributedPlan | None:
    plan = distributed.plan_from_definition(definition)
    if plan is not None and plan.node_count > 1:
        raise ConfigError(
            f"the local target is one machine, so node_count={plan.node_count} cannot run "
            "here; use node_count=1 with several processes (process_count or "
            "process_count_per_node), or a multi-node target such as ray"
        )
    return plan


def keep_rank_logs(workspace: Any, run_id: str, run_dir: Path) -> None:
    """Record the logs of ranks other than 0 as the run's artifacts (rank 0's is the main log)."""
    from ferry.tracking import ArtifactRecord

    records = [
        ArtifactRecord(
            run_id,
            f"user_logs/{path.name}",
            str(path.relative_to(workspace.path)),
            path.stat().st_size,
        )
        for path in sorted((run_dir / "user_logs").glob("std_log_rank_*.txt"))
    ]
    if records:
        workspace.store.add_artifacts(records)


def kill_group(
    pgid: int, grace_seconds: float, exited: Callable[[], int | None] | None = None
) -> None:
    """TERM a process group, wait up to ``grace_seconds``, then KILL what is left."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if exited is not None and exited() is not None and not _group_alive(pgid):
            return
        if exited is None and not _group_alive(pgid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
