"""A throw-away PostgreSQL server for tests: ``initdb`` into a temporary folder, ``pg_ctl start``.

The store contract suite runs against SQLite *and* a real PostgreSQL, so the tests start one
themselves instead of trusting a server somebody left running::

    with postgres_cluster() as cluster:
        url = cluster.create_database()      # postgresql+psycopg://postgres@127.0.0.1:PORT/db_1
        store = open_store(url)

The cluster listens on 127.0.0.1 at a free port, keeps its unix socket inside its own folder, trusts
local connections (nothing else can reach it) and trades durability for speed (``fsync=off``).
``initdb`` refuses to run as root, so under root the server runs as the ``postgres`` OS user that
Debian's package creates. A cluster left behind by a test process that was killed is stopped and
removed by the next :func:`postgres_cluster`.

Without PostgreSQL the helper raises :class:`PostgresUnavailable` naming the install command;
test fixtures turn it into a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ferry.errors import FerryError

INSTALL_HINT = (
    "install it with `apt-get install postgresql` (Debian/Ubuntu; `make test` does it through "
    "scripts/sysdeps.sh) and the driver with `uv pip install -e '.[postgres]'`"
)
_PREFIX = "ferry-pg-"
_OWNER_FILE = "owner.pid"


class PostgresUnavailable(FerryError):
    """PostgreSQL (or its Python driver) is not installed, or the server would not start."""


def find_bin_dir(pattern: str = "/usr/lib/postgresql/*/bin") -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb (or ``$PG_BIN``)."""
    override = os.environ.get("PG_BIN")
    candidates = [Path(override)] if override else []
    versions = glob.glob(pattern)
    candidates += sorted(
        (Path(v) for v in versions), key=lambda p: _version_key(p.parent.name), reverse=True
    )
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(f"PostgreSQL's initdb and pg_ctl were not found; {INSTALL_HINT}")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    """One running server; :meth:`create_database` hands out empty databases."""

    folder: Path
    bin_dir: Path
    port: int
    user: str
    #: seconds spent in initdb and in pg_ctl start (reported by the test suite)
    timings: dict[str, float] = field(default_factory=dict)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "sock"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` over TCP on the loopback address."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a database (a new name each call) and return its URL.

        It is empty, or a copy of the database ``template`` (which nobody may be connected
        to): copying a migrated schema is faster than migrating each new database.
        """
        name = name or f"ferry_{os.getpid()}_{next(self._names)}"
        try:
            import psycopg
        except ImportError as exc:
            raise PostgresUnavailable(f"the psycopg driver is missing; {INSTALL_HINT}") from exc
        conninfo = f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            # FILE_COPY: copying the tiny template beats WAL-logging it (PostgreSQL 15's default)
            strategy = (
                " STRATEGY FILE_COPY" if _version_key(self.bin_dir.parent.name) >= (15,) else ""
            )
            source = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{source}{strategy}'.encode())
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away) and remove its folder."""
        _stop(self.bin_dir, self.folder)


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root, the test server must run as the `postgres` OS user, which does not "
            f"exist; {INSTALL_HINT}"
        ) from None


def _pg(bin_dir: Path, args: list[str], folder: Path, user: pwd.struct_passwd | None) -> str:
    """Run a PostgreSQL program, as ``user`` when given (initdb and the server refuse root)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    proc = subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        extra_groups=[] if user else None,
    )
    if proc.returncode != 0:
        raise PostgresUnavailable(
            f"`{' '.join(args)}` failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
        )
    return proc.stdout


def _stop(bin_dir: Path, folder: Path) -> None:
    data = folder / "data"
    if (data / "postmaster.pid").exists():
        with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired, OSError):
            user = _server_user()
            _pg(bin_dir, ["pg_ctl", "stop", "-D", str(data), "-m", "immediate", "-w"], folder, user)
        _kill_postmaster(data)
    shutil.rmtree(folder, ignore_errors=True)


def _kill_postmaster(data: Path) -> None:
    """Last resort when pg_ctl could not stop it: SIGQUIT (immediate shutdown) by pid."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)


def remove_abandoned(bin_dir: Path) -> None:
    """Stop and remove clusters whose test process died before it could clean up."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            owner = int((folder / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            _stop(bin_dir, folder)
        except PermissionError:
            continue  # alive, someone else's


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a private PostgreSQL server; stop it and delete its files on exit."""
    bin_dir = find_bin_dir()
    user = _server_user()
    remove_abandoned(bin_dir)
    folder = Path(tempfile.mkdtemp(prefix=_PREFIX))
    try:
        (folder / _OWNER_FILE).write_text(str(os.getpid()))
        (folder / "sock").mkdir()
        if user is not None:
            for path in (folder, folder / "sock"):
                os.chown(path, user.pw_uid, user.pw_gid)
        started = time.perf_counter()
        _pg(
            bin_dir,
            [
                *("initdb", "-D", str(folder / "data"), "-U", "postgres", "-A", "trust"),
                *("-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"),
            ],
            folder,
            user,
        )
        cluster = PostgresCluster(folder, bin_dir, 0, "postgres")
        cluster.timings["initdb"] = time.perf_counter() - started
        _start(cluster, user)
        yield cluster
    finally:
        _stop(bin_dir, folder)


def _start(cluster: PostgresCluster, user: pwd.struct_passwd | None) -> None:
    """``pg_ctl start`` on a free port; another free port if one was taken meanwhile."""
    started = time.perf_counter()
    error: PostgresUnavailable | None = None
    for _attempt in range(3):
        cluster.port = _free_port()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(cluster.port),
            "unix_socket_directories": f"'{cluster.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        with open(cluster.data_dir / "postgresql.auto.conf", "a", encoding="utf-8") as fh:
            fh.writelines(f"{key} = {value}\n" for key, value in settings.items())
        log_file = cluster.folder / "server.log"
        try:
            _pg(
                cluster.bin_dir,
                [
                    *("pg_ctl", "start", "-D", str(cluster.data_dir)),
                    *("-l", str(log_file), "-w", "-t", "60"),
                ],
                cluster.folder,
                user,
            )
        except PostgresUnavailable as exc:
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            error = PostgresUnavailable(f"{exc}\nserver log:\n{log[-2000:]}")
            if "could not bind" not in log and "in use" not in log:
                break
            continue
        cluster.timings["start"] = time.perf_counter() - started
        return
    assert error is not None
    raise error
