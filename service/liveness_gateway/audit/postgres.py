"""The production store: PostgreSQL through asyncpg's connection pool.

The password never comes from the URL (a flag shows in ``ps``): it is passed separately,
from ``LIVENESS_AUDIT_PASSWORD`` or the file ``LIVENESS_AUDIT_PASSWORD_FILE`` names.
Migrations take a transaction-scoped advisory lock, so replicas starting together apply each
version once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from liveness_gateway.audit.record import COLUMNS, Decision
from liveness_gateway.audit.store import (
    SCHEMA_TABLE,
    Page,
    StoreUnavailableError,
    insert_unnest_sql,
    migrations,
    select_sql,
    statements,
)

T = TypeVar("T")

_CONNECT_TIMEOUT_S = 3.0
_COMMAND_TIMEOUT_S = 10.0
_POOL_MAX = 4
_MIGRATION_LOCK = 0x6C697665  # "live": the advisory lock key of migrations
_INSERT = insert_unnest_sql()


async def _keep_session(conn: Any) -> None:
    """The pool's reset when a connection comes back: nothing beyond asyncpg's own rollback
    of a transaction left open. Its default (``RESET ALL; CLOSE ALL; UNLISTEN *;
    pg_advisory_unlock_all()``) is one more round trip after every batch, inside a strict
    call's wait, and would undo the ``synchronous_commit = off`` that async durability sets
    per connection. The store keeps no other session state: no cursors or listeners, and the
    migrations' advisory lock is transaction-scoped."""


async def apply_migrations(conn: Any) -> list[int]:
    applied: list[int] = []
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)"
    )
    for migration in migrations():
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            done = await conn.fetchval(
                f"SELECT 1 FROM {SCHEMA_TABLE} WHERE version = $1",  # noqa: S608  # nosec B608
                migration.version,
            )
            if done is None:
                for statement in statements(migration.sql):
                    await conn.execute(statement)
                await conn.execute(
                    f"INSERT INTO {SCHEMA_TABLE} VALUES ($1, $2, $3)",  # noqa: S608  # nosec B608
                    migration.version,
                    migration.name,
                    int(time.time() * 1e6),
                )
                applied.append(migration.version)
    return applied


class PostgresStore:
    """:class:`~liveness_gateway.audit.store.Store` on PostgreSQL."""

    kind = "postgresql"

    def __init__(
        self,
        url: str,
        password: str = "",  # nosec B107
        *,
        synchronous_commit: bool = True,
    ) -> None:
        self._url = url
        self._password = password
        self._synchronous_commit = synchronous_commit
        self._pool: Any = None
        self._migrated = False

    async def _init_connection(self, conn: Any) -> None:
        if not self._synchronous_commit:  # async durability: the commit need not wait on WAL
            await conn.execute("SET synchronous_commit = off")

    async def _connect(self) -> None:
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                password=self._password or None,
                min_size=1,
                max_size=_POOL_MAX,
                timeout=_CONNECT_TIMEOUT_S,
                command_timeout=_COMMAND_TIMEOUT_S,
                init=self._init_connection,
                reset=_keep_session,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailableError(f"postgresql: {type(exc).__name__}") from exc

    async def _ensure(self) -> None:
        await self._connect()
        if not self._migrated:
            await self._with(apply_migrations)
            self._migrated = True

    async def _with(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        pool = self._pool
        try:
            async with pool.acquire(timeout=_CONNECT_TIMEOUT_S) as conn:
                return await fn(conn)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailableError(f"postgresql: {type(exc).__name__}") from exc

    async def open(self) -> list[int]:
        await self._connect()
        applied = await self._with(apply_migrations)
        self._migrated = True
        return applied

    async def write(self, records: Sequence[Decision]) -> None:
        """The batch as one statement (an unnest of one array per column): one round trip,
        one transaction, one WAL flush."""
        columns = [list(values) for values in zip(*(r.as_row() for r in records), strict=True)]
        await self._ensure()
        await self._with(lambda conn: conn.execute(_INSERT, *columns))

    async def list(self, page: Page) -> list[Decision]:
        sql, params = select_sql(page, "$")
        await self._ensure()
        rows = await self._with(lambda conn: conn.fetch(sql, *params))
        return [Decision(*row) for row in rows]

    async def get(self, decision_id: str) -> Decision | None:
        sql = f"SELECT {', '.join(COLUMNS)} FROM decisions WHERE id = $1"  # noqa: S608  # nosec B608
        await self._ensure()
        row = await self._with(lambda conn: conn.fetchrow(sql, decision_id))
        return None if row is None else Decision(*row)

    async def purge(self, before_us: int, limit: int) -> int:
        await self._ensure()
        status = await self._with(
            lambda conn: conn.execute(
                "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions "
                "WHERE time_us < $1 ORDER BY time_us LIMIT $2)",
                before_us,
                limit,
            )
        )
        return int(str(status).rsplit(" ", 1)[-1])

    async def ping(self) -> None:
        await self._ensure()
        await self._with(lambda conn: conn.fetchval("SELECT 1"))

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
