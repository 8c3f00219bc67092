"""``ferry server``: run the team server, and manage its users and tokens.

``ferry server --database-url postgresql+psycopg://… --blob-store PATH|s3://BUCKET/PREFIX``
serves the workspace (migrating the database first, checking the bucket); ``ferry server user
add NAME [--admin]`` and ``ferry server token create USER [--json]`` work on the database
directly (``--database-url`` or ``FERRY_DATABASE_URL``), so the first admin can be made before
the server runs. A token is printed once and stored only as a hash.
"""

from __future__ import annotations

from pathlib import Path

import click

from ferry.cli.app import emit_json

DATABASE_HELP = "The database (postgresql+psycopg://user@host/db; default $FERRY_DATABASE_URL)."


def _database(url: str | None) -> str:
    from ferry.errors import ConfigError

    if not url:
        raise ConfigError(
            "give the server's database: --database-url postgresql+psycopg://USER@HOST/DB "
            "(or set FERRY_DATABASE_URL)"
        )
    return url


def _store(url: str | None):  # type: ignore[no-untyped-def]
    from ferry.tracking.accounts import ServerStore

    return ServerStore(_database(url))


@click.group("server", invoke_without_command=True)
@click.option("--database-url", envvar="FERRY_DATABASE_URL", help=DATABASE_HELP)
@click.option(
    "--blob-store",
    envvar="FERRY_BLOB_STORE",
    help="The shared blob store (snapshots, datasets, models): a folder, or a bucket URL "
    "(s3://BUCKET/PREFIX, az://, gs:// …) whose credentials come from the environment "
    "(AWS_ACCESS_KEY_ID …, AWS_PROFILE, AWS_ENDPOINT_URL).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The server's workspace folder: run folders, environments (default: FERRY_HOME/server).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--public-url", help="How jobs and clients reach this server (MLflow's URI in runs).")
@click.option(
    "--supervisors",
    default=4,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="Runs this server process supervises at once (0: none, another process does).",
)
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--max-body", default=64 * 1024 * 1024, show_default=True, type=click.IntRange(1024))
@click.pass_context
def server(
    ctx: click.Context,
    database_url: str | None,
    blob_store: str | None,
    data_dir: Path | None,
    host: str,
    port: int,
    public_url: str | None,
    supervisors: int,
    processes: int,
    max_body: int,
) -> None:
    """Serve the workspace over HTTP (ferry's API and MLflow's tracking API)."""
    if ctx.invoked_subcommand is not None:
        return
    from ferry.errors import ConfigError
    from ferry.server.config import ServerConfig
    from ferry.server.serve import serve
    from ferry.workspace import default_home

    if not blob_store:
        raise ConfigError(
            "give the shared blob store: --blob-store FOLDER or --blob-store s3://BUCKET/PREFIX "
            "(or set FERRY_BLOB_STORE)"
        )
    config = ServerConfig(
        database_url=_database(database_url),
        blob_store=blob_store,
        data_dir=(data_dir or default_home() / "server").expanduser().resolve(),
        host=host,
        port=port,
        public_url=public_url,
        supervisors=supervisors,
        processes=processes,
        max_body=max_body,
    )
    serve(config)


@server.group("user")
def user() -> None:
    """The server's users."""


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May add users and create tokens for others.")
@click.option("--database-url", envvar="FERRY_DATABASE_URL", help=DATABASE_HELP)
def user_add(name: str, admin: bool, database_url: str | None) -> None:
    """Add a user."""
    store = _store(database_url)
    try:
        record = store.add_user(name, admin=admin)
    finally:
        store.close()
    click.echo(f"user {record.name} added{' (admin)' if record.admin else ''}")


@user.command("list")
@click.option("--database-url", envvar="FERRY_DATABASE_URL", help=DATABASE_HELP)
@click.option("--json", "as_json", is_flag=True)
def user_list(database_url: str | None, as_json: bool) -> None:
    """List the users."""
    store = _store(database_url)
    try:
        users = store.list_users()
    finally:
        store.close()
    if as_json:
        emit_json([{"name": u.name, "admin": u.admin, "created_at": u.created_at} for u in users])
        return
    for u in users:
        click.echo(f"{u.name}{' (admin)' if u.admin else ''}")


@server.group("token")
def token() -> None:
    """Tokens (printed once; the server keeps only their hash)."""


@token.command("create")
@click.argument("user_name", metavar="USER")
@click.option("--expires-in", type=click.FloatRange(min=1), help="Seconds until it expires.")
@click.option("--json", "as_json", is_flag=True, help='Print {"token": …}.')
@click.option("--database-url", envvar="FERRY_DATABASE_URL", help=DATABASE_HELP)
def token_create(
    user_name: str, expires_in: float | None, as_json: bool, database_url: str | None
) -> None:
    """Create a token for USER and print it."""
    store = _store(database_url)
    try:
        secret = store.create_token(user_name, expires_in=expires_in)
    finally:
        store.close()
    if as_json:
        emit_json({"token": secret})
    else:
        click.echo(secret)


@token.command("revoke")
@click.argument("token_id")
@click.option("--database-url", envvar="FERRY_DATABASE_URL", help=DATABASE_HELP)
def token_revoke(token_id: str, database_url: str | None) -> None:
    """Revoke a token by its id (ferry_<id>_…)."""
    from ferry.errors import ConfigError

    if token_id.startswith("ferry_"):
        token_id = token_id.split("_")[1]
    store = _store(database_url)
    try:
        if not store.revoke_token(token_id):
            raise ConfigError(f"no token {token_id} to revoke (or it was revoked already)")
    finally:
        store.close()
    click.echo(f"token {token_id} revoked")


@token.command("list")
@click.option("--user", "user_name")
@click.option("--database-url", envvar="FERRY_DATABASE_URL", help=DATABASE_HELP)
@click.option("--json", "as_json", is_flag=True)
def token_list(user_name: str | None, database_url: str | None, as_json: bool) -> None:
    """List tokens (ids, users, scopes; never the secrets)."""
    store = _store(database_url)
    try:
        found = store.list_tokens(user_name)
    finally:
        store.close()
    rows = [
        {
            "id": t.id,
            "user": t.user,
            "scope": t.scope,
            "created_at": t.created_at,
            "expires_at": t.expires_at,
            "revoked_at": t.revoked_at,
        }
        for t in found
    ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        state = " revoked" if row["revoked_at"] else ""
        click.echo(f"{row['id']}  {row['user']}  {row['scope']}{state}")
