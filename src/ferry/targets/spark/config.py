"""What a Spark target is: its master URL, Spark settings, and where Spark lives.

A Spark target is attached like the reference's HDInsight cluster, with a plain dict stored in the
workspace (never a secret: a setting that looks like one must be an ``${env:NAME}`` reference,
read from the environment when a run starts). The public builder is ``SparkCompute``
(:mod:`ferry.compute`); it checks its configuration with :func:`validate_config` here.

Example::

    validate_config({"master": "spark://10.0.0.4:7077", "conf": {"spark.executor.memory": "2g"}})
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from ferry.errors import ConfigError

KIND = "spark"
DEFAULT_MASTER = "local[*]"
DEFAULT_LOG_LEVEL = "WARN"
LOG_LEVELS = ("OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "ALL")
KEYS = ("master", "conf", "spark_home", "log_level")

_LOCAL = re.compile(r"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?")
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})")
_K8S = re.compile(r"k8s://(https?://)?[^\s/]+(:\d{1,5})?/?")
_SECRET_KEY = re.compile(r"secret|password|passphrase|token|credential", re.IGNORECASE)
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
MASTER_FORMS = (
    "local, local[N], local[*], local[N,F], spark://HOST:PORT[,HOST:PORT…], yarn, k8s://…"
)


def validate_master(master: Any) -> str:
    """The master URL, checked; a ConfigError lists the accepted forms otherwise."""
    if not isinstance(master, str) or not master.strip():
        raise ConfigError(f"a Spark target needs a master URL; accepted forms: {MASTER_FORMS}")
    text = master.strip()
    if _LOCAL.fullmatch(text) or text == "yarn" or _K8S.fullmatch(text):
        return text
    if text.startswith("spark://"):
        for part in text[len("spark://") :].split(","):
            found = _HOST_PORT.fullmatch(part)
            if not found or not 0 < int(found.group(3)) < 65536:
                raise ConfigError(
                    f"Spark master {text!r}: {part!r} is not HOST:PORT "
                    "(e.g. spark://10.0.0.4:7077, or spark://h1:7077,h2:7077 for standby masters)"
                )
        return text
    raise ConfigError(f"Spark master {text!r} is not a master URL; accepted forms: {MASTER_FORMS}")


def master_hosts(master: str) -> list[tuple[str, int]]:
    """The (host, port) pairs of a ``spark://`` master URL; empty for other kinds of master."""
    if not master.startswith("spark://"):
        return []
    out = []
    for part in master[len("spark://") :].split(","):
        host, _, port = part.rpartition(":")
        out.append((host.strip("[]"), int(port)))
    return out


def is_loopback_master(master: str) -> bool:
    """True when every process of the application runs on this machine's loopback."""
    if _LOCAL.fullmatch(master):
        return True
    hosts = master_hosts(master)
    return bool(hosts) and all(_is_loopback(host) for host, _ in hosts)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def conf_value(value: Any) -> str:
    """A Spark setting as spark-submit wants it (booleans in lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def validate_conf(conf: Any, where: str = "conf") -> dict[str, str]:
    """Spark settings as strings; a setting that looks like a secret must be ``${env:NAME}``."""
    if conf is None:
        return {}
    if not isinstance(conf, Mapping):
        raise ConfigError(f"{where} must be a mapping of Spark settings, e.g. {{'spark.x': '1'}}")
    out: dict[str, str] = {}
    for key, value in conf.items():
        if not isinstance(key, str) or not key.strip() or any(c.isspace() for c in key):
            raise ConfigError(f"{where}: {key!r} is not a Spark setting name (e.g. spark.a.b)")
        if value is None or isinstance(value, Mapping | list | tuple):
            raise ConfigError(f"{where}[{key!r}] must be a string, number or boolean")
        text = conf_value(value)
        if _SECRET_KEY.search(key) and not ENV_REF.fullmatch(text):
            raise ConfigError(
                f"{where}[{key!r}] looks like a secret, and compute targets never store secrets; "
                f"store a reference instead — {key}='${{env:MY_VAR}}' — and export MY_VAR where "
                "runs are started (ferry reads it when the run starts)"
            )
        out[key] = text
    return out


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check a Spark target's configuration; returns the dict to store."""
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r} for a Spark target; allowed: {', '.join(KEYS)}"
        )
    out: dict[str, Any] = {
        "master": validate_master(
            DEFAULT_MASTER if config.get("master") is None else config["master"]
        ),
        "conf": validate_conf(config.get("conf")),
    }
    level = str(config.get("log_level") or DEFAULT_LOG_LEVEL).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"log_level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    out["log_level"] = level
    if config.get("spark_home"):
        out["spark_home"] = str(config["spark_home"])
    return out
