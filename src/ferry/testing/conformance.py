"""The target conformance suite: every compute target must behave the same.

Use it from a test module::

    from ferry.testing.conformance import SCENARIOS, Scenario

    @pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
    def test_local_target(scenario, conformance_env):
        scenario.run(conformance_env)

A ``ConformanceEnv`` carries the workspace, the target name and a scratch folder; each scenario
writes its own script, submits it and checks what a user would see.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.agent.proc import pid_alive
from ferry.errors import RunFailed
from ferry.experiment import Experiment
from ferry.run import Run
from ferry.script_run_config import ScriptRunConfig
from ferry.workspace import Workspace

AWKWARD = "dir with spaces 'quotes' ünïcødé"


@dataclass
class ConformanceEnv:
    """Where a scenario runs: a workspace, a target name and a scratch folder.

    ``framework`` (e.g. ``"PySpark"``) is set on every submitted run configuration, for targets
    that run only one framework.
    """

    workspace: Workspace
    target: str
    scratch: Path
    framework: str | None = None
    #: the target is ferry.testing.fake's: each scenario gives its job's behaviour as a script
    fake: bool = False

    def submit(
        self,
        name: str,
        body: str,
        *,
        arguments: list[Any] | None = None,
        fake: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Run:
        if self.fake:
            from ferry.compute import ComputeTarget
            from ferry.testing.fake import FakeCompute

            ComputeTarget.attach(
                self.workspace, self.target, FakeCompute.attach_configuration(**(fake or {}))
            )
        source = self.scratch / name / AWKWARD
        source.mkdir(parents=True, exist_ok=True)
        (source / "job.py").write_text(textwrap.dedent(body), encoding="utf-8")
        config = ScriptRunConfig(
            str(source), "job.py", arguments=arguments, compute_target=self.target, **kwargs
        )
        if self.framework:
            config.run_config.framework = self.framework
        return Experiment(self.workspace, f"conf-{name}").submit(config)


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# ------------------------------------------------------------------------------------------------


def success(env: ConformanceEnv) -> None:
    run = env.submit(
        "success",
        """
        import os, sys
        from ferry import Run
        run = Run.get_context()
        print("hello from", os.path.basename(os.getcwd()))
        print("to stderr", file=sys.stderr)
        run.log("loss", 0.5)
        run.log("loss", 0.25)
        run.log("alpha", float(sys.argv[2]))
        run.tag("team", "a")
        os.makedirs("outputs/sub dir", exist_ok=True)
        open("outputs/sub dir/model ünï.txt", "w").write("weights")
        """,
        arguments=["--alpha", 0.5],
        fake={
            "log": ["hello from wd", "to stderr"],
            "spool": [
                {"k": "metric", "name": "loss", "value": 0.5},
                {"k": "metric", "name": "loss", "value": 0.25},
                {"k": "metric", "name": "alpha", "value": 0.5},
                {"k": "tags", "set": {"team": "a"}},
            ],
            "outputs": {"sub dir/model ünï.txt": "weights"},
        },
    )
    details = run.wait_for_completion()
    assert details["status"] == "Completed", details
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert "hello from" in log and "to stderr" in log
    metrics = run.get_metrics()
    assert metrics == {"loss": [0.5, 0.25], "alpha": 0.5}, metrics
    assert run.get_tags()["team"] == "a"
    assert "outputs/sub dir/model ünï.txt" in run.get_file_names()
    assert details["runDefinition"]["arguments"] == ["--alpha", 0.5]
    for key in (
        "runId",
        "target",
        "status",
        "startTimeUtc",
        "endTimeUtc",
        "properties",
        "runDefinition",
        "logFiles",
    ):
        assert key in details, key


def failure(env: ConformanceEnv) -> None:
    run = env.submit(
        "failure",
        """
        print("about to fail")
        def train():
            raise ValueError("boom: bad learning rate")
        train()
        """,
        fake={
            "log": [
                "about to fail",
                "Traceback (most recent call last):",
                '  File "job.py", line 4, in train',
                "ValueError: boom: bad learning rate",
            ],
            "exit_code": 1,
        },
    )
    try:
        run.wait_for_completion()
    except RunFailed as exc:
        assert "ValueError: boom: bad learning rate" in str(exc)
    else:
        raise AssertionError("wait_for_completion did not raise on a failed run")
    details = run.get_details()
    assert details["status"] == "Failed"
    assert "ValueError: boom: bad learning rate" in details["error"]["error"]["message"]
    assert details["error"]["exitCode"] == 1


def cancel(env: ConformanceEnv) -> None:
    """Cancel stops the job and every process it started, also those that left its group."""
    pid_file = env.scratch / "cancel-child.pid"
    run = env.submit(
        "cancel",
        f"""
        import os, subprocess, sys, time
        sleep = [sys.executable, "-c", "import time; time.sleep(300)"]
        kids = [subprocess.Popen(sleep), subprocess.Popen(sleep, start_new_session=True),
                subprocess.Popen(sleep, process_group=0)]
        with open({str(pid_file)!r} + ".part", "w") as fh:
            fh.write(" ".join(str(k.pid) for k in kids))
        os.replace({str(pid_file)!r} + ".part", {str(pid_file)!r})
        print("started", flush=True)
        time.sleep(300)
        """,
        fake={"run_seconds": 300, "log": ["started"]},
    )
    if env.fake:
        pid_file.write_text("")  # a fake job starts no process
    wait_until(lambda: run.get_status() == "Running" and pid_file.exists(), what="the job to start")
    t = time.monotonic()
    assert run.cancel() is True
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Canceled", details
    assert time.monotonic() - t < 20
    children = [int(p) for p in pid_file.read_text().split()]
    wait_until(
        lambda: not any(pid_alive(c) for c in children), timeout=10, what="the job's children"
    )


def time_limit(env: ConformanceEnv) -> None:
    run = env.submit(
        "timelimit",
        """
        import time
        print("sleeping", flush=True)
        time.sleep(300)
        """,
        max_run_duration_seconds=1,
        fake={"run_seconds": 300},
    )
    t = time.monotonic()
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed", details
    assert details["error"]["error"]["code"] == "TimeLimitExceeded"
    assert time.monotonic() - t < 20


def live_log(env: ConformanceEnv) -> None:
    flag = env.scratch / "live-log.go"
    run = env.submit(
        "livelog",
        f"""
        import os, time
        print("first line", flush=True)
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.02)
        print("last line")
        """,
        fake={"log": ["first line"], "late_log": ["last line"], "wait_for": str(flag)},
    )
    seen = ""
    for chunk in run.follow_log(timeout_seconds=30):
        seen += chunk
        if "first line" in seen and not flag.exists():
            assert run.get_status() == "Running"  # the line arrived while the job runs
            flag.touch()
    assert "first line" in seen and "last line" in seen
    assert run.wait_for_completion()["status"] == "Completed"


def live_metrics(env: ConformanceEnv) -> None:
    flag = env.scratch / "live-metrics.go"
    run = env.submit(
        "livemetrics",
        f"""
        import os, time
        from azureml.core import Run
        run = Run.get_context()
        run.log("epoch_loss", 1.5)
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.02)
        """,
        fake={
            "spool": [{"k": "metric", "name": "epoch_loss", "value": 1.5}],
            "wait_for": str(flag),
        },
    )
    try:
        value = wait_until(
            lambda: run.get_metrics().get("epoch_loss"), timeout=10, what="a live metric"
        )
        assert value == 1.5
        assert run.get_status() == "Running"
    finally:
        flag.touch()
    assert run.wait_for_completion()["status"] == "Completed"


def live_logs_folder(env: ConformanceEnv) -> None:
    flag = env.scratch / "live-logs-folder.go"
    run = env.submit(
        "logsfolder",
        f"""
        import os, time
        os.makedirs("logs", exist_ok=True)
        open("logs/progress.txt", "w").write("50%")
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.02)
        """,
        fake={"logs": {"progress.txt": "50%"}, "wait_for": str(flag)},
    )
    try:
        wait_until(
            lambda: "logs/progress.txt" in run.get_file_names(),
            timeout=10,
            what="./logs mirrored live",
        )
        assert run.get_status() == "Running"
        copy = Path(run.download_file("logs/progress.txt", str(env.scratch / "progress.txt")))
        assert copy.read_text() == "50%"
    finally:
        flag.touch()
    assert run.wait_for_completion()["status"] == "Completed"


def supervisor_death(env: ConformanceEnv) -> None:
    """A supervisor killed outright: the run ends Failed with the reason, what was recorded
    stays, and the job goes with the supervisor (its watchdog stops it; no reader signals)."""
    pid_file = env.scratch / "death.pid"
    run = env.submit(
        "death",
        f"""
        import os, time
        from ferry import Run
        run = Run.get_context()
        run.log("before", 1)
        run.flush()
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        time.sleep(300)
        """,
        fake={"spool": [{"k": "metric", "name": "before", "value": 1}], "run_seconds": 300},
    )
    if env.fake:
        pid_file.write_text("")  # the fake job is the supervisor itself
    wait_until(lambda: run.get_status() == "Running" and pid_file.exists(), what="the job to start")
    wait_until(lambda: run.get_metrics().get("before") == 1, timeout=15, what="the live metric")
    supervisor = wait_until(lambda: run.record.supervisor_pid, what="the supervisor pid")
    os.kill(supervisor, signal.SIGKILL)
    # NotResponding lasts a few heartbeats only; the end state is what must hold
    wait_until(lambda: run.get_status() == "Failed", timeout=60, what="Failed")
    assert "heartbeat" in run.get_details()["error"]["error"]["message"]
    assert run.get_metrics().get("before") == 1
    if not env.fake:
        job = int(pid_file.read_text())
        wait_until(lambda: not pid_alive(job), timeout=30, what="the orphaned job to die")


def forged_records(env: ConformanceEnv) -> None:
    """A job's spool (which comes back from the host or node for remote kinds) may write only
    its own run: records for another run, its own status and an escaping child id are dropped
    with notes; its own records after them still land; its exit code decides its status."""
    victim = env.submit("victim", "print('victim')\n", fake={"log": ["victim"]})
    assert victim.wait_for_completion()["status"] == "Completed"
    forged = [
        {"k": "tags", "run": victim.id, "set": {"tampered": "yes"}},
        {"k": "metric", "run": victim.id, "name": "injected", "value": 666},
        {"k": "status", "status": "Completed", "error": None},
        {"k": "child", "run": "../../escaped", "name": "x", "tags": {}},
        {"k": "tags", "set": {"own": "yes"}},
    ]
    run = env.submit(
        "forger",
        f"""
        import json, os, time
        spool, me = os.environ["FERRY_SPOOL_DIR"], os.environ["FERRY_RUN_ID"]
        records = {json.dumps(forged)!r}
        with open(os.path.join(spool, "forged.jsonl"), "w") as fh:
            for rec in json.loads(records):
                rec.setdefault("run", me)
                rec["ts"] = time.time()
                fh.write(json.dumps(rec) + "\\n")
        raise SystemExit(3)
        """,
        fake={"spool": forged, "exit_code": 3},
    )
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed", details  # exit 3, whatever the spool said
    assert run.get_tags().get("own") == "yes"
    assert "tampered" not in victim.get_tags()
    assert "injected" not in victim.get_metrics()
    assert victim.get_status() == "Completed"
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert log.count("spool record ignored") >= 4, log[-2000:]


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[ConformanceEnv], None]


SCENARIOS = [
    Scenario("success", success),
    Scenario("failure", failure),
    Scenario("cancel", cancel),
    Scenario("time_limit", time_limit),
    Scenario("live_log", live_log),
    Scenario("live_metrics", live_metrics),
    Scenario("live_logs_folder", live_logs_folder),
    Scenario("supervisor_death", supervisor_death),
    Scenario("forged_records", forged_records),
]
