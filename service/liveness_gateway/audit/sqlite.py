"""The embedded store: one SQLite file (stdlib sqlite3), committed by a writer process.

Batches go to ``sqlite_writer.py`` over a pipe and are acknowledged once committed: the
gateway's event loop waits on a pipe, not on a thread that would have to win the GIL back from
it before and after every call into SQLite (that wait was most of a strict call's added time).

WAL mode, so ListDecisions reads (its own thread and connection) never wait for a write;
``synchronous=FULL`` when every response waits for its record (strict), ``NORMAL`` in async
mode (a crash of the process loses nothing committed, a power cut may lose the last commits).
Several worker processes may share the file: SQLite serialises their writes (busy timeout).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import orjson

from liveness_gateway.audit.record import COLUMNS, Decision
from liveness_gateway.audit.store import (
    SCHEMA_TABLE,
    Page,
    StoreUnavailableError,
    insert_rows_sql,
    migrations,
    select_sql,
    statements,
)

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 5000
_CHECKPOINT_INTERVAL_S = 1.0
_WRITER_EXIT_S = 10.0
_OPEN_ATTEMPTS = 50
_OPEN_RETRY_S = 0.1
log = logging.getLogger(__name__)


def sqlite_path(url: str) -> str:
    """The file of ``sqlite:PATH``, ``sqlite:///ABSOLUTE`` or a bare path."""
    if url.startswith("sqlite://"):
        return url[len("sqlite://") :]
    return url.removeprefix("sqlite:")


def _connect(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


def _connect_retrying(path: str, synchronous: str) -> sqlite3.Connection:
    """:func:`_connect`, again while another process holds the lock that switching a new
    file to WAL needs (workers starting together): that error comes at once, without the
    busy timeout."""
    for _ in range(_OPEN_ATTEMPTS - 1):
        try:
            return _connect(path, synchronous)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(_OPEN_RETRY_S)
    return _connect(path, synchronous)


def apply_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply the schema versions this file lacks, each in its own transaction."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)"
    )
    applied: list[int] = []
    for migration in migrations():
        conn.execute("BEGIN IMMEDIATE")  # one migrating process at a time
        try:
            done = conn.execute(
                f"SELECT 1 FROM {SCHEMA_TABLE} WHERE version = ?",  # noqa: S608  # nosec B608
                (migration.version,),
            ).fetchone()
            if done is None:
                for statement in statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {SCHEMA_TABLE} VALUES (?, ?, ?)",  # noqa: S608  # nosec B608
                    (migration.version, migration.name, int(time.time() * 1e6)),
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied


