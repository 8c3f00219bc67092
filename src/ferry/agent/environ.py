"""A job's environment from a request: the base (the machine's own), plus, minus (stdlib only).

The library builds the request once for every target (:func:`ferry.targets.jobenv.job_request`);
whichever machine starts the job applies it to its own environment here, so the runtime
protocol's variables (``docs/runtime-protocol.md``) are spelled in one place and never carry the
submitting machine's paths or secrets.

Example::

    env = apply_request(os.environ, {"set": {"FERRY_RUN_ID": "e_1_ab"},
                                     "prepend": {"PYTHONPATH": "/rt"}, "unset": ["X"]})
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Mapping

#: ferry's own variables that no job sees (its secrets; where its database is)
NOT_FOR_JOBS = (
    "FERRY_SSH_PASSWORD",
    "FERRY_SSH_KEY_PASSPHRASE",
    "FERRY_TOKEN",
    "FERRY_DATABASE_URL",
)


def without_ferry_secrets(base: Mapping[str, str]) -> Dict[str, str]:
    return {k: v for k, v in base.items() if not k.startswith(NOT_FOR_JOBS)}


def apply_request(base: Mapping[str, str], request: Mapping[str, Any]) -> Dict[str, str]:
    """``base`` without ferry's secrets, with the request's ``set``, ``prepend`` (path lists,
    in front of what ``base`` has) and ``unset`` applied, in that order."""
    env = without_ferry_secrets(base)
    env.update({str(k): str(v) for k, v in (request.get("set") or {}).items()})
    for key, value in (request.get("prepend") or {}).items():
        old = env.get(key)
        env[key] = str(value) + (os.pathsep + old if old else "")
    unset: Iterable[str] = request.get("unset") or ()
    for key in unset:
        env.pop(key, None)
    return env
