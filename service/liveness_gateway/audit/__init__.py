"""The decision audit trail (README "Audit trail"): one durable record per decision.

:func:`start` builds the store the configuration names (SQLite or PostgreSQL), the journal,
the writer and the retention purge, and returns the :class:`AuditTrail` the servicer uses.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import CollectorRegistry

from liveness_gateway.audit.journal import Journal
from liveness_gateway.audit.retention import Retention
from liveness_gateway.audit.sqlite import SqliteStore, sqlite_path
from liveness_gateway.audit.store import Store, StoreUnavailableError
from liveness_gateway.audit.trail import AuditTrail, note_attempt
from liveness_gateway.audit.writer import AuditWriter
from liveness_gateway.config import AuditConfig
from liveness_gateway.metrics import AuditMetrics

log = logging.getLogger(__name__)


def open_store(config: AuditConfig) -> Store:
    """The store ``config.url`` names (not connected yet)."""
    strict = config.durability == "strict"
    if config.postgres:
        from liveness_gateway.audit.postgres import PostgresStore

        return PostgresStore(config.url, config.password, synchronous_commit=strict)
    return SqliteStore(sqlite_path(config.url), synchronous="FULL" if strict else "NORMAL")


class RunningAudit:
    """The audit trail of a started gateway: the trail, its store and its background tasks."""

    def __init__(self, trail: AuditTrail, retention: Retention | None) -> None:
        self.trail = trail
        self.store = trail.writer.store
        self.retention = retention
        self._stopped = False

    async def stop(self) -> None:
        """After the server stopped: write what is queued, close the store and journal."""
        if self._stopped:
            return
        self._stopped = True
        if self.retention is not None:
            await self.retention.stop()
        await self.trail.writer.stop()


async def start(config: AuditConfig, registry: CollectorRegistry) -> RunningAudit:
    metrics = AuditMetrics(registry)
    journal = None
    if config.journal_dir:
        journal = Journal(Path(config.journal_dir), config.journal_max_bytes)
    writer = AuditWriter(
        open_store(config),
        journal,
        metrics,
        strict=config.durability == "strict",
        group_commit_s=config.group_commit_ms / 1000,
    )
    await writer.start()
    retention = None
    if config.retention_days > 0:
        retention = Retention(writer.store, config.retention_days, metrics)
        retention.start()
    log.info(
        "audit trail on: %s store, %s durability, journal %s",
        writer.store.kind,
        config.durability,
        config.journal_dir or "off",
    )
    return RunningAudit(AuditTrail(writer, record_refused=config.record_refused), retention)


__all__ = [
    "AuditTrail",
    "RunningAudit",
    "StoreUnavailableError",
    "note_attempt",
    "open_store",
    "start",
]
