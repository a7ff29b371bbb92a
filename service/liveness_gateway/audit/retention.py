"""Retention: records older than ``--audit-retention-days`` are deleted in the background,
a small batch per transaction, so that a purge never holds the table for long."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from liveness_gateway.audit.store import Store, StoreUnavailableError
from liveness_gateway.metrics import AuditMetrics

log = logging.getLogger(__name__)

PURGE_BATCH = 500
PURGE_INTERVAL_S = 600.0
"""How often the purge looks for expired records."""
_PAUSE_S = 0.05
"""Between two batches of one purge: the writer gets the database in between."""
_MAX_BATCHES = 10_000
"""Per purge run; whatever is left waits for the next run."""


class Retention:
    def __init__(
        self,
        store: Store,
        days: float,
        metrics: AuditMetrics,
        *,
        interval_s: float = PURGE_INTERVAL_S,
        batch: int = PURGE_BATCH,
    ) -> None:
        self._store = store
        self._keep_us = int(days * 86_400 * 1_000_000)
        self._metrics = metrics
        self._interval_s = interval_s
        self._batch = batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="audit-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def purge(self, now_s: float | None = None) -> int:
        """Delete every record older than the retention period; returns how many."""
        cutoff = int((time.time() if now_s is None else now_s) * 1_000_000) - self._keep_us
        total = 0
        for _ in range(_MAX_BATCHES):
            deleted = await self._store.purge(cutoff, self._batch)
            total += deleted
            self._metrics.records_purged.inc(deleted)
            if deleted < self._batch:
                break
            await asyncio.sleep(_PAUSE_S)
        return total

    async def _loop(self) -> None:
        while True:
            try:
                purged = await self.purge()
                if purged:
                    log.info("audit: purged %d records past the retention period", purged)
            except StoreUnavailableError as exc:
                log.info("audit: retention purge skipped (%s)", exc)
            except Exception:
                log.exception("audit: retention purge failed")
            await asyncio.sleep(self._interval_s)
