"""A job's container, seen from the machine that runs it (stdlib only, Python 3.8+).

A rank of a Docker run is Docker's own client in the foreground: ``docker run --rm --init``
with the run folder mounted, the host's network and process view, the submitting user's uid:gid,
and the job's
variables passed by name (``-e NAME``: their values stay off the command line). The client
streams the container's output into the rank's log and exits with its exit code, so the
watchdog minds it like any process. What the client cannot promise — a container stopped when
the client itself is killed — the watchdog does through the engine's API, by the container's
name (:func:`kill`): on cancel, on a time limit, when the supervisor is gone, and for whatever
is left when the job ends. An MPI run's ranks are containers that ``mpirun`` starts, one per
rank (:mod:`ferry.agent.mpi_rank`): the watchdog knows them by one name ending in ``*``,
``ferry-<run id>-*``, which :func:`kill` takes as every container whose name starts so. This
module is that small API client (a few calls over the engine's
Unix socket or plain TCP); builds and everything else use the ``docker`` library.

The engine is found as Docker's own clients find it: ``DOCKER_HOST``, else the default socket.

Example::

    argv = run_argv({"image": "ferry-env:5f0c…", "name": "ferry-e_1_ab-0", "user": "1000:1000",
                     "workdir": "/ws/runs/e_1_ab/wd", "mounts": [["/ws/runs/e_1_ab", False]],
                     "env_names": ["FERRY_RUN_ID"], "command": ["python", "train.py"]})
    kill(engine_address(os.environ), "ferry-e_1_ab-0", "TERM")
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import socket
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote, urlparse

DEFAULT_HOST = "unix:///var/run/docker.sock"
#: how long one API call may take (the watchdog must not hang on a stuck engine)
CALL_SECONDS = 5.0


class EngineError(Exception):
    """The engine could not be reached, or answered with an error."""


def engine_address(environ: Mapping[str, str]) -> str:
    """``DOCKER_HOST``, else the default socket (as Docker's own clients)."""
    return (environ.get("DOCKER_HOST") or "").strip() or DEFAULT_HOST


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _connection(address: str, timeout: float) -> http.client.HTTPConnection:
    url = urlparse(address)
    if url.scheme == "unix":
        return _UnixConnection(url.path or address[len("unix://") :], timeout)
    if url.scheme in ("tcp", "http"):
        return http.client.HTTPConnection(
            url.hostname or "127.0.0.1", url.port or 2375, timeout=timeout
        )
    raise EngineError(
        "the Docker engine at %r cannot be reached by ferry's container stopper (a unix:// "
        "socket or a plain tcp:// address is needed)" % address
    )


def call(
    address: str, method: str, path: str, body: Any = None, timeout: float = CALL_SECONDS
) -> Tuple[int, bytes]:
    """One API request; returns the status and the body. EngineError when unreachable."""
    conn = _connection(address, timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise EngineError("the Docker engine at %s did not answer: %s" % (address, exc)) from exc
    finally:
        conn.close()


def ping(address: str, timeout: float = CALL_SECONDS) -> None:
    """The engine answers (``/_ping``: ~0.5 ms, where ``/version`` takes ~8 ms); EngineError
    when it does not."""
    status, _ = call(address, "GET", "/_ping", timeout=timeout)
    if status != 200:
        raise EngineError("the Docker engine at %s answered %d" % (address, status))


def version(address: str, timeout: float = CALL_SECONDS) -> Dict[str, Any]:
    """The engine's ``/version`` (EngineError when it is not running)."""
    status, data = call(address, "GET", "/version", timeout=timeout)
    if status != 200:
        raise EngineError("the Docker engine at %s answered %d" % (address, status))
    answer: Dict[str, Any] = json.loads(data.decode("utf-8", "replace"))
    return answer


def inspect_image(address: str, ref: str) -> Optional[Dict[str, Any]]:
    """The image's description, or None when the engine has no such image."""
    status, data = call(address, "GET", "/images/%s/json" % quote(ref, safe=""))
    if status == 404:
        return None
    if status != 200:
        raise EngineError("inspecting image %s: %s" % (ref, data[:300].decode("utf-8", "replace")))
    answer: Dict[str, Any] = json.loads(data.decode("utf-8", "replace"))
    return answer


def kill(address: str, name: str, signal_name: str = "KILL") -> bool:
    """Send a signal to the container ``name``; False when it is not running (or gone).

    A name ending in ``*`` names every running container whose name starts with the rest (the
    ranks of an MPI run, which mpirun starts): True when any of them was signalled."""
    if name.endswith("*"):
        return any([kill(address, box, signal_name) for box in named_like(address, name[:-1])])
    try:
        status, _ = call(
            address, "POST", "/containers/%s/kill?signal=%s" % (quote(name, safe=""), signal_name)
        )
    except EngineError:
        return False
    return status == 204


def named_like(address: str, prefix: str) -> List[str]:
    """The names of the running containers whose names start with ``prefix`` ([] when the
    engine does not answer)."""
    filters = json.dumps({"name": [prefix]})  # the engine's filter matches anywhere in the name
    try:
        status, data = call(address, "GET", "/containers/json?filters=%s" % quote(filters))
    except EngineError:
        return []
    if status != 200:
        return []
    names = [n.lstrip("/") for box in json.loads(data.decode("utf-8", "replace"))
             for n in box.get("Names") or []]  # fmt: skip
    return [n for n in names if n.startswith(prefix)]


def running(address: str, name: str) -> bool:
    """True while the container ``name`` exists and runs."""
    try:
        status, data = call(address, "GET", "/containers/%s/json" % quote(name, safe=""))
    except EngineError:
        return False
    if status != 200:
        return False
    return bool(json.loads(data.decode("utf-8", "replace")).get("State", {}).get("Running"))


def _mount_option(source: str, target: str, read_only: bool) -> str:
    """``--mount``'s CSV field list, quoted so that any path (commas, quotes, spaces) works."""
    fields = ["type=bind", "source=" + source, "target=" + target]
    if read_only:
        fields.append("readonly")
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def run_argv(spec: Mapping[str, Any]) -> List[str]:
    """The ``docker run`` command line of one rank (see the module docstring).

    ``spec``: ``image``, ``command``, ``name`` (only an MPI rank's launcher adds its own); optionally ``docker`` (the client, default
    ``docker``), ``user`` ("uid:gid"), ``workdir``, ``mounts`` (``[path, read_only]`` each,
    mounted at the same path), ``env_names`` (passed by name from the client's environment),
    ``env`` (small values given inline), ``shm_size``, ``gpus`` (True: every GPU),
    ``labels`` and ``arguments`` (the user's own ``docker run`` options, last before the image).
    """
    argv = [str(spec.get("docker") or "docker"), "run", "--rm", "--init"]
    # the host's process view: the job's pids are the machine's (lifelines and pid files keep
    # their meaning), and when the container ends, every process left in it ends too
    if spec.get("name"):  # an MPI rank's name is added by its launcher
        argv += ["--name", str(spec["name"])]
    argv += ["--network", "host", "--pid", "host"]
    argv += ["--env", "TINI_SUBREAPER=1"]  # --init's tini reaps orphans without being pid 1
    if spec.get("user"):
        argv += ["--user", str(spec["user"])]
    if spec.get("workdir"):
        argv += ["--workdir", str(spec["workdir"])]
    if spec.get("shm_size"):
        argv += ["--shm-size", str(spec["shm_size"])]
    for key, value in sorted((spec.get("labels") or {}).items()):
        argv += ["--label", "%s=%s" % (key, value)]
    for path, read_only in spec.get("mounts") or []:
        argv += ["--mount", _mount_option(str(path), str(path), bool(read_only))]
    for name in spec.get("env_names") or []:
        argv += ["--env", str(name)]
    for key, value in sorted((spec.get("env") or {}).items()):
        argv += ["--env", "%s=%s" % (key, value)]
    if spec.get("gpus"):
        argv += ["--gpus", "all"]
    argv += [str(a) for a in spec.get("arguments") or []]
    argv.append(str(spec["image"]))
    argv += [str(c) for c in spec["command"]]
    return argv
