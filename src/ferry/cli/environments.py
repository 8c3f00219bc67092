"""``ferry env list|show|build|prune|register``: environments, built and registered."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ferry.cli import render
from ferry.cli.app import Context, emit_json, pass_ctx


@click.group("env")
def env() -> None:
    """Environments: registered, curated and built ones."""


def _cache(ctx: Context) -> Any:
    from ferry.envbuild import EnvCache

    return EnvCache(ctx.ws.envs_dir)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _details(ctx: Context, environment: Any, with_lock: bool) -> dict[str, Any]:
    """What ferry knows of one environment: its spec, hash and the built folder if any."""
    from ferry.envbuild.curated import CURATED

    digest = environment.spec_hash()
    built = _cache(ctx).read(digest) if digest else None
    out: dict[str, Any] = {
        "name": environment.name,
        "version": environment.version,
        "curated": environment.name in CURATED,
        "userManaged": environment.python.user_managed_dependencies,
        "hash": digest,
        "built": built is not None,
        "path": str(built.path) if built else None,
        "python": (built.meta.get("python") or {}).get("version") if built else None,
        "size": built.size() if built else None,
        "lastUse": built.last_use if built else None,
        "builtAt": built.meta.get("builtAt") if built else None,
        "buildSeconds": built.meta.get("buildSeconds") if built else None,
        "spec": environment.to_dict(),
    }
    if with_lock:
        out["lock"] = built.lock if built else None
    return out


@env.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_envs(ctx: Context, as_json: bool) -> None:
    """Curated and registered environments, and every built environment."""
    from ferry.environment import Environment

    named = [_details(ctx, e, False) for e in Environment.list(ctx.ws).values()]
    known = {d["hash"] for d in named}
    others = [
        {
            "name": b.meta.get("name"),
            "hash": b.spec_hash,
            "python": (b.meta.get("python") or {}).get("version"),
            "size": b.size(),
            "lastUse": b.last_use,
        }
        for b in _cache(ctx).published()
        if b.spec_hash not in known
    ]
    if as_json:
        emit_json({"environments": named, "otherBuilt": others})
        return
    table = render.table("name", "version", "kind", "hash", "python", "size", "last use")
    for d in named:
        kind = "curated" if d["curated"] else "registered"
        table.add_row(
            d["name"],
            str(d["version"] or ""),
            kind + (", user-managed" if d["userManaged"] else ""),
            (d["hash"] or "")[:12] + ("" if d["built"] or not d["hash"] else " (not built)"),
            d["python"] or "",
            _size(d["size"]),
            _when(d["lastUse"]),
        )
    for o in others:
        table.add_row(
            f"{o['name']} (from a file)",
            "",
            "built",
            o["hash"][:12],
            o["python"] or "",
            _size(o["size"]),
            _when(o["lastUse"]),
        )
    render.show(table)


@env.command("show")
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx: Context, spec: str, as_json: bool) -> None:
    """One environment (NAME[:VERSION], requirements.txt or conda.yml): spec, hash, lock, size."""
    from ferry.environment import Environment

    details = _details(ctx, Environment.from_cli_spec(ctx.ws, spec), True)
    if as_json:
        emit_json(details)
        return
    deps = details["spec"]["python"]["condaDependencies"]
    table = render.table(show_header=False, box=None, padding=(0, 2))
    table.add_row(
        "name", f"{details['name']}" + (f":{details['version']}" if details["version"] else "")
    )
    table.add_row("hash", details["hash"] or "(user-managed: not built)")
    table.add_row("python", deps.get("pythonVersion") or "(the one running ferry)")
    for package in deps.get("pipPackages") or []:
        table.add_row("pip", package)
    for package in deps.get("condaPackages") or []:
        table.add_row("conda", package)
    for option in deps.get("pipOptions") or []:
        table.add_row("pip option", option)
    for key, value in details["spec"]["environmentVariables"].items():
        table.add_row("variable", f"{key}={value}")
    if details["built"]:
        table.add_row("built", f"{details['path']} ({_size(details['size'])})")
        table.add_row("built at", f"{_when(details['builtAt'])} in {details['buildSeconds']} s")
        table.add_row("last use", _when(details["lastUse"]))
        for line in (details["lock"] or "").splitlines():
            table.add_row("lock", line)
    elif details["hash"]:
        table.add_row("built", f"no (ferry env build {spec})")
    render.show(table)


@env.command("build")
@click.argument("spec")
@click.option(
    "--docker",
    "use_docker",
    is_flag=True,
    help="Build its Docker image (done anyway for an environment with docker.enabled).",
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def build(ctx: Context, spec: str, use_docker: bool, as_json: bool) -> None:
    """Build an environment now (NAME[:VERSION], requirements.txt or conda.yml): its folder,
    or its Docker image on the engine that DOCKER_HOST (or the default socket) names."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ferry.environment import Environment

    environment = Environment.from_cli_spec(ctx.ws, spec)
    console = Console(stderr=True)
    started = time.monotonic()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"environment {environment.name}", total=None)

        def log(line: str) -> None:
            if line.startswith("  "):
                progress.console.print(line, style="dim", markup=False, highlight=False)
            else:
                progress.update(task, description=line[:100])

        resolved = environment.build_local(ctx.ws, log=log, useDocker=use_docker)
    seconds = time.monotonic() - started
    if as_json:
        details = _details(ctx, environment, True)
        details["builtNow"] = resolved.built
        if use_docker or environment.docker.enabled:
            details.update(hash=resolved.spec_hash, image=f"ferry-env:{resolved.spec_hash}")
        emit_json(details)
        return
    verb = f"built in {seconds:.1f} s" if resolved.built else "already built"
    what = resolved.spec_hash or "user-managed"
    if use_docker or environment.docker.enabled:
        what = f"image ferry-env:{resolved.spec_hash}"
    console.print(
        f"environment [bold]{environment.name}[/]: {what} {verb}\npython {resolved.python}"
    )


