"""``ferry target list|show|detach``."""

from __future__ import annotations

import click

from ferry.cli.app import Context, emit_json, pass_ctx


@click.group()
def target() -> None:
    """Compute targets attached to the workspace."""


@target.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_targets(ctx: Context, as_json: bool) -> None:
    """List compute targets (local is always there)."""
    from ferry.compute import ComputeTarget

    targets = ComputeTarget.list(ctx.ws)
    if as_json:
        emit_json([t.serialize() for t in targets.values()])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "type")
    for t in targets.values():
        table.add_row(t.name, t.type)
    Console().print(table)


@target.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx: Context, name: str, as_json: bool) -> None:
    """Show one target's configuration (secrets are never stored)."""
    from ferry.compute import ComputeTarget

    data = ComputeTarget(ctx.ws, name).serialize()
    if as_json:
        emit_json(data)
        return
    click.echo(f"{data['name']}  ({data['type']})")
    for key, value in data["config"].items():
        click.echo(f"  {key}: {value}")


@target.command("detach")
@click.argument("name")
@pass_ctx
def detach(ctx: Context, name: str) -> None:
    """Forget an attached target."""
    from ferry.compute import ComputeTarget

    ComputeTarget(ctx.ws, name).detach()
    click.echo(f"detached {name}")
