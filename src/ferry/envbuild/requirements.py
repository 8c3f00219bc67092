"""Requirement lines and requirements files: parsing, validation and canonical form (pure).

A requirements file holds requirement lines (``numpy==1.26.4``, ``pkg[extra]>=1; python_version
< "3.12"``, ``name @ https://…``, local paths and URLs) and a few pip options that describe where
packages come from (``--index-url``, ``--extra-index-url``, ``--find-links``, ``--pre``,
``--no-index``, ``--trusted-host``); ``-r other.txt`` is inlined. Anything else is refused with the
file and line, so a typo never becomes a silently different environment.

Example::

    packages, options = parse_requirements("NumPy == 1.26.4\\n-i https://idx/simple\\n", "req.txt")
    canonical_requirement(packages[0])      # 'numpy==1.26.4'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ferry.errors import ConfigError

#: pip options that may appear in a specification, with their canonical spelling.
OPTIONS_WITH_VALUE = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
}
FLAG_OPTIONS = {"--pre": "--pre", "--no-index": "--no-index"}
_INCLUDE = {"-r", "--requirement"}

_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$", re.S)
_SPEC_CLAUSE = re.compile(r"^(~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+$")
_URLISH = re.compile(r"^(\.{0,2}/|~|[A-Za-z][A-Za-z0-9+.-]*://|file:|git\+)")


def canonical_name(name: str) -> str:
    """A project name as indexes compare it (PEP 503): ``Scikit_Learn`` → ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The canonical project name of a requirement line; None for a path or URL."""
    if _URLISH.match(line.strip()):
        return None
    match = _NAME.match(line.strip())
    return canonical_name(match.group(1)) if match else None


def check_requirement(line: str, where: str) -> str:
    """Validate one requirement line and return it stripped; ConfigError with a hint if wrong."""
    text = line.strip()
    if not text:
        raise ConfigError(f"{where}: empty requirement")
    if _URLISH.match(text):
        return text
    match = _NAME.match(text)
    if match is None:
        raise ConfigError(f"{where}: {text!r} is not a requirement (expected e.g. 'numpy==1.26.4')")
    rest, _, _marker = match.group(3).partition(";")
    rest = rest.strip()
    if rest.startswith("@"):
        if not rest[1:].strip():
            raise ConfigError(f"{where}: {text!r} names no URL after '@'")
        return text
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1]
    for clause in filter(None, (c.strip() for c in rest.split(","))):
        if not _SPEC_CLAUSE.match(clause):
            hint = ""
            if re.match(r"^=[^=]", clause):
                hint = f"; did you mean '{match.group(1)}=={clause[1:].strip()}' (pip uses ==)?"
            raise ConfigError(f"{where}: bad version specifier {clause!r} in {text!r}{hint}")
    return text


def canonical_requirement(line: str) -> str:
    """The canonical spelling of a requirement: case, separators, spaces and clause order."""
    text = line.strip()
    if _URLISH.match(text):
        return text
    match = _NAME.match(text)
    if match is None:
        return " ".join(text.split())
    name = canonical_name(match.group(1))
    extras = ""
    if match.group(2):
        items = sorted({canonical_name(e.strip()) for e in match.group(2)[1:-1].split(",")} - {""})
        extras = f"[{','.join(items)}]" if items else ""
    rest, _, marker = match.group(3).partition(";")
    rest = rest.strip()
    marker_part = f"; {' '.join(marker.split())}" if marker.strip() else ""
    if rest.startswith("@"):
        return f"{name}{extras} @ {rest[1:].strip()}{marker_part}"
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1]
    clauses = sorted("".join(c.split()) for c in rest.split(",") if c.strip())
    return f"{name}{extras}{','.join(clauses)}{marker_part}"


def canonical_option(option: str) -> str:
    """``-i URL`` / ``--index-url=URL`` → ``--index-url URL``; flags unchanged."""
    head, value = _split_option(option.strip())
    if head in FLAG_OPTIONS:
        return FLAG_OPTIONS[head]
    if head in OPTIONS_WITH_VALUE:
        return f"{OPTIONS_WITH_VALUE[head]} {value}".strip()
    return " ".join(option.split())


def _split_option(text: str) -> tuple[str, str]:
    parts = text.split(maxsplit=1)
    if not parts:
        return "", ""
    if "=" in parts[0]:
        head, _, value = text.partition("=")
        return head.strip(), value.strip()
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with comments removed and backslash continuations joined, numbered from 1."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def parse_requirements(
    text: str,
    source: str,
    include: Callable[[str, str], tuple[str, str]] | None = None,
    _depth: int = 0,
) -> tuple[list[str], list[str]]:
    """Split requirements text into (requirement lines, canonical pip options).

    ``include(name, where)`` returns ``(text, source)`` of a file named by ``-r``; without it,
    ``-r`` is refused.
    """
    if _depth > 10:
        raise ConfigError(f"{source}: -r includes nest more than 10 deep (a cycle?)")
    packages: list[str] = []
    options: list[str] = []
    for number, line in _logical_lines(text):
        where = f"{source}:{number}"
        if not line.startswith("-"):
            packages.append(check_requirement(line, where))
            continue
        head, value = _split_option(line)
        if head in _INCLUDE:
            if include is None or not value:
                raise ConfigError(f"{where}: '{line}' cannot be followed here")
            sub_text, sub_source = include(value, where)
            sub_packages, sub_options = parse_requirements(
                sub_text, sub_source, include, _depth + 1
            )
            packages += sub_packages
            options += sub_options
        elif head in FLAG_OPTIONS:
            options.append(FLAG_OPTIONS[head])
        elif head in OPTIONS_WITH_VALUE:
            if not value:
                raise ConfigError(f"{where}: {head} needs a value")
            options.append(f"{OPTIONS_WITH_VALUE[head]} {value}")
        elif head in ("-e", "--editable"):
            raise ConfigError(
                f"{where}: editable installs ({head}) are not supported in a built environment "
                "(it is cached by its specification, an editable folder changes under it); put "
                "the package in the source directory or install it from a path without -e"
            )
        elif head in ("-c", "--constraint"):
            raise ConfigError(
                f"{where}: constraint files ({head}) are not part of an environment "
                "specification; pin the versions in the requirements instead (pip's own "
                "configured constraint file is honoured at build time)"
            )
        else:
            allowed = ", ".join(sorted({*OPTIONS_WITH_VALUE, *FLAG_OPTIONS, *_INCLUDE}))
            raise ConfigError(f"{where}: unknown option {head!r}; allowed: {allowed}")
    return packages, options


def read_requirements(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Parse a requirements file, following ``-r`` includes relative to each file."""
    file = Path(path).expanduser()

    def read(target: Path, where: str) -> str:
        try:
            return target.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"{where}: requirements file {str(target)!r} does not exist"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: cannot read {str(target)!r}: {exc}") from exc

    def include(name: str, where: str) -> tuple[str, str]:
        base = Path(where.rsplit(":", 1)[0]).parent
        target = (base / name).expanduser()
        return read(target, where), str(target)

    return parse_requirements(read(file, "requirements"), str(file), include)
