"""``ferry target list|show|attach|status|detach``."""

from __future__ import annotations

from typing import Any

import click

from ferry.cli import render
from ferry.cli.app import Context, emit_json, parse_pairs, pass_ctx


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
    table = render.table("name", "type")
    for t in targets.values():
        table.add_row(t.name, t.type)
    render.show(table)


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
    click.echo(f"{render.text(data['name'])}  ({render.text(data['type'])})")
    for key, value in data["config"].items():
        click.echo(f"  {render.text(key)}: {render.text(value)}")


class _CliAttachConfiguration:
    """An attach configuration built from command-line options; the kind validates it."""

    def __init__(self, kind: str, config: dict[str, Any]) -> None:
        self.kind = kind
        self._config = config

    def to_dict(self) -> dict[str, Any]:
        return dict(self._config)


@target.command("attach")
@click.argument("name")
@click.option("--type", "kind", required=True, help="Target kind: ssh, spark, ray (or a plugin's).")
@click.option("--address", help="ssh: host name or IP; ray: ray://host:port, host:port or auto.")
@click.option("--ssh-port", type=int, help="ssh: port (default 22).")
@click.option("--username", help="ssh: user name.")
@click.option(
    "--private-key-file", help="ssh: private key file (passphrases come from the environment)."
)
@click.option("--master", help="spark: local[*] or spark://host:port.")
@click.option(
    "--conf", "conf", multiple=True, help="spark: KEY=VALUE Spark configuration (repeatable)."
)
@click.option(
    "--set", "extra", multiple=True, help="Any other KEY=VALUE setting of the kind (repeatable)."
)
@pass_ctx
def attach(
    ctx: Context,
    name: str,
    kind: str,
    address: str | None,
    ssh_port: int | None,
    username: str | None,
    private_key_file: str | None,
    master: str | None,
    conf: tuple[str, ...],
    extra: tuple[str, ...],
) -> None:
    """Attach a compute target under NAME (its configuration is stored, never secrets)."""
    from ferry.compute import ComputeTarget

    config: dict[str, Any] = {
        key: value
        for key, value in (
            ("address", address),
            ("ssh_port", ssh_port),
            ("username", username),
            ("private_key_file", private_key_file),
            ("master", master),
        )
        if value is not None
    }
    if conf:
        config["conf"] = parse_pairs(conf, "--conf")
    config.update(parse_pairs(extra, "--set"))
    attached = ComputeTarget.attach(ctx.ws, name, _CliAttachConfiguration(kind, config))
    click.echo(f"attached {attached.name} ({attached.type})")


@target.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def status(ctx: Context, name: str, as_json: bool) -> None:
    """What the target reports about itself (nodes, free resources, reachability)."""
    from ferry.compute import ComputeTarget
    from ferry.targets.registry import target_class

    ct = ComputeTarget(ctx.ws, name)
    data = target_class(ct.type).status(name, ct.config, ctx.ws)
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        click.echo(f"{render.text(key)}: {render.text(value)}")


@target.command("detach")
@click.argument("name")
@pass_ctx
def detach(ctx: Context, name: str) -> None:
    """Forget an attached target."""
    from ferry.compute import ComputeTarget

    ComputeTarget(ctx.ws, name).detach()
    click.echo(f"detached {name}")
