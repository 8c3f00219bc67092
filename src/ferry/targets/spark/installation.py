"""Where Spark and Java live on this machine, and how Spark's own logging is quietened.

Spark comes from the ``pyspark`` package (``pip install 'ferry[spark]'``) unless the target names
a distribution with ``spark_home``; Java from ``JAVA_HOME`` or ``PATH``.

Example::

    home = spark_home({})             # .../site-packages/pyspark
    spark_submit(home)                # .../site-packages/pyspark/bin/spark-submit
    find_java(os.environ)             # '/usr/bin/java'
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ferry.errors import TargetError

JAVA_HINT = (
    "install a Java runtime (17 or newer), e.g. `apt-get install default-jre-headless`, "
    "or set JAVA_HOME"
)
_VERSION_RE = re.compile(r"version \"?([\w.+-]+)")


def spark_home(config: Mapping[str, Any]) -> Path:
    """The Spark installation runs use: the target's ``spark_home``, else pyspark's own."""
    configured = config.get("spark_home")
    if configured:
        home = Path(str(configured)).expanduser()
    else:
        spec = find_spec("pyspark")
        if spec is None or not spec.origin:
            raise TargetError(
                "the Spark target needs pyspark — install it with: pip install 'ferry[spark]' "
                "(or attach the target with spark_home=<a Spark distribution>)"
            )
        home = Path(spec.origin).parent
    if not (home / "bin" / "spark-submit").is_file():
        raise TargetError(
            f"{home} has no bin/spark-submit; spark_home must be a Spark distribution "
            "(or leave it unset to use the pyspark package)"
        )
    return home


def spark_submit(home: Path) -> str:
    return str(home / "bin" / "spark-submit")


def spark_class(home: Path) -> str:
    return str(home / "bin" / "spark-class")


def spark_version(home: Path) -> str | None:
    """The Spark version of an installation (pyspark's package version, or the RELEASE file)."""
    version_file = home / "version.py"
    if version_file.is_file():
        found = re.search(r"__version__[^\"']*[\"']([^\"']+)", version_file.read_text())
        if found:
            return found.group(1)
    release = home / "RELEASE"
    if release.is_file():
        found = re.match(r"Spark (\S+)", release.read_text())
        if found:
            return found.group(1)
    return None


def python_requirement(home: Path) -> tuple[int, ...] | None:
    """The oldest Python the pyspark package at ``home`` supports (None when unknown)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("pyspark")
    except PackageNotFoundError:
        return None
    if Path(str(dist.locate_file("pyspark"))).resolve() != home.resolve():
        return None  # a Spark distribution of the target's own
    found = re.search(r">=\s*(\d+)\.(\d+)", dist.metadata["Requires-Python"] or "")
    return (int(found.group(1)), int(found.group(2))) if found else None


def python_version(python: str) -> tuple[int, ...] | None:
    """The ``(major, minor)`` version of an interpreter (None when it cannot say)."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return tuple(sys.version_info[:2])
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return tuple(int(p) for p in done.stdout.split())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def find_java(environ: Mapping[str, str]) -> str:
    """The ``java`` that spark-submit will run; a TargetError says how to get one."""
    java_home = environ.get("JAVA_HOME")
    if java_home:
        java = Path(java_home) / "bin" / "java"
        if java.is_file() and os.access(java, os.X_OK):
            return str(java)
        raise TargetError(f"JAVA_HOME={java_home} has no bin/java; {JAVA_HINT}")
    found = shutil.which("java", path=environ.get("PATH"))
    if not found:
        raise TargetError(f"the Spark target needs Java and none was found on PATH; {JAVA_HINT}")
    return found


def java_version(java: str) -> str | None:
    """``java -version``'s version string (slow: starts a JVM; for status reports only)."""
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION_RE.search(done.stderr or done.stdout)
    return found.group(1) if found else None


def has_log_config(home: Path, environ: Mapping[str, str]) -> bool:
    """True when the user has a log4j2 configuration that ferry must not override."""
    if "log4j2.configurationFile" in environ.get("SPARK_SUBMIT_OPTS", ""):
        return True
    conf_dir = Path(environ["SPARK_CONF_DIR"]) if environ.get("SPARK_CONF_DIR") else home / "conf"
    return (conf_dir / "log4j2.properties").exists() or (conf_dir / "log4j2.xml").exists()


def log4j2_properties(level: str) -> str:
    """Spark's default console logging, at ``level`` instead of INFO."""
    return "\n".join(
        [
            f"rootLogger.level = {level.lower()}",
            "rootLogger.appenderRef.stdout.ref = console",
            "appender.console.type = Console",
            "appender.console.name = console",
            "appender.console.target = SYSTEM_ERR",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex",
            # as Spark's own template: third-party chatter stays quiet at any level
            "logger.jetty.name = org.sparkproject.jetty",
            "logger.jetty.level = warn",
            "logger.parquet.name = org.apache.parquet",
            "logger.parquet.level = error",
            "logger.hive.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler",
            "logger.hive.level = fatal",
            "",
        ]
    )