@env.command("prune")
@click.option(
    "--older-than",
    "older_than",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Remove environments not used for this many days.",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def prune(ctx: Context, older_than: float, dry_run: bool, as_json: bool) -> None:
    """Remove built environments unused for DAYS; never one a queued or running run needs."""
    from ferry.envbuild.prune import prune_environments

    report = prune_environments(ctx.ws, older_than, dry_run)
    if as_json:
        emit_json(report.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    for built in report.removed:
        click.echo(f"{verb} {built.spec_hash[:12]} {built.meta.get('name') or ''}")
    for built in report.in_use:
        click.echo(f"kept {built.spec_hash[:12]} (a run that has not finished needs it)")
    for built in report.busy:
        click.echo(f"kept {built.spec_hash[:12]} (being built or used now)")
    click.echo(
        f"{verb} {len(report.removed)} environments ({_size(report.freed_bytes)}) and "
        f"{len(report.leftovers)} leftover folders; kept {len(report.recent)} used in the last "
        f"{older_than:g} days"
    )
    images = report.images
    if images is not None and images.note:
        click.echo(images.note)
    elif images is not None:
        for tag in images.removed:
            click.echo(f"{verb} image {tag}")
        for tag in images.in_use:
            click.echo(f"kept image {tag} (a run that has not finished needs it)")
        for tag in images.busy:
            click.echo(f"kept image {tag} (a container uses it)")
        click.echo(
            f"{verb} {len(images.removed)} images ({_size(images.freed_bytes)}) and "
            f"{images.leftovers} leftovers of killed builds; kept {len(images.recent)} used in "
            f"the last {older_than:g} days"
        )


@env.command("register")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("-n", "--name", required=True, help="Name to register the environment under.")
@pass_ctx
def register(ctx: Context, file: Path, name: str) -> None:
    """Register a requirements.txt or conda.yml as the next version of NAME."""
    from ferry.environment import Environment

    environment = Environment.from_cli_spec(ctx.ws, str(file)).clone(name)
    environment.register(ctx.ws)
    click.echo(f"registered {name}:{environment.version}")
