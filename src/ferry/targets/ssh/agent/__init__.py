"""ferry's agent on an SSH host: the one program ferry runs there (stdlib only, Python 3.8+).

This folder is shipped as is, once per content hash, to ``<work_dir>/bin/agent-<hash>/ferry_agent``
and started over one SSH channel (:mod:`.serve` speaks the protocol). Nothing in it imports ferry:
the modules only use each other and the standard library.

Layout under the remote work folder::

    bin/agent-<hash>/ferry_agent/   this package
    blobs/ab/cdef…                  the content-addressed cache shared by all runs (:mod:`.store`)
    runtime/runtime-<hash>/         ferry's in-job runtime, put on the job's PYTHONPATH
    envs/<spec-hash>/               built environments, reused by later runs (:mod:`.envs`)
    runs/<run-id>/                  wd/, user_logs/std_log.txt, spool/, lease, job.json, exit.json
    tmp/                            uploads in progress (renamed into place when complete)
"""
