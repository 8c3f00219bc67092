"""``ferry target list|show|attach|create|status|trust|detach|delete|alias|pool|sizes``.

``create`` makes a managed cluster (the reference's AmlCompute: a Ray cluster that Ray's
autoscaler sizes); ``alias`` declares the address of a machine the reference names by Azure
resource id; ``pool`` declares the SSH hosts on which managed clusters start their nodes.

SSH host keys: a host not known yet is never trusted silently. In a terminal, ``attach``,
``status`` and ``trust`` show the key's SHA256 fingerprint and ask; without one they refuse
with the fingerprint and how to trust it (``--host-key-fingerprint`` or ``ferry target trust``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ferry.targets.ssh.hostkeys import UnknownHostKey

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
@click.option(
    "--host-key-fingerprint",
    help="ssh: the SHA256:… fingerprint the host's key must have (trusted on first contact).",
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
    host_key_fingerprint: str | None,
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
            ("host_key_fingerprint", host_key_fingerprint),
            ("master", master),
        )
        if value is not None
    }
    if conf:
        config["conf"] = parse_pairs(conf, "--conf")
    config.update(parse_pairs(extra, "--set"))
    attached = ComputeTarget.attach(ctx.ws, name, _CliAttachConfiguration(kind, config))
    click.echo(f"attached {attached.name} ({attached.type})")
    if attached.type == "ssh" and _interactive():
        _check_host_key_at_attach(ctx, name, attached.config)


@target.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def status(ctx: Context, name: str, as_json: bool) -> None:
    """What the target reports about itself (nodes, free resources, reachability)."""
    from ferry.compute import ComputeTarget
    from ferry.targets.registry import target_class

    ct = ComputeTarget(ctx.ws, name)
    try:
        data = target_class(ct.type).status(name, ct.config, ctx.ws)
    except Exception as exc:
        if not _confirmed_unknown_key(ctx, exc, ct.config):
            raise
        data = target_class(ct.type).status(name, ct.config, ctx.ws)
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        click.echo(f"{render.text(key)}: {render.text(value)}")


@target.command("trust")
@click.argument("name")
@click.option(
    "--fingerprint", help="Trust the host's key only if it has this SHA256:… fingerprint."
)
@click.option("--yes", is_flag=True, help="Trust the key the host presents without asking.")
@pass_ctx
def trust(ctx: Context, name: str, fingerprint: str | None, yes: bool) -> None:
    """Trust an SSH target's host key (shown and asked in a terminal)."""
    from ferry.compute import ComputeTarget
    from ferry.errors import ConfigError
    from ferry.targets.ssh.hostkeys import trust as trust_host

    ct = ComputeTarget(ctx.ws, name)
    if ct.type != "ssh":
        raise ConfigError(f"target {name!r} is a {ct.type} target; only ssh targets have host keys")
    confirm = (lambda _: True) if yes else (_ask if _interactive() else None)
    done = trust_host(name, ct.config, ctx.ws.path, expected=fingerprint, confirm=confirm)
    if done.recorded:
        click.echo(f"trusted {done.algorithm} key {done.fingerprint} (in {done.known_hosts_file})")
    else:
        click.echo(f"the host key {done.fingerprint} is already trusted ({done.verdict})")


def _interactive() -> bool:
    """Whether a person can answer a question (standard input and output are terminals)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _ask(unknown: UnknownHostKey) -> bool:
    click.echo(
        f"The host key of {unknown.target!r} is not known yet.\n"
        f"  {unknown.key.get_algorithm()} key fingerprint: {unknown.fingerprint}\n"
        "Compare it with the host's (`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` there)."
    )
    return click.confirm("Trust this key?", default=False)


def _confirmed_unknown_key(ctx: Context, exc: Exception, config: dict[str, Any]) -> bool:
    """In a terminal, an unknown SSH host key is shown and, if the user says yes, recorded."""
    from ferry.targets.ssh.hostkeys import KNOWN_HOSTS_FILE, UnknownHostKey, record
    from ferry.targets.ssh.settings import SshSettings

    if not isinstance(exc, UnknownHostKey) or not _interactive() or not _ask(exc):
        return False
    record(ctx.ws.path / KNOWN_HOSTS_FILE, SshSettings.from_config(config), exc.key)
    return True


def _check_host_key_at_attach(ctx: Context, name: str, config: dict[str, Any]) -> None:
    """Show a new host's key and ask now, rather than at the first run (the host may be down:
    then the question waits for ``status``, ``trust`` or the first submit)."""
    from ferry.errors import TargetError
    from ferry.targets.ssh.hostkeys import HostKeyChanged, UnknownHostKey
    from ferry.targets.ssh.hostkeys import trust as trust_host

    try:
        done = trust_host(name, config, ctx.ws.path, confirm=_ask)
    except UnknownHostKey:
        click.echo(f"host key not trusted; runs on {name!r} are refused until it is", err=True)
        return
    except HostKeyChanged:
        raise
    except TargetError as exc:
        click.echo(f"note: could not check the host key now ({exc})", err=True)
        return
    if done.recorded:
        click.echo(f"trusted {done.algorithm} key {done.fingerprint}")


@target.command("detach")
@click.argument("name")
@pass_ctx
def detach(ctx: Context, name: str) -> None:
    """Forget an attached target."""
    from ferry.compute import ComputeTarget

    ComputeTarget(ctx.ws, name).detach()
    click.echo(f"detached {name}")


@target.command("create")
@click.argument("name")
@click.option(
    "--vm-size", default="", help="A node shape of `ferry target sizes`, or an Azure size."
)
@click.option("--min-nodes", type=int, default=0, show_default=True)
@click.option("--max-nodes", type=int, required=True)
@click.option("--idle-seconds", type=int, default=1800, show_default=True,
              help="A node idle this long is stopped (idle_seconds_before_scaledown).")  # fmt: skip
@pass_ctx
def create(
    ctx: Context, name: str, vm_size: str, min_nodes: int, max_nodes: int, idle_seconds: int
) -> None:
    """Create a managed cluster (AmlCompute) under NAME: a Ray cluster started here, whose nodes
    Ray's autoscaler starts for runs and stops when idle (on the declared pool, if any)."""
    from ferry.compute import ComputeTarget
    from ferry.compute_aml import AmlCompute

    config = AmlCompute.provisioning_configuration(
        vm_size=vm_size, min_nodes=min_nodes, max_nodes=max_nodes,
        idle_seconds_before_scaledown=idle_seconds,
    )  # fmt: skip
    cluster = ComputeTarget.create(ctx.ws, name, config)
    click.echo(f"created {cluster.name} (amlcompute): {cluster.config['shape']['name']} nodes, "
               f"{min_nodes}..{max_nodes}")  # fmt: skip


