"""The server's own tables: users, tokens, and the queue of runs it supervises.

:class:`ServerStore` is the SQL run store plus what only ``ferry server`` needs, so the server
never touches SQLAlchemy itself. A token is ``ferry_<id>_<secret>``: the id finds its row, and
only the SHA-256 of the secret is stored (a secret of 256 random bits needs no slow hash); it
is compared in constant time. A token's scope is ``user`` (what its user may do) or
``run:<run id>`` (that run and its children, nothing else — what a job gets).

Runs submitted to a server wait in ``dispatch`` until one server process claims them with a
compare-and-set on ``owner``, so processes sharing the database never start a run twice.

Example::

    store = ServerStore("postgresql+psycopg://ferry@db/ferry")
    store.add_user("ada", admin=True)
    token = store.create_token("ada")            # shown once; only its hash is kept
    store.verify_token(token).user               # "ada"
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from ferry.errors import ConfigError, StoreError
from ferry.status import RunStatus
from ferry.tracking import rows
from ferry.tracking import schema as t
from ferry.tracking.sql import SqlRunStore

TOKEN_PREFIX = "ferry_"
_TOKEN = re.compile(r"^ferry_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,254}$")
USER_SCOPE = "user"


class TokenRejected(StoreError):
    """A token that is unknown, malformed, expired or revoked (the server answers 401)."""


@dataclass(frozen=True)
class UserRecord:
    name: str
    admin: bool
    created_at: float


@dataclass(frozen=True)
class TokenRecord:
    """What a verified token allows: its user, whether an admin, and its scope."""

    id: str
    user: str
    admin: bool
    scope: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    @property
    def run_id(self) -> str | None:
        """The run a run-scoped token is for (None for a user token)."""
        return self.scope[4:] if self.scope.startswith("run:") else None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _USER.match(name):
        raise ConfigError(
            f"user name {name!r} is not valid: use 1-255 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


class ServerStore(SqlRunStore):
    """The run store of ``ferry server``: runs, plus users, tokens and the dispatch queue."""

    # users -------------------------------------------------------------------------------
    def add_user(self, name: str, *, admin: bool = False) -> UserRecord:
        check_user_name(name)
        record = UserRecord(name, admin, time.time())
        with self._write() as conn:
            if not rows.insert_ignore(
                conn, t.users, {"name": name, "admin": admin, "created_at": record.created_at}
            ):
                raise ConfigError(f"a user {name!r} exists already")
        return record

    def get_user(self, name: str) -> UserRecord | None:
        c = t.users.c
        with self._read() as conn:
            row = conn.execute(sa.select(c.name, c.admin, c.created_at).where(c.name == name))
            found = row.first()
        return UserRecord(found.name, bool(found.admin), found.created_at) if found else None

    def list_users(self) -> list[UserRecord]:
        c = t.users.c
        with self._read() as conn:
            found = conn.execute(sa.select(c.name, c.admin, c.created_at).order_by(c.name))
            return [UserRecord(r.name, bool(r.admin), r.created_at) for r in found]

    # tokens ------------------------------------------------------------------------------
    def create_token(
        self, user: str, *, scope: str = USER_SCOPE, expires_in: float | None = None
    ) -> str:
        """A new token for ``user`` (returned once, never stored in clear)."""
        if scope != USER_SCOPE and not scope.startswith("run:"):
            raise ConfigError(f"a token's scope is 'user' or 'run:<run id>', not {scope!r}")
        if expires_in is not None and expires_in <= 0:
            raise ConfigError(f"a token must live a positive number of seconds, not {expires_in}")
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = time.time()
        with self._write() as conn:
            if (
                conn.execute(sa.select(t.users.c.name).where(t.users.c.name == user)).first()
                is None
            ):
                raise ConfigError(
                    f"there is no user {user!r}; add one with `ferry server user add {user}`"
                )
            conn.execute(
                t.tokens.insert().values(
                    id=token_id,
                    user_name=user,
                    secret_hash=_hash(secret),
                    scope=scope,
                    created_at=now,
                    expires_at=None if expires_in is None else now + expires_in,
                )
            )
        return f"{TOKEN_PREFIX}{token_id}_{secret}"

    def verify_token(self, token: str, *, now: float | None = None) -> TokenRecord:
        """The token's record; :class:`TokenRejected` (saying why, never echoing the token)."""
        match = _TOKEN.match(token or "")
        if match is None:
            raise TokenRejected("the token is not a ferry token (ferry_<id>_<secret>)")
        token_id, secret = match.groups()
        c, u = t.tokens.c, t.users.c
        with self._read() as conn:
            row = conn.execute(
                sa.select(
                    c.id,
                    c.user_name,
                    c.secret_hash,
                    c.scope,
                    c.created_at,
                    c.expires_at,
                    c.revoked_at,
                    u.admin,
                )
                .join(t.users, u.name == c.user_name)
                .where(c.id == token_id)
            ).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            raise TokenRejected("the token is not known to this server")
        if row.revoked_at is not None:
            raise TokenRejected(f"the token {token_id} was revoked; create a new one")
        moment = time.time() if now is None else now
        if row.expires_at is not None and moment >= row.expires_at:
            raise TokenRejected(f"the token {token_id} has expired; create a new one")
        return TokenRecord(
            row.id, row.user_name, bool(row.admin), row.scope, row.created_at, row.expires_at
        )

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token by its id (the part after ``ferry_``); False if there is none."""
        c = t.tokens.c
        with self._write() as conn:
            done = conn.execute(
                t.tokens.update()
                .where(c.id == token_id, c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            return bool(done.rowcount)

    def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        c, u = t.tokens.c, t.users.c
        stmt = sa.select(
            c.id, c.user_name, u.admin, c.scope, c.created_at, c.expires_at, c.revoked_at
        ).join(t.users, u.name == c.user_name)
        if user is not None:
            stmt = stmt.where(c.user_name == user)
        with self._read() as conn:
            found = conn.execute(stmt.order_by(c.created_at)).all()
        return [
            TokenRecord(
                r.id, r.user_name, bool(r.admin), r.scope, r.created_at, r.expires_at, r.revoked_at
            )
            for r in found
        ]

    def revoke_ended_run_tokens(self) -> int:
        """Revoke the tokens of runs that have ended (a job's token dies with its run)."""
        c, r = t.tokens.c, t.runs.c
        ended = [s.value for s in RunStatus if s.is_terminal()]
        scopes = sa.select(sa.literal("run:") + r.id).where(r.status.in_(ended))
        with self._write() as conn:
            done = conn.execute(
                t.tokens.update()
                .where(c.revoked_at.is_(None), c.scope.like("run:%"), c.scope.in_(scopes))
                .values(revoked_at=time.time())
            )
            return int(done.rowcount or 0)

    # the dispatch queue ------------------------------------------------------------------
    def request_dispatch(self, run_id: str, user: str | None = None) -> bool:
        """Queue a recorded run for a server process to supervise (its job acting for
        ``user``); False if it was queued already."""
        with self._write() as conn:
            if not rows.existing_run_ids(conn, [run_id]):
                from ferry.errors import RunNotFound

                raise RunNotFound(f"no run {run_id!r} in this workspace")
            return rows.insert_ignore(
                conn,
                t.dispatch,
                {"run_id": run_id, "requested_at": time.time(), "user_name": user},
            )

    def claim_dispatch(self, owner: str, limit: int) -> list[str]:
        """Claim up to ``limit`` waiting runs for ``owner``, oldest first; each claim is a
        compare-and-set, so a run goes to exactly one process."""
        c = t.dispatch.c
        claimed: list[str] = []
        if limit <= 0:
            return claimed
        with self._read() as conn:
            waiting = (
                conn.execute(
                    sa.select(c.run_id)
                    .where(c.owner.is_(None))
                    .order_by(c.requested_at)
                    .limit(limit * 4)
                )
                .scalars()
                .all()
            )
        for run_id in waiting:
            with self._write() as conn:
                won = conn.execute(
                    t.dispatch.update()
                    .where(c.run_id == run_id, c.owner.is_(None))
                    .values(owner=owner, claimed_at=time.time())
                ).rowcount
            if won:
                claimed.append(run_id)
                if len(claimed) >= limit:
                    break
        return claimed

    def beat_waiting(self, now: float, older_than: float) -> int:
        """Heartbeats for the queued runs no server process has claimed yet (the live server
        keeps them, so readers do not judge them lost), those last beaten before ``older_than``;
        returns how many."""
        c, r = t.dispatch.c, t.runs.c
        waiting = sa.select(c.run_id).where(c.owner.is_(None))
        with self._write() as conn:
            done = conn.execute(
                t.runs.update()
                .where(
                    r.id.in_(waiting),
                    r.status == RunStatus.QUEUED.value,
                    r.supervisor_pid.is_(None),
                    sa.or_(r.heartbeat_at.is_(None), r.heartbeat_at < older_than),
                )
                .values(heartbeat_at=now)
            )
            return int(done.rowcount or 0)

    def dispatch_user(self, run_id: str) -> str | None:
        """Who asked for the run to be supervised (None when nobody queued it)."""
        c = t.dispatch.c
        with self._read() as conn:
            found = conn.execute(sa.select(c.user_name).where(c.run_id == run_id)).first()
        return found.user_name if found else None

    def claims(self) -> dict[str, str]:
        """{run id: owner} of every claimed run whose run has not ended."""
        c, r = t.dispatch.c, t.runs.c
        ended = [s.value for s in RunStatus if s.is_terminal()]
        with self._read() as conn:
            found = conn.execute(
                sa.select(c.run_id, c.owner)
                .join(t.runs, r.id == c.run_id)
                .where(c.owner.is_not(None), r.status.not_in(ended))
            )
            return {row.run_id: row.owner for row in found}

    def reclaim(self, run_id: str, old_owner: str, new_owner: str) -> bool:
        """Take over a claim from a process that died (compare-and-set on the owner)."""
        c = t.dispatch.c
        with self._write() as conn:
            return bool(
                conn.execute(
                    t.dispatch.update()
                    .where(c.run_id == run_id, c.owner == old_owner)
                    .values(owner=new_owner, claimed_at=time.time())
                ).rowcount
            )
