"""The store protocol: where decisions are kept, whatever the database.

Two implementations: :mod:`.sqlite` (an embedded file, the default) and :mod:`.postgres`
(asyncpg). Both apply the schema versions in ``migrations/`` (plain SQL that both read) and
write with ``INSERT ... ON CONFLICT (id) DO NOTHING``, so a record written twice (a journal
replayed after a crash) is kept once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from liveness_gateway.audit.record import COLUMNS, Decision

SCHEMA_TABLE = "audit_schema"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> tuple[Migration, ...]:
    """The schema versions shipped in ``migrations/``, oldest first (``NNNN_name.sql``)."""
    found = []
    for entry in resources.files("liveness_gateway.audit").joinpath("migrations").iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        number, _, rest = name.partition("_")
        found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("audit migrations must be numbered 0001, 0002, ... without gaps")
    return tuple(found)


def statements(sql: str) -> list[str]:
    """A migration's statements (split on ``;`` at line ends; comments dropped)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";").strip()]


class StoreUnavailableError(Exception):
    """The database cannot be reached (or refused the write): records go to the journal."""


@dataclass(frozen=True)
class Condition:
    """One ``column op value`` term of a ListDecisions filter."""

    column: str
    op: str
    value: str | int


@dataclass(frozen=True)
class Page:
    """Which decisions one ListDecisions page reads: newest first, after ``after``."""

    conditions: tuple[Condition, ...]
    limit: int
    after: tuple[int, str] | None = None
    """The (time_us, id) of the previous page's last decision."""


def select_sql(page: Page, placeholder: str) -> tuple[str, list[str | int]]:
    """The SELECT for ``page``; ``placeholder`` is ``?`` (SQLite) or ``$`` (PostgreSQL's $1)."""
    params: list[str | int] = []

    def mark(value: str | int) -> str:
        params.append(value)
        return "?" if placeholder == "?" else f"${len(params)}"

    where = [f"{c.column} {c.op} {mark(c.value)}" for c in page.conditions]
    if page.after is not None:
        time_us, last_id = page.after
        where.append(f"(time_us, id) < ({mark(time_us)}, {mark(last_id)})")
    sql = f"SELECT {', '.join(COLUMNS)} FROM decisions"  # noqa: S608  # nosec B608
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY time_us DESC, id DESC LIMIT {int(page.limit)}"
    return sql, params


PG_TYPES = {
    "time_us": "int8",
    "score": "float8",
    "threshold": "float8",
    "attempts": "int4",
    "vendor_latency_us": "int8",
    "total_latency_us": "int8",
}
"""PostgreSQL's type of each column that is not text (for the unnest of a batch)."""


def insert_rows_sql(rows: int) -> str:
    """One INSERT of ``rows`` rows (SQLite placeholders): a batch is one statement, so in
    autocommit mode it is one transaction, and one step of the database for the thread."""
    one = "(" + ", ".join("?" for _ in COLUMNS) + ")"
    return (
        f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES "  # noqa: S608  # nosec B608
        + ", ".join(one for _ in range(rows))
        + " ON CONFLICT (id) DO NOTHING"
    )


def insert_unnest_sql() -> str:
    """One INSERT of a whole batch for PostgreSQL: one array parameter per column."""
    arrays = ", ".join(f"${i}::{PG_TYPES.get(name, 'text')}[]" for i, name in enumerate(COLUMNS, 1))
    return (
        f"INSERT INTO decisions ({', '.join(COLUMNS)}) "  # noqa: S608  # nosec B608
        f"SELECT * FROM unnest({arrays}) ON CONFLICT (id) DO NOTHING"
    )


class Store(Protocol):
    """What the writer and the query service need of a database."""

    kind: str
    """``sqlite`` or ``postgresql``: a metric label and a log word."""

    async def open(self) -> list[int]:
        """Connect and apply the schema versions not applied yet; returns those applied now.
        Raises :class:`StoreUnavailableError` when the database cannot be reached."""
        ...

    async def write(self, records: Sequence[Decision]) -> None:
        """All of ``records`` in one transaction, each id at most once; durable on return."""
        ...

    async def list(self, page: Page) -> list[Decision]: ...

    async def get(self, decision_id: str) -> Decision | None: ...

    async def purge(self, before_us: int, limit: int) -> int:
        """Delete up to ``limit`` of the oldest decisions older than ``before_us``."""
        ...

    async def ping(self) -> None:
        """Raises :class:`StoreUnavailableError` unless the database answers."""
        ...

    async def close(self) -> None: ...
