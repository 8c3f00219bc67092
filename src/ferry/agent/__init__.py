"""Code that runs next to jobs, on any machine: standard library only, Python 3.8+.

Nothing here imports the rest of ferry (or anything outside the standard library), so the same
files serve the local target (the watchdog started as a script with ``python -S -E -s``), SSH
hosts (the package shipped as files, content-addressed: :mod:`.bundle`) and Ray nodes (imported
by the driver and pickled by value; the watchdog's files written on the node). The library
imports the same helpers instead of keeping copies. Each module has one job:

- :mod:`.proc` — processes: liveness probes, exit codes, the tree of a job's descendants, kills.
- :mod:`.logcap` — a run log with a size cap that keeps the head and the tail, and its reader.
- :mod:`.watchdog` — runs a job's processes, pumps their output into capped logs, stops every
  descendant on cancel, on the supervisor's death (a closed pipe, an expired lease) and when
  the job ends.
- :mod:`.environ` — the job's environment from the library's request.
- :mod:`.files` — atomic writes and appends; private folders, checked.
- :mod:`.store` — a content-addressed blob cache and safe materialisation of a snapshot.
- :mod:`.hostenv` — environments built on a host or node with uv or venv + pip.
- :mod:`.jobs` — a job started detached on an SSH host, its lifelines and its cancel.
- :mod:`.serve` and :mod:`.daemon` — the SSH agent's protocol, per channel or as a daemon.
- :mod:`.follow` — the follower of a run: its logs, spool and watched files streamed as frames.
- :mod:`.bundle` — the package's own files, as shipped.
- :mod:`.mpirun` — finds Open MPI's ``mpirun`` and makes an MPI job's command line (local
  target and SSH hosts alike).
- :mod:`.mpi_rank` — one MPI rank's launcher (its log, or its container), which mpirun starts.
"""
