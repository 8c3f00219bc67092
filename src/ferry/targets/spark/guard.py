"""Keeps a Spark job from outliving its supervisor (run as a script: stdlib only).

``python guard.py SUPERVISOR_PID COMMAND…`` runs COMMAND (spark-submit) in the guard's own process
group and exits with its code. spark-submit's JVM starts the Python driver: a parent-death signal
on the JVM alone would orphan the driver. So the supervisor starts the guard with
``PR_SET_PDEATHSIG`` = :data:`PARENT_DIED`, and the guard answers that signal by killing its whole
group. (pyspark's worker daemon makes a group of its own; it ends itself and its Python workers
when the JVM's pipe to it closes, which the group's death brings about.) A cancel TERMs the whole
group: the guard outlives it and reports the job's own exit, so the supervisor's grace period
applies to Spark's shutdown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

PARENT_DIED = signal.SIGUSR1


def _kill_group(signum: int = 0, frame: object = None) -> None:
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    supervisor, command = int(argv[0]), argv[1:]
    signal.signal(PARENT_DIED, _kill_group)
    # the group is TERMed on cancel: wait for the job instead (a handler, not SIG_IGN, so that
    # the job does not inherit an ignored TERM)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    if os.getppid() != supervisor:  # the supervisor died before the handler was in place
        _kill_group()
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"ferry: cannot start {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    code = child.wait()
    if code < 0:  # killed by a signal: end the same way, so the supervisor sees it
        if -code in (signal.SIGTERM, PARENT_DIED):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
