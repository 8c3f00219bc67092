"""Code that runs next to the job, on any machine: standard library only, Python 3.8+.

Nothing here imports the rest of ferry (or anything outside the standard library), so the same
files serve the local target (started as a script with ``python -I -S``), SSH hosts (shipped as
files) and Ray nodes (shipped by value). Each module has one job:

- :mod:`.proc` — processes: liveness probes, exit codes, the tree of a job's descendants, kills.
- :mod:`.logcap` — a run log with a size cap that keeps the head and the tail, and its reader.
- :mod:`.watchdog` — runs a job's processes, pumps their output into capped logs, stops every
  descendant on cancel, on the supervisor's death and when the job ends.
"""
