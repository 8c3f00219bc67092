"""The ``ferry`` command: a thin layer over the library; one error boundary (:func:`main`).

Exit codes: 0 Completed, 1 Failed or Canceled, 2 bad usage or configuration.
"""

from __future__ import annotations

import sys

import click

from ferry.cli import (
    data,
    environments,
    experiments,
    login,
    models,
    run_actions,
    runs,
    server,
    snapshots,
    submit,
    sweep,
    targets,
    ui,
)
from ferry.cli.app import cli
from ferry.errors import FerryError

cli.add_command(submit.submit)
cli.add_command(runs.runs)
cli.add_command(targets.target)
cli.add_command(snapshots.snapshot)
cli.add_command(environments.env)
cli.add_command(sweep.sweep)
cli.add_command(data.data)
cli.add_command(models.models)
cli.add_command(server.server)
cli.add_command(login.login)
cli.add_command(ui.ui)
cli.add_command(experiments.experiments)
cli.add_command(experiments.workspace)
runs.runs.add_command(run_actions.tag)
runs.runs.add_command(run_actions.compare)


def main(argv: list[str] | None = None) -> None:
    """Entry point: turns every FerryError into one clear line and an exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    for stream in (sys.stdout, sys.stderr):  # the last guard: never a UnicodeEncodeError
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass
    bad = not_utf8(args)
    if bad is not None:
        click.echo(f"ferry: error: {bad}", err=True)
        sys.exit(2)
    try:
        cli.main(args=args, prog_name="ferry", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        if wants_json(args):
            json_error(exc.format_message(), " ".join(["see `ferry", *_words(args), "--help`"]))
        sys.exit(2)
    except click.Abort:
        click.echo("ferry: aborted", err=True)
        sys.exit(130)
    except FerryError as exc:
        click.echo(f"ferry: error: {exc}", err=True)
        if wants_json(args):
            json_error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(
            "\nferry: interrupted (a submitted run keeps running; see `ferry runs list`)", err=True
        )
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(0)


def wants_json(args: list[str]) -> bool:
    """Whether ``--json`` was given to ferry itself (not among a script's arguments after --)."""
    head = args[: args.index("--")] if "--" in args else args
    return "--json" in head


def json_error(message: str, fix: str | None = None) -> None:
    """An error as the one JSON object a ``--json`` caller (the VS Code extension) reads from
    standard output, on one line: ``{"error": message, "fix": how to fix it or null}``.

    ferry's messages name the fix after the problem ("X is wrong; do Y"): without an explicit
    fix, the part after the first "; " is it."""
    import json

    from ferry.cli.render import strict

    if fix is None:
        _problem, sep, rest = message.partition("; ")
        fix = rest if sep and rest else None
    # one line: a reader of JSON lines (submit --stream, runs logs -f --json) gets it whole
    click.echo(json.dumps(strict({"error": message, "fix": fix})))


def _words(args: list[str]) -> list[str]:
    """The command words of ``args`` (``runs``, ``list``), for a --help hint."""
    words: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg in ("-w", "--workspace"):
            next(rest, None)
        elif arg.startswith("-") or len(words) == 2:
            break
        else:
            words.append(arg)
    return words


def not_utf8(args: list[str]) -> str | None:
    """Why an argument cannot be used, when one holds bytes that are not UTF-8.

    Python hands such bytes over as lone surrogates (``\udcff`` for the byte 0xff); nothing
    ferry stores or prints can hold them, so they are refused here, with the argument shown.
    """
    for position, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            try:  # the original bytes, escaped: 0xff shows as \xff
                shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                shown = arg.encode("utf-8", "backslashreplace").decode("ascii")
            return (
                f"argument {position} ({shown!r}) holds bytes that are not UTF-8 text; "
                "ferry needs names, tags, paths and arguments in UTF-8 (check the terminal's "
                "encoding, or rename the file)"
            )
    return None
