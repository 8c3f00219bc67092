"""The user's package-index settings, read as pip reads them, handed to uv as arguments.

uv does not read pip's configuration, yet a machine with a private index or a wheelhouse is set up
for pip. This module reads pip's configuration files in pip's order (site-wide, user, the running
virtual environment's, ``$PIP_CONFIG_FILE``; ``[global]`` then ``[install]``) and the ``PIP_*``
variables, and turns the index URL, extra index URLs, find-links, constraint files, trusted hosts
and the certificate bundle into uv arguments. A setting the user gave uv itself through a ``UV_*``
variable wins over pip's. With extra indexes, uv is asked to pick the best version across all of
them, as pip does (uv's default stops at the first index that knows a package).

Example::

    settings = read_pip_settings()
    uv_arguments(settings, spec_options=["--extra-index-url https://idx/simple"])
"""

from __future__ import annotations

import configparser
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_TRUE = {"1", "yes", "true", "on", "y"}
_MULTI = {"extra-index-url", "find-links", "constraint", "trusted-host"}
_KEYS = {"index-url", "no-index", "pre", "cert", *_MULTI}


@dataclass(frozen=True)
class IndexSettings:
    """Where packages come from, as pip is configured on this machine."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    no_index: bool = False
    pre: bool = False
    cert: str | None = None
    files: tuple[str, ...] = field(default=(), compare=False)


def pip_config_files(
    environ: Mapping[str, str], home: Path, prefix: str = sys.prefix
) -> list[Path]:
    """pip's configuration files, lowest precedence first (pip's ``iter_config_files``)."""
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(Path("/etc/pip.conf"))
    if not (env_file and Path(env_file).exists()):
        xdg_home = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        files += [home / ".pip" / "pip.conf", Path(xdg_home) / "pip" / "pip.conf"]
    files.append(Path(prefix) / "pip.conf")
    if env_file:
        files.append(Path(env_file))
    return files


def _read_file(path: Path) -> dict[str, str]:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return {}  # pip itself would stop here; a broken file must not stop a run
    values: dict[str, str] = {}
    for section in ("global", "install"):
        if parser.has_section(section):
            for key, value in parser.items(section):
                values[key.lower().replace("_", "-")] = value
    return values


def read_pip_settings(
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    prefix: str = sys.prefix,
) -> IndexSettings:
    """The index settings pip would use here: config files, then ``PIP_*`` variables."""
    environ = os.environ if environ is None else environ
    home = home if home is not None else Path(environ.get("HOME") or Path.home())
    merged: dict[str, str] = {}
    read: list[str] = []
    for path in pip_config_files(environ, home, prefix):
        if path.is_file():
            read.append(str(path))
            merged.update({k: v for k, v in _read_file(path).items() if k in _KEYS})
    for key in _KEYS:
        value = environ.get("PIP_" + key.upper().replace("-", "_"))
        if value is not None:
            merged[key] = value

    def many(key: str) -> tuple[str, ...]:
        return tuple(merged.get(key, "").split())

    return IndexSettings(
        index_url=merged.get("index-url") or None,
        extra_index_urls=many("extra-index-url"),
        find_links=many("find-links"),
        constraints=many("constraint"),
        trusted_hosts=many("trusted-host"),
        no_index=merged.get("no-index", "").strip().lower() in _TRUE,
        pre=merged.get("pre", "").strip().lower() in _TRUE,
        cert=merged.get("cert") or None,
        files=tuple(read),
    )


def _spec_values(spec_options: Sequence[str], name: str) -> list[str]:
    out = []
    for option in spec_options:
        head, _, value = option.partition(" ")
        if head == name:
            out.append(value.strip())
    return out


def uv_arguments(
    settings: IndexSettings,
    spec_options: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """uv ``pip install`` arguments: the spec's own options, then pip's settings.

    ``spec_options`` are canonical pip options from the environment's specification
    (``--index-url URL`` ...); they always apply. pip's settings apply unless the user set the
    matching ``UV_*`` variable.
    """
    environ = os.environ if environ is None else environ

    def unset(*names: str) -> bool:
        return not any(environ.get(n) for n in names)

    args: list[str] = []
    index = _spec_values(spec_options, "--index-url")
    if index:
        args += ["--index-url", index[-1]]
    elif settings.index_url and unset("UV_INDEX_URL", "UV_DEFAULT_INDEX"):
        args += ["--index-url", settings.index_url]
    extras = _spec_values(spec_options, "--extra-index-url")
    if unset("UV_EXTRA_INDEX_URL", "UV_INDEX"):
        extras += [u for u in settings.extra_index_urls if u not in extras]
    for url in extras:
        args += ["--extra-index-url", url]
    links = _spec_values(spec_options, "--find-links")
    if unset("UV_FIND_LINKS"):
        links += [u for u in settings.find_links if u not in links]
    for link in links:
        args += ["--find-links", link]
    hosts = _spec_values(spec_options, "--trusted-host")
    if unset("UV_INSECURE_HOST"):
        hosts += list(settings.trusted_hosts)
    for host in dict.fromkeys(hosts):
        args += ["--allow-insecure-host", host]
    if "--no-index" in spec_options or (settings.no_index and unset("UV_NO_INDEX")):
        args.append("--no-index")
    if "--pre" in spec_options or (settings.pre and unset("UV_PRERELEASE")):
        args += ["--prerelease", "allow"]
    if unset("UV_CONSTRAINT"):
        for constraint in settings.constraints:
            if Path(constraint).expanduser().is_file():
                args += ["--constraint", str(Path(constraint).expanduser())]
    if extras and unset("UV_INDEX_STRATEGY"):
        args += ["--index-strategy", "unsafe-best-match"]
    return args


def uv_environment(
    settings: IndexSettings, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Variables for uv: never download an interpreter; pip's certificate bundle if set."""
    environ = os.environ if environ is None else environ
    env = dict(environ)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.pop("VIRTUAL_ENV", None)  # the target is always named with --python
    if (
        settings.cert
        and not environ.get("SSL_CERT_FILE")
        and not environ.get("UV_NATIVE_TLS")
        and Path(settings.cert).is_file()
    ):
        env["SSL_CERT_FILE"] = settings.cert
    return env


def mask(url: str) -> str:
    """A URL with its credentials hidden, for logs."""
    return re.sub(r"//[^/@\s]+@", "//***@", url)


def describe(arguments: Sequence[str]) -> str:
    """A one-line, credential-free summary of uv arguments for the build log."""
    return " ".join(mask(a) for a in arguments) or "(uv defaults)"
