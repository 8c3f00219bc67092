"""Docker environments (issue 13): run overhead in a container, reuse, cold build.

* run overhead: ``ferry submit hello.py --env boxed`` (an environment with ``docker.enabled``,
  its image cached) against ``docker run --rm IMAGE python -c 1`` on the same engine;
* reuse: finding a cached environment image (``lookup_image``: one inspect over the socket);
* cold build with scikit-learn: ferry (uv in a build container, this machine's pip settings,
  an empty uv cache volume) against ``docker build --no-cache`` of the equivalent Dockerfile
  with pip (same base image with pip added beforehand, untimed; PyPI through the host network
  with this machine's CA bundle).

It starts its own dockerd (private socket under bench/.work, no bridge, no iptables) unless
``DOCKER_HOST`` names a running engine.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from _common import VENV_BIN, WORK, median, run, scratch, timed, write_result

REPEAT = 15
SKLEARN = "scikit-learn==1.9.1"
BASE_CACHE = Path.home() / ".cache" / "ferry-tests" / "docker-base"


def start_engine() -> tuple[subprocess.Popen[bytes] | None, str]:
    if os.environ.get("DOCKER_HOST"):
        return None, os.environ["DOCKER_HOST"]
    root = WORK / "dk"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    sock = root / "docker.sock"
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - open while dockerd runs
    proc = subprocess.Popen(
        ["dockerd", f"--host=unix://{sock}", f"--data-root={root / 'data'}",
         f"--exec-root={root / 'exec'}", f"--pidfile={root / 'pid'}", "--iptables=false",
         "--ip-masq=false", "--bridge=none", "--ip6tables=false",
         "--containerd-namespace=ferry-bench", "--containerd-plugins-namespace=ferry-bench-p"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    from ferry.agent import container

    address = f"unix://{sock}"
    for _ in range(600):
        try:
            container.version(address, timeout=1)
            return proc, address
        except container.EngineError:
            time.sleep(0.1)
    raise SystemExit("dockerd did not start; see bench/.work/dk/dockerd.log")


def stop_engine(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    root = WORK / "dk"
    for folder in ("exec/netns/default", "exec", "data"):
        subprocess.run(["umount", "-R", str(root / folder)], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


def overhead(work: Path, env: dict[str, str]) -> dict[str, Any]:
    from ferry import Environment, Workspace

    src = work / "src"
    src.mkdir()
    (src / "hello.py").write_text("print('hello')\n")
    ferry = str(VENV_BIN / "ferry")
    run([ferry, "submit", str(src / "hello.py"), "-e", "warmup"], env)  # creates the workspace
    os.environ.update(env)
    ws = Workspace.from_config()
    boxed = Environment("boxed")
    boxed.docker._enabled = True
    boxed.register(ws)
    submit = [ferry, "submit", str(src / "hello.py"), "-e", "bench", "--env", "boxed"]
    run(submit, env)  # builds the image once
    image = json.loads(run([ferry, "runs", "list", "-e", "bench", "--json", "-n", "1"], env).stdout)
    docker = shutil.which("docker") or "docker"
    from ferry.envbuild.docker_spec import docker_hash

    tag = f"ferry-env:{docker_hash(boxed.to_spec())}"
    anchor, full, plain = [], [], []
    for _ in range(REPEAT):
        anchor.append(timed(lambda: run([docker, "run", "--rm", tag, "python", "-c", "1"], env)))
        full.append(timed(lambda: run(submit, env)))
        plain.append(timed(lambda: run([ferry, "submit", str(src / "hello.py"), "-e", "p"], env)))
    shown = json.loads(run([ferry, "runs", "show", image[0]["runId"], "--json"], env).stdout)
    return {
        "anchor": median(anchor), "ferry": median(full), "plain": median(plain), "tag": tag,
        "timings": shown.get("timings") or {},
    }  # fmt: skip


def reuse(address: str) -> dict[str, float]:
    from ferry import Environment
    from ferry.envbuild.docker_build import lookup_image

    env = Environment("boxed")
    env.docker._enabled = True
    spec = env.to_spec()
    times = []
    for _ in range(200):
        t = time.perf_counter()
        assert lookup_image(spec, address) is not None
        times.append(time.perf_counter() - t)
    times.sort()
    return {"median": median(times), "p95": times[189], "max": times[-1]}


def cold_build(work: Path, address: str) -> dict[str, Any]:
    from ferry import Environment
    from ferry.envbuild.docker_base import base_tag
    from ferry.envbuild.docker_build import ensure_image
    from ferry.envbuild.docker_engine import client

    dc = client(address)
    for volume in dc.volumes.list(filters={"name": "ferry-uv-cache"}):
        volume.remove(force=True)
    env = Environment("sk-bench")
    env.docker._enabled = True
    env.python.conda_dependencies.add_pip_package(SKLEARN)
    lines: list[str] = []
    t = time.perf_counter()
    image = ensure_image(env.to_spec(), address, log=lines.append, lock_dir=work / "locks")
    ferry_seconds = time.perf_counter() - t
    # the anchor: the same base with pip added (untimed), then a timed build with pip
    cert = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = (f"FROM {base_tag()}\nRUN apt-get update -qq && apt-get install -y -qq "
                      "python3-pip > /dev/null\n").encode()  # fmt: skip
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    dc.images.build(
        fileobj=context, custom_context=True, tag="ferry-bench-pip:1", network_mode="host"
    )
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = (
            "FROM ferry-bench-pip:1\nCOPY ca.crt /ca.crt\n"
            f"RUN PIP_CERT=/ca.crt pip install --no-cache-dir --break-system-packages '{SKLEARN}'\n"
        ).encode()
        for name, data in (("Dockerfile", dockerfile), ("ca.crt", cert.read_bytes())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    t = time.perf_counter()
    dc.images.build(
        fileobj=context, custom_context=True, tag="ferry-bench-anchor:1", nocache=True,
        network_mode="host",
    )  # fmt: skip
    anchor_seconds = time.perf_counter() - t
    versions = dc.containers.run(
        image.tag, ["python", "-c", "import sklearn, numpy; print(sklearn.__version__)"],
        remove=True,
    ).decode().strip()  # fmt: skip
    sources = next((line for line in lines if "package sources" in line), "")
    dc.close()
    return {"ferry": ferry_seconds, "anchor": anchor_seconds, "version": versions,
            "packages": len((image.lock or "").splitlines()), "sources": sources}  # fmt: skip


#: measured by hand (not by this script), kept with every regenerated result
NOTES = """
Runs of this benchmark (overhead on top of `docker run`; cold build ratio):

