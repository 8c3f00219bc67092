"""A supervisor started before its run: imported, its database connected, waiting for a run.

The server's supervisor pool (:mod:`ferry.server.worker`) keeps one of these ready, so a run
queued on the server starts without a fork of the zygote and without opening the database
(together ~60 ms of each remote run's queue time). The process writes ``ready`` on its
standard output once it can take a run, then reads one JSON line on its standard input:
``{"run": …, "log": …, "env": {…}}``. It then writes its output to the run's
``supervisor.log``, adds ``env`` (the run's token) to its environment and supervises the run
as ``python -m ferry.supervisor`` would. Standard input closed first (the server stopped):
it leaves without doing anything.

Example (what the pool does)::

    proc = subprocess.Popen([sys.executable, "-m", "ferry.server.standby", workspace], …)
    proc.stdin.write(b'{"run": "exp_1_ab", "log": "…/supervisor.log", "env": {}}\\n')
"""

from __future__ import annotations

import json
import os
import sys

READY = b"ready\n"


def main(workspace_path: str) -> int:
    from ferry import supervisor
    from ferry.workspace import Workspace

    workspace = Workspace(workspace_path)
    workspace.store.list_experiments()  # connected, schema checked: now, not when a run comes
    os.write(1, READY)
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return 0
    request = json.loads(line)
    fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    # what supervise_detached_child does after opening the workspace, which is open already
    return supervisor.supervise(workspace, str(request["run"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
