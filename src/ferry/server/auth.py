"""Who is asking, and may they: bearer tokens on every request, scopes per route.

Every route depends on :func:`principal`: no ``Authorization: Bearer …`` header, or a token the
server does not know (malformed, revoked, expired), is 401 with the reason — never the token.
Then each route states what it needs:

- :func:`require_user` — a user token (any user); run-scoped tokens are refused (403);
- :func:`require_admin` — an admin's token (user and token management);
- :func:`require_runs` — a user token, or a run-scoped token whose run is each of the runs
  touched or one of their ancestors (a job writes its run and its children, nothing else).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi import Depends, Request

from ferry.errors import FerryError, RunNotFound
from ferry.server.services import ServerServices
from ferry.tracking.accounts import TokenRecord, TokenRejected

_MAX_DEPTH = 32


class Unauthenticated(FerryError):
    """No usable token (401)."""


class Forbidden(FerryError):
    """A valid token whose scope does not cover the request (403)."""


async def services(request: Request) -> ServerServices:
    """The app's services. The pure dependencies here are coroutines: FastAPI runs a plain
    function dependency in its thread pool, a hop (~0.1 ms) per dependency per request."""
    return _services(request)


def _services(request: Request) -> ServerServices:
    found: ServerServices = request.app.state.services
    return found


def principal(request: Request) -> TokenRecord:
    """The verified token of the request (cached on it for the other dependencies)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "this server needs a token: send `Authorization: Bearer <token>` "
            "(`ferry login URL` stores one; `ferry server token create USER` makes one)"
        )
    local = getattr(request.app.state, "local_token", None)
    if local is not None and hmac.compare_digest(token.strip().encode(), local.encode()):
        found = local_principal()
        request.state.principal = found
        return found
    try:
        found = _services(request).store.verify_token(token.strip())
    except TokenRejected as exc:
        raise Unauthenticated(str(exc)) from None
    request.state.principal = found
    return found


def local_principal() -> TokenRecord:
    """The one user of ``ferry ui`` on a local workspace: whoever holds the token it printed
    (the workspace's owner, who can read its database anyway)."""
    import getpass

    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "local"
    return TokenRecord(id="local", user=user, admin=True, scope="user", created_at=0.0)


_Principal = Depends(principal)


async def require_user(who: TokenRecord = _Principal) -> TokenRecord:
    if who.run_id is not None:
        raise Forbidden(f"a token scoped to run {who.run_id} cannot do this (a user token can)")
    return who


async def require_admin(who: TokenRecord = _Principal) -> TokenRecord:
    if who.run_id is not None or not who.admin:
        raise Forbidden(f"user {who.user!r} is not an admin of this server")
    return who


def require_runs(svc: ServerServices, who: TokenRecord, run_ids: Iterable[str]) -> None:
    """Refuse (403) a run-scoped token touching a run outside its run's family."""
    allowed = who.run_id
    if allowed is None:
        return
    for run_id in dict.fromkeys(run_ids):
        if not _descends(svc, run_id, allowed):
            raise Forbidden(f"a token scoped to run {allowed} cannot touch run {run_id}")


def _descends(svc: ServerServices, run_id: str, ancestor: str) -> bool:
    current: str | None = run_id
    for _ in range(_MAX_DEPTH):
        if current is None:
            return False
        if current == ancestor:
            return True
        try:
            current = svc.store.get_run(current).parent_id
        except RunNotFound:
            return False
    return False
