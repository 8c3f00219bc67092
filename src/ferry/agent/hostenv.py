"""Environments built on an SSH host or a Ray node, once per specification hash, then reused.

``<root>/envs/<hash>/`` is built with uv when the machine has it (``uv venv`` + ``uv pip
install``), else with ``python -m venv`` + pip (``--without-pip`` when there is nothing to
install). Which of the two is part of the hash (the request's ``recipe``, see
``ferry.envbuild.spechash``): the agent builds with the recipe asked for, or refuses. A file
lock per hash turns concurrent builds into one; the marker ``.ferry-env.json`` is written last,
so a failed or killed build is never reused (the next run removes the half-built folder and
starts again). The build's output goes to ``say`` line by line (streamed to the client).

Example::

    facts = build_env(root, {"hash": digest, "interpreter": "python3", "packages": ["six"],
                             "recipe": RECIPE_ANY}, print)
    facts["python"]          # <root>/envs/<hash>/bin/python
"""

from __future__ import annotations

import os
import shutil
import time
from typing import TYPE_CHECKING, Any

from .files import write_json

if TYPE_CHECKING:  # an alias evaluated at run time would need Python 3.9 (Callable[...])
    from collections.abc import Callable

    Say = Callable[[str], None]

MARKER = ".ferry-env.json"
LOCK_TEXT = "lock.txt"
# The same names as ferry.envbuild.spechash (this package cannot import ferry); bump with it.
RECIPE_UV = "agent-uv-1"
RECIPE_VENV = "agent-venv-1"
RECIPE_ANY = "agent-1"  # the client did not know whether uv is here: use it if it is


def find_uv(setting: str) -> str | None:
    """uv to build with: ``setting`` when a path, never when ``"none"``, else found on the host."""
    if setting == "none":
        return None
    if setting:
        path = os.path.expanduser(setting)
        return path if os.access(path, os.X_OK) else None
    found = shutil.which("uv")
    if found:
        return found
    for guess in ("~/.local/bin/uv", "~/.cargo/bin/uv"):
        path = os.path.expanduser(guess)
        if os.access(path, os.X_OK):
            return path
    return None


def env_facts(folder: str) -> dict[str, Any] | None:
    """What a run needs from a built environment, or None when it is not (completely) built."""
    marker = os.path.join(folder, MARKER)
    if not os.path.exists(marker):
        return None
    os.utime(marker)  # last use, for pruning
    try:
        with open(os.path.join(folder, LOCK_TEXT), encoding="utf-8") as fh:
            lock: str | None = fh.read()
    except OSError:
        lock = None
    return {"folder": folder, "python": os.path.join(folder, "bin", "python"), "lock": lock}


def build_env(root: str, req: dict[str, Any], say: Say) -> dict[str, Any]:
    """Build ``req["hash"]`` under ``<root>/envs`` unless it is there; returns its facts."""
    import fcntl

    digest = str(req["hash"])
    if not digest or not set(digest) <= set("0123456789abcdef"):
        raise ValueError(f"bad environment hash {digest!r}")
    envs = os.path.join(root, "envs")
    os.makedirs(envs, exist_ok=True)
    final = os.path.join(envs, digest)
    with open(os.path.join(envs, f".{digest}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run building the same hash: wait for it
        facts = env_facts(final)
        if facts is not None:
            facts["built"] = False
            return facts
        if os.path.lexists(final):
            shutil.rmtree(final)
        try:
            _build(final, req, say)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        facts = env_facts(final)
        assert facts is not None
        facts["built"] = True
        return facts


def _build(final: str, req: dict[str, Any], say: Say) -> None:
    import shlex

    packages = [str(p) for p in req.get("packages") or []]
    options = [arg for option in req.get("options") or [] for arg in shlex.split(str(option))]
    python = os.path.join(final, "bin", "python")
    recipe = str(req.get("recipe") or RECIPE_ANY)
    if recipe not in (RECIPE_UV, RECIPE_VENV, RECIPE_ANY):
        raise RuntimeError(f"this agent does not know the build recipe {recipe!r}")
    uv = None if recipe == RECIPE_VENV else find_uv(str(req.get("uv") or ""))
    if uv is None and recipe == RECIPE_UV:
        raise RuntimeError(
            f"uv {req.get('uv') or ''!r} is not on this host, and the environment's hash stands "
            "for a uv build; set the target's uv='' (find it on PATH), a path that exists, or "
            "uv='none' to build with python -m venv"
        )
    if uv:
        say(f"building with {uv}")
        wanted = str(req.get("python") or req["interpreter"])
        run_logged([uv, "venv", "--quiet", "--python", wanted, final], say)
        if packages:
            run_logged([uv, "pip", "install", "--python", python, *options, *packages], say)
        lock = capture([uv, "pip", "freeze", "--python", python])
    else:
        base = choose_python(req.get("python"), str(req["interpreter"]))
        say(f"building with {base} -m venv (uv is not on this host)")
        run_logged([base, "-m", "venv", *([] if packages else ["--without-pip"]), final], say)
        lock = ""
        if packages:
            pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
            run_logged([*pip, "install", *options, *packages], say)
            lock = capture([*pip, "freeze", "--all"])
    with open(os.path.join(final, LOCK_TEXT), "w", encoding="utf-8") as fh:
        fh.write(lock)
    write_json(
        os.path.join(final, MARKER), {"hash": os.path.basename(final), "created": time.time()}
    )


def version_of(python: str) -> str | None:
    """``"3.11.7"`` for an interpreter, or None when it cannot be run."""
    try:
        return capture(
            [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]
        ).strip()
    except (OSError, RuntimeError):
        return None


def choose_python(wanted: Any, interpreter: str) -> str:
    """The interpreter to make a venv from: the configured one if its version fits."""
    have = version_of(interpreter)
    if have is None:
        raise RuntimeError(f"cannot run the interpreter {interpreter!r} on this host")
    if wanted is None or (have + ".").startswith(f"{wanted}."):
        return interpreter
    short = ".".join(str(wanted).split(".")[:2])
    other = shutil.which("python" + short)
    if other and ((version_of(other) or "") + ".").startswith(f"{wanted}."):
        return other
    raise RuntimeError(
        f"the environment asks for Python {wanted}; this host has {have} at {interpreter!r} "
        f"and no python{short} on its PATH (install it, or install uv, which fetches Pythons)"
    )


def run_logged(argv: list[str], say: Say) -> None:
    import subprocess

    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    except OSError as exc:
        raise RuntimeError(f"cannot run {argv[0]!r}: {exc.strerror}") from None
    tail: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip()
        tail = [*tail[-19:], line]
        say(line)
    if proc.wait() != 0:
        raise RuntimeError(
            f"{' '.join(argv[:3])} failed (exit {proc.returncode}): " + "\n".join(tail[-5:])
        )


def capture(argv: list[str]) -> str:
    import subprocess

    proc = subprocess.run(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: " + proc.stdout.decode("utf-8", "replace"))
    return proc.stdout.decode("utf-8", "replace")