class SqliteStore:
    """:class:`~liveness_gateway.audit.store.Store` on a SQLite file."""

    kind = "sqlite"

    def __init__(self, path: str, *, synchronous: str = "FULL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="audit-sqlite-write")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="audit-sqlite-read")
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._pipe = asyncio.Lock()
        """One statement at a time on the writer process' pipe."""
        self._checkpoint: asyncio.Task[None] | None = None
        self._checkpointed = time.monotonic()
        self._max_variables = 999  # SQLite's smallest default; read from the library on open

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"sqlite: {exc}") from exc

    async def open(self) -> list[int]:
        def connect() -> list[int]:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = _connect_retrying(self.path, self._synchronous)
            try:
                applied = apply_migrations(conn)
            except BaseException:
                conn.close()
                raise
            # Checkpoints are the reader thread's (see write()): a commit that checkpoints
            # copies and fsyncs the database file, a 10 ms outlier for the calls it carries.
            # This connection migrates, purges and answers pings; the writer process commits.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._max_variables = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._write_conn = conn
            return applied

        applied = await self._run(self._writer, connect)

        def connect_reader() -> None:
            self._read_conn = _connect_retrying(self.path, self._synchronous)

        await self._run(self._reader, connect_reader)
        async with self._pipe:
            if self._proc is None or self._proc.returncode is not None:
                await self._spawn()
        return applied

    def _writing(self) -> sqlite3.Connection:
        if self._write_conn is None:
            raise sqlite3.OperationalError("not open")
        return self._write_conn

    def _reading(self) -> sqlite3.Connection:
        if self._read_conn is None:
            raise sqlite3.OperationalError("not open")
        return self._read_conn

    async def write(self, records: Sequence[Decision]) -> None:
        """One multi-row INSERT in autocommit mode (the batch is one transaction), committed
        by the writer process (sqlite_writer.py); several statements in one transaction when
        the batch has more rows than one statement may carry."""
        rows = [r.as_row() for r in records]
        per_statement = max(1, self._max_variables // len(COLUMNS))
        if len(rows) <= per_statement:
            await self._send(insert_rows_sql(len(rows)), [v for row in rows for v in row])
        else:
            await self._send("BEGIN IMMEDIATE", [])
            try:
                for i in range(0, len(rows), per_statement):
                    chunk = rows[i : i + per_statement]
                    await self._send(insert_rows_sql(len(chunk)), [v for row in chunk for v in row])
                await self._send("COMMIT", [])
            except StoreUnavailableError:
                await self._send("ROLLBACK", [])
                raise
        self._checkpoint_soon()

    async def _send(self, sql: str, params: list[object]) -> None:
        """One statement to the writer process; returns once it is committed. A writer that
        died is started again, and the statement sent once more (an INSERT of ids already
        there changes nothing)."""
        frame = orjson.dumps([sql, params])
        async with self._pipe:
            for attempt in (1, 2):
                proc = self._proc
                if proc is None or proc.returncode is not None:
                    proc = await self._spawn()
                if proc.stdin is None or proc.stdout is None:  # spawned with both pipes
                    raise StoreUnavailableError("sqlite writer: no pipe")
                try:
                    proc.stdin.write(len(frame).to_bytes(4, "big") + frame)
                    await proc.stdin.drain()
                    size = int.from_bytes(await proc.stdout.readexactly(4), "big")
                    error = (await proc.stdout.readexactly(size)).decode() if size else ""
                    break
                except (OSError, asyncio.IncompleteReadError) as exc:
                    await self._reap()
                    if attempt == 2:
                        raise StoreUnavailableError(f"sqlite writer: {type(exc).__name__}") from exc
                    log.warning("audit: the sqlite writer process ended; starting another")
        if error:
            raise StoreUnavailableError(f"sqlite: {error}")

    @property
    def writer_pid(self) -> int | None:
        """The writer process' pid, while it runs."""
        return self._proc.pid if self._proc is not None else None

    async def _spawn(self) -> asyncio.subprocess.Process:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).with_name("sqlite_writer.py")),
            self.path,
            self._synchronous,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return self._proc

    async def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), _WRITER_EXIT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def _checkpoint_soon(self) -> None:
        now = time.monotonic()
        if self._checkpoint is None and now - self._checkpointed > _CHECKPOINT_INTERVAL_S:
            self._checkpointed = now
            self._checkpoint = asyncio.create_task(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        """Move the WAL into the database file, beside the writes (PASSIVE: it waits for
        nobody and nobody waits for it), so that the WAL stays small."""
        try:
            await self._run(
                self._reader,
                lambda: self._reading().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone(),
            )
        except StoreUnavailableError as exc:
            log.warning("audit: sqlite checkpoint failed (%s)", exc)
        finally:
            self._checkpoint = None

    async def list(self, page: Page) -> list[Decision]:
        sql, params = select_sql(page, "?")

        def query() -> list[Decision]:
            return [Decision(*row) for row in self._reading().execute(sql, params)]

        return await self._run(self._reader, query)

    async def get(self, decision_id: str) -> Decision | None:
        sql = f"SELECT {', '.join(COLUMNS)} FROM decisions WHERE id = ?"  # noqa: S608  # nosec B608

        def query() -> Decision | None:
            row = self._reading().execute(sql, (decision_id,)).fetchone()
            return None if row is None else Decision(*row)

        return await self._run(self._reader, query)

    async def purge(self, before_us: int, limit: int) -> int:
        def delete() -> int:
            cursor = self._writing().execute(
                "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions "
                "WHERE time_us < ? ORDER BY time_us LIMIT ?)",
                (before_us, limit),
            )
            return cursor.rowcount

        return await self._run(self._writer, delete)

    async def ping(self) -> None:
        """Answers when the file can be written; opens it (and migrates) when the start could
        not, so that a degraded writer recovers."""
        if self._write_conn is None or self._read_conn is None:
            await self.open()
            return
        await self._run(self._writer, lambda: self._writing().execute("SELECT 1").fetchone())

    async def close(self) -> None:
        async with self._pipe:
            await self._reap()
        if self._checkpoint is not None:
            await self._checkpoint

        def close_write() -> None:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None

        def close_read() -> None:
            if self._read_conn is not None:
                self._read_conn.close()
                self._read_conn = None

        await asyncio.get_running_loop().run_in_executor(self._writer, close_write)
        await asyncio.get_running_loop().run_in_executor(self._reader, close_read)
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