@target.command("delete")
@click.argument("name")
@pass_ctx
def delete(ctx: Context, name: str) -> None:
    """Stop a managed cluster (its head and every node) and remove it."""
    from ferry.compute import ComputeTarget

    ComputeTarget(ctx.ws, name).delete()
    click.echo(f"deleted {name}")


@target.command("sizes")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sizes(ctx: Context, as_json: bool) -> None:
    """The node shapes managed clusters can have (this machine's, or the declared pool's)."""
    from ferry.compute_aml import AmlCompute

    found = AmlCompute.supported_vmsizes(ctx.ws)
    if as_json:
        emit_json(found)
        return
    table = render.table("name", "vCPUs", "gpus", "memoryGB")
    for size in found:
        table.add_row(*(str(size[k]) for k in ("name", "vCPUs", "gpus", "memoryGB")))
    render.show(table)


@target.command("alias")
@click.argument("resource_id", required=False)
@click.argument("address", required=False)
@click.option("--remove", is_flag=True, help="Forget RESOURCE_ID's address.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def alias(
    ctx: Context, resource_id: str | None, address: str | None, remove: bool, as_json: bool
) -> None:
    """Declare the address (HOST or HOST:PORT) of a machine the reference names by Azure
    resource id; without arguments, list the declared ones."""
    from ferry import compute_settings
    from ferry.errors import ConfigError

    if resource_id and remove:
        if not compute_settings.remove_alias(ctx.ws.path, resource_id):
            raise ConfigError(f"no address is declared for {resource_id}")
        click.echo(f"forgot {resource_id}")
        return
    if resource_id and address:
        compute_settings.declare_alias(ctx.ws.path, resource_id, address)
        click.echo(f"{resource_id} -> {address}")
        return
    if resource_id:
        raise ConfigError("give the address too: ferry target alias RESOURCE_ID HOST[:PORT]")
    declared = compute_settings.aliases(ctx.ws.path)
    if as_json:
        emit_json(declared)
        return
    for rid, where in declared.items():
        click.echo(f"{render.text(rid)} -> {render.text(where)}")


@target.command("pool")
@click.option("--host", "hosts", multiple=True, help="A host of the pool (repeatable).")
@click.option("--username", help="The SSH user every host accepts.")
@click.option("--private-key-file", default="", help="The SSH key every host accepts.")
@click.option("--cpus", type=float, help="CPUs of each host.")
@click.option("--memory-gb", type=float, help="Memory of each host, in GiB.")
@click.option("--gpus", type=int, default=0, show_default=True)
@click.option("--ray-command", default="ray", show_default=True,
              help="The ray command on the hosts (a path if a login shell does not find it).")  # fmt: skip
@click.option("--remove", is_flag=True, help="Forget the pool (clusters start nodes here).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def pool(
    ctx: Context,
    hosts: tuple[str, ...],
    username: str | None,
    private_key_file: str,
    cpus: float | None,
    memory_gb: float | None,
    gpus: int,
    ray_command: str,
    remove: bool,
    as_json: bool,
) -> None:
    """Declare the SSH hosts on which managed clusters start their nodes (Ray's autoscaler
    starts and stops Ray there over SSH, port 22); without options, show the pool."""
    from ferry import compute_settings
    from ferry.errors import ConfigError

    if remove:
        compute_settings.remove_pool(ctx.ws.path)
        click.echo("pool removed: managed clusters start their nodes on this machine")
        return
    if hosts:
        if not username or cpus is None or memory_gb is None:
            raise ConfigError("a pool needs --username, --cpus and --memory-gb with its hosts")
        from ferry.compute_aml import declared_pool

        declared = declared_pool(
            hosts=hosts, username=username, private_key_file=private_key_file, cpus=cpus,
            memory_gb=memory_gb, gpus=gpus, ray_command=ray_command,
        )  # fmt: skip
        compute_settings.declare_pool(ctx.ws.path, declared)
        click.echo(f"pool of {len(hosts)} host(s) declared")
        return
    found = compute_settings.pool(ctx.ws.path)
    data = found.to_dict() if found is not None else None
    if as_json:
        emit_json(data)
    elif data is None:
        click.echo("no pool: managed clusters start their nodes on this machine")
    else:
        for key, value in data.items():
            click.echo(f"{key}: {render.text(value)}")
