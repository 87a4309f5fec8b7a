"""Where the benchmark runs: fresh SQLite files in a folder, or fresh PostgreSQL schemas.

Every measurement gets a fresh database (:meth:`Target.fresh`), removed afterwards. psycopg is
imported only by :class:`PostgresTarget`, so the SQLite benchmark needs no third-party package.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from durably.bench import floors

#: Parked: running, no owner, a timer set (a sleeping workflow unwound from memory).
PARKED_SQL = (
    "SELECT count(*) FROM workflows WHERE status = 'running' AND owner IS NULL "
    "AND wake_at IS NOT NULL"
)


class Target(Protocol):
    """A kind of database the benchmark can create fresh copies of."""

    backend: str

    def fresh(self, label: str) -> AbstractContextManager[str]:
        """A fresh, empty database's durably URL; removed afterwards."""
        ...

    def floor_commit(self, url: str, commits: int) -> dict[str, float]:
        """Mean time of one committed single-row insert on a fresh journal-shaped table."""
        ...

    def floor_batch(self, url: str, batches: int, rows: int) -> dict[str, float]:
        """Rows/s when ``rows`` inserted rows share each commit."""
        ...

    def count_parked(self, url: str) -> int:
        """How many workflows are parked (running, no owner, a timer set)."""
        ...

    def info(self) -> dict[str, Any]:
        """What to record about this database in the results."""
        ...


def filesystem(folder: Path) -> str:
    """The filesystem type holding ``folder`` (Linux /proc/mounts), else 'unknown'."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    target = str(folder.resolve())
    best, fstype = "", "unknown"
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, fstype = mount, parts[2]
    return fstype


class SqliteTarget:
    """Fresh SQLite files ``bench-<run>-<label>.db`` in ``folder`` (WAL, synchronous=FULL, or
    NORMAL when ``relaxed``: durably's ``?synchronous=normal`` opt-in)."""

    backend = "sqlite"

    def __init__(self, folder: Path, *, relaxed: bool = False) -> None:
        self.folder = folder
        self.relaxed = relaxed
        self._sync = "NORMAL" if relaxed else "FULL"
        self._run = uuid.uuid4().hex[:8]

    @contextmanager
    def fresh(self, label: str) -> Iterator[str]:
        path = self.folder / f"bench-{self._run}-{label}.db"
        try:
            yield f"sqlite:///{path.resolve()}" + ("?synchronous=normal" if self.relaxed else "")
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    @staticmethod
    def _path(url: str) -> str:
        return url.removeprefix("sqlite://").split("?", 1)[0]

    def _connect(self, url: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path(url), isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._sync}")  # as durably's store sets it
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    def floor_commit(self, url: str, commits: int) -> dict[str, float]:
        conn = self._connect(url)
        try:
            return floors.commit_floor(conn, "?", commits, begin="BEGIN IMMEDIATE")
        finally:
            conn.close()

    def floor_batch(self, url: str, batches: int, rows: int) -> dict[str, float]:
        conn = self._connect(url)
        try:
            return floors.batch_floor(conn, "?", batches, rows, begin="BEGIN IMMEDIATE")
        finally:
            conn.close()

    def count_parked(self, url: str) -> int:
        conn = sqlite3.connect(self._path(url), timeout=30.0)
        try:
            row = conn.execute(PARKED_SQL).fetchone()
        finally:
            conn.close()
        return int(row[0]) if row else 0

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "sqlite": sqlite3.sqlite_version,
            "db_dir": str(self.folder),
            "filesystem": filesystem(self.folder),
            "durability": f"WAL, synchronous={self._sync}",
        }


def server_url(url: str) -> str:
    """``url`` without durably's own options (what psycopg accepts)."""
    parts = urlsplit(url)
    own = ("schema", "synchronous_commit")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in own]
    return urlunsplit(parts._replace(query=urlencode(query)))


class PostgresTarget:
    """Fresh schemas ``bench_<hex>`` on the server of ``url``, each dropped afterwards. With
    ``relaxed``, durably and the floors run with ``synchronous_commit=off``."""

    backend = "postgres"

    def __init__(self, url: str, *, relaxed: bool = False) -> None:
        import psycopg  # optional dependency: only the PostgreSQL benchmark needs it

        from durably.errors import DatabaseUnavailableError
        from durably.storage.postgres import check_conninfo
        from durably.storage.urls import redact_url, scrub

        self._psycopg = psycopg
        self.relaxed = relaxed
        self.server = server_url(url)
        check_conninfo(url, self.server)
        try:
            with self._admin() as conn:
                self.version, self.synchronous_commit, self.fsync = (
                    str(conn.execute(f"SHOW {name}").fetchone()[0])
                    for name in ("server_version", "synchronous_commit", "fsync")
                )
        except psycopg.Error as exc:
            raise DatabaseUnavailableError(
                f"cannot connect to PostgreSQL at {redact_url(url)} "
                f"({scrub(' '.join(str(exc).split()), url)}); check that it runs and the URL"
            ) from None

    def _admin(self) -> Any:
        return self._psycopg.connect(self.server, autocommit=True, connect_timeout=10)

    @contextmanager
    def fresh(self, label: str) -> Iterator[str]:
        from psycopg import sql

        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        sep = "&" if "?" in self.server else "?"
        try:
            relax = "&synchronous_commit=off" if self.relaxed else ""
            yield f"{self.server}{sep}schema={schema}{relax}"
        finally:
            with self._admin() as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )

    def _connect(self, url: str) -> Any:
        from psycopg import sql

        schema = dict(parse_qsl(urlsplit(url).query)).get("schema", "public")
        conn = self._psycopg.connect(self.server, autocommit=False, connect_timeout=10)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        if self.relaxed:
            conn.execute("SET synchronous_commit TO off")
        conn.commit()
        return conn

    def floor_commit(self, url: str, commits: int) -> dict[str, float]:
        with self._connect(url) as conn:
            return floors.commit_floor(conn, "%s", commits, begin=None)

    def floor_batch(self, url: str, batches: int, rows: int) -> dict[str, float]:
        with self._connect(url) as conn:
            return floors.batch_floor(conn, "%s", batches, rows, begin=None)

    def count_parked(self, url: str) -> int:
        with self._connect(url) as conn:
            row = conn.execute(PARKED_SQL).fetchone()
        return int(row[0]) if row else 0

    def info(self) -> dict[str, Any]:
        parts = urlsplit(self.server)
        return {
            "backend": self.backend,
            "postgres": self.version,
            "psycopg": self._psycopg.__version__,
            "server": f"{parts.hostname}:{parts.port or 5432}{parts.path}",
            "durability": f"synchronous_commit={'off' if self.relaxed else self.synchronous_commit}"
            f", fsync={self.fsync}",
        }
