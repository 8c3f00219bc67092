"""The ``ferry`` command: a thin layer over the library; one error boundary (:func:`main`).

Exit codes: 0 Completed, 1 Failed or Canceled, 2 bad usage or configuration.
"""

from __future__ import annotations

import sys

import click

from ferry.cli import envs, runs, snapshots, submit, targets
from ferry.cli.app import cli
from ferry.errors import FerryError

cli.add_command(submit.submit)
cli.add_command(runs.runs)
cli.add_command(targets.target)
cli.add_command(snapshots.snapshot)
cli.add_command(envs.env)


def main(argv: list[str] | None = None) -> None:
    """Entry point: turns every FerryError into one clear line and an exit code."""
    try:
        cli.main(args=argv, prog_name="ferry", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.Abort:
        click.echo("ferry: aborted", err=True)
        sys.exit(130)
    except FerryError as exc:
        click.echo(f"ferry: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(
            "\nferry: interrupted (a submitted run keeps running; see `ferry runs list`)", err=True
        )
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(0)