| when | overhead | cold build |
|---|---|---|
| 2026-12-01 07:27 | 290 ms | 6.4 s / 8.9 s = 0.72× |
| 2026-12-01 11:16 | 197 ms | 6.6 s / 11.0 s = 0.60× |
| 2026-12-01 11:18 | 195 ms | 10.2 s / 12.5 s = 0.82× |

Where a Docker run's time goes now (medians of 7 runs with timestamps at each step, by hand,
2026-12-01 11:00; ms from the shell's start): the `ferry` client is up at 13 (Python's own
start; its imports are ~2 ms since it loads only `marshal`, `_socket`, `_signal`, `zlib`), the
zygote's worker has taken its place at 23, the CLI has the environment at 40 (the worker's first
database use: ~12 ms), the snapshot (two git processes at once) is taken at 53, the run recorded
at 60, its supervisor asked for at 71; the supervisor has read its run at 90 (its first database
use, again ~12 ms), found the image at 103 (one inspect), and the watchdog has started the
`docker run` client at 139; the container's own start and end take what `docker run` takes
(+15 ms for `--pid host`, the mounts and variables); the run is final 9 ms after the client
exits, and the `ferry` command ends ~15 ms later. The last session cut ~95 ms from this path:
the zygote preloads what each run imported on its own (~25–35 ms), the client's imports
(~25 ms), the engine pinged instead of asked its version (2 × 7 ms), the watchdog no longer
imports the engine's client at the end of every Docker run (~50 ms on that path), a pidfd
wait and a 5 ms log poll for short runs (~15 ms), a run read in one statement.

The cold build (5.3 s on a quiet machine): starting the build container 0.16 s, uv resolving,
fetching and installing 8 packages 1.25 s, byte-compiling them (tests left out) 1.5 s, then the
engine committing the container: 2.3 s for a 238 MB layer (written out as a tar and unpacked
into a new layer folder). The anchor's `RUN pip install` commits a layer of the same packages
the same way, so the commit is common to both; ferry's lead is uv and the smaller compile. The
ratio moves with the machine's load (0.60–0.82× above): ≤ 0.5× is not met.
"""


def main() -> None:
    work = scratch("docker")
    BASE_CACHE.mkdir(parents=True, exist_ok=True)
    os.environ["FERRY_DOCKER_BASE_CACHE"] = str(BASE_CACHE)
    proc, address = start_engine()
    os.environ["DOCKER_HOST"] = address
    env = {"FERRY_HOME": str(work / "ws"), "DOCKER_HOST": address,
           "FERRY_DOCKER_BASE_CACHE": str(BASE_CACHE)}  # fmt: skip
    try:
        o = overhead(work, env)
        r = reuse(address)
        c = cold_build(work, address)
    finally:
        stop_engine(proc)
    extra = o["ferry"] - o["anchor"]
    phases = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(o["timings"].items()))
    write_result(
        "docker",
        f"""
## Docker environments (issue 13)

Engine: Debian's dockerd 20.10 started by the benchmark (private socket, host network); ferry's
default base image (Debian bookworm from mmdebstrap, Python 3.11). Medians of {REPEAT} runs.

| what | ferry | anchor | time | ratio |
|---|---|---|---|---|
| run a one-line script in a cached Docker environment (`ferry submit --env boxed`, waits) | {o["ferry"] * 1000:.0f} ms | `docker run --rm IMAGE python -c 1` | {o["anchor"] * 1000:.0f} ms | {o["ferry"] / o["anchor"]:.2f}× |
| find a cached environment image (`lookup_image`, median of 200) | {r["median"] * 1000:.2f} ms | goal | 50 ms | {r["median"] / 0.05:.3f}× |
| cold build with {SKLEARN} | {c["ferry"]:.1f} s | `docker build --no-cache` with pip | {c["anchor"]:.1f} s | {c["ferry"] / c["anchor"]:.2f}× |

- run overhead on top of `docker run`: **{extra * 1000:.0f} ms** (goal ≤ 200 ms); the same
  script without Docker (`ferry submit hello.py`): {o["plain"] * 1000:.0f} ms. Phases of the
  first Docker run (it built the image): {phases}.
- reuse: p95 {r["p95"] * 1000:.2f} ms, max {r["max"] * 1000:.2f} ms (one inspect request on the
  engine's socket; the `docker` library is not imported on this path).
- cold build: ferry installed {c["packages"]} packages (scikit-learn {c["version"]}) with uv in
  a build container, its uv cache volume emptied first; {c["sources"].strip()}. The anchor's
  pip reads PyPI only (a `docker build` cannot mount this machine's index folders); its base
  image got pip beforehand, untimed.
{NOTES}""",
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    main()
