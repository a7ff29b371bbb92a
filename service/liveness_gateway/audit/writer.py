"""Writes records: group commit in strict mode, background batches in async mode.

One flusher task owns the writes. In **strict** mode a call's response waits on its
record's future: the flusher commits whatever has arrived as one transaction as soon as the
previous commit is done (group commit), and no call waits behind more than one commit in
progress. While :data:`GROUP_COMMIT_SIBLINGS` or more other admitted calls are under way
(their records are coming), the flusher first gathers for up to ``group_commit_s`` or until
as many records have arrived, as PostgreSQL's ``commit_delay`` does when ``commit_siblings``
are active: under load a commit then carries several records instead of one or two (each
commit is an fsync), and a lone call is committed at once. In **async** mode every batch
gathers for :data:`ASYNC_INTERVAL_S` and is committed in the background; nobody waits.

When a commit fails (the database is unreachable), the batch goes to the journal (fsynced)
and the writer stays *degraded*: further batches go to the journal as well, and a recovery
task tries the database every :data:`RETRY_S`; once it answers, the journal is replayed and
the writer writes to the database again. A batch that fits nowhere fails its calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from liveness_gateway.audit.journal import Journal, JournalFullError
from liveness_gateway.audit.record import Decision
from liveness_gateway.audit.store import Store, StoreUnavailableError
from liveness_gateway.metrics import AuditMetrics

log = logging.getLogger(__name__)

MAX_BATCH = 1000
"""Records in one transaction at most."""
GROUP_COMMIT_S = 0.002
"""Strict mode, by default: how long a batch may wait for the records of calls under way."""
GROUP_COMMIT_SIBLINGS = 2
"""Strict mode: a batch waits only while at least this many calls are under way."""
ASYNC_INTERVAL_S = 0.05
"""Async mode: how long records gather before a commit (the loss window's main part)."""
RETRY_S = 1.0
"""Degraded: how often the database is tried again."""
REPLAY_CHUNK = 500
RECORD_BYTES = 1024
"""A generous size of one journal line, for checking room before a call starts."""


class AuditUnavailableError(Exception):
    """The record could be kept neither in the database nor in the journal."""


@dataclass
class _Pending:
    record: Decision
    done: asyncio.Future[None] | None


class AuditWriter:
    def __init__(
        self,
        store: Store,
        journal: Journal | None,
        metrics: AuditMetrics,
        *,
        strict: bool,
        group_commit_s: float = GROUP_COMMIT_S,
    ) -> None:
        self.store = store
        self.journal = journal
        self.strict = strict
        self._group_commit_s = group_commit_s
        self._metrics = metrics
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        """Held while the journal is appended to or replayed."""
        self.degraded = False
        self._flusher: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._stopping = False
        self.pending = 0
        """Records submitted and not yet kept anywhere (the room check counts them)."""
        self.coming = 0
        """Calls admitted (see :meth:`admit`) whose records are not submitted yet."""
        self._gathering = False
        self._awaited = 0
        """While gathering: records still awaited from the calls that were under way."""

    async def start(self) -> None:
        """Open the store (apply migrations) and replay what earlier processes journaled.
        Without a journal an unreachable database stops the start; with one, the gateway
        starts degraded and records go to the journal until the database answers."""
        if self.journal is not None:
            self.journal.open()
        try:
            applied = await self.store.open()
            if applied:
                log.info("audit: applied schema versions %s", applied)
        except StoreUnavailableError as exc:
            if self.journal is None:
                raise StoreUnavailableError(
                    f"the audit {self.store.kind} store is unreachable ({exc}) and there is no "
                    "journal (--audit-journal-dir) to hold records until it answers"
                ) from exc
            log.error("audit: the %s store is unreachable; journaling", self.store.kind)
            self._degrade()
        else:
            try:
                await self._replay()
            except StoreUnavailableError:
                self._degrade()
        self._metrics.database_up.set(0 if self.degraded else 1)
        self._flusher = asyncio.create_task(self._flush_loop(), name="audit-flusher")

    def has_room(self, calls: int = 1) -> bool:
        """Could the records of ``calls`` more calls (and those queued or coming) be kept?
        Only a degraded writer can say no."""
        if not self.degraded:
            return True
        if self.journal is None:
            return False
        return self.journal.free_bytes() >= (self.pending + self.coming + calls) * RECORD_BYTES

    def admit(self) -> bool:
        """A call is about to reach a vendor: False when its record could not be kept,
        else it is counted as coming until :meth:`release`."""
        if not self.has_room():
            return False
        self.coming += 1
        return True

    def release(self) -> None:
        """An admitted call's record is about to be submitted, or will never be."""
        self.coming -= 1
        if self._gathering:
            self._awaited -= 1
            if self._awaited <= 0:
                self._wake.set()

    def submit(self, record: Decision, *, awaited: bool = True) -> asyncio.Future[None] | None:
        """Queue ``record``; in strict mode, the future is done when it is durable (none when
        nobody will wait for it: an unretrieved failure would be logged as a bug)."""
        done = asyncio.get_running_loop().create_future() if self.strict and awaited else None
        self._queue.append(_Pending(record, done))
        self.pending += 1
        if not self._gathering or len(self._queue) >= MAX_BATCH:
            self._wake.set()
        return done

    async def stop(self) -> None:
        """Write what is queued, then close the store and the journal."""
        self._stopping = True
        self._wake.set()
        if self._flusher is not None:
            await self._flusher
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        await self.store.close()
        if self.journal is not None:
            self.journal.close()

    # --- the flusher ------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
            if not self.strict and not self._stopping and len(self._queue) < MAX_BATCH:
                # Async: every batch gathers for the interval, also when records arrived
                # during the previous commit (else batches shrink to one commit's worth).
                await asyncio.sleep(ASYNC_INTERVAL_S)
            if (
                self.strict
                and self._group_commit_s > 0
                and self.coming >= GROUP_COMMIT_SIBLINGS
                and len(self._queue) < MAX_BATCH
                and not self._stopping
            ):
                await self._gather()
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            if batch:
                await self._commit(batch)

    async def _gather(self) -> None:
        """Wait until as many more records have arrived as calls were under way when it
        began (calls that start meanwhile do not extend it), for ``group_commit_s`` at most."""
        self._gathering = True
        self._awaited = self.coming
        self._wake.clear()
        timer = asyncio.get_running_loop().call_later(self._group_commit_s, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()
            self._gathering = False

    async def _commit(self, batch: Sequence[_Pending]) -> None:
        records = [p.record for p in batch]
        started = time.perf_counter()
        failure: BaseException | None = None
        target = "database"
        try:
            target = await self._keep(records)
        except (AuditUnavailableError, OSError) as exc:
            failure = exc
        except Exception as exc:  # never leave a caller waiting on a future
            log.exception("audit: unexpected failure writing records")
            failure = exc
        self.pending -= len(batch)
        if failure is None:
            self._metrics.written(target, len(records), time.perf_counter() - started)
        else:
            self._metrics.failed(len(records))
            log.error("audit: %d records could not be kept (%s)", len(records), failure)
        for pending in batch:
            if pending.done is not None and not pending.done.done():
                if failure is None:
                    pending.done.set_result(None)
                else:
                    pending.done.set_exception(AuditUnavailableError(str(failure)))

    async def _to_store(self, records: Sequence[Decision]) -> bool:
        try:
            await self.store.write(records)
        except StoreUnavailableError as exc:
            log.error("audit: writing to the %s store failed (%s)", self.store.kind, exc)
            self._degrade()
            return False
        return True

    async def _keep(self, records: Sequence[Decision]) -> str:
        """Commit ``records`` to the store, else to the journal; says which."""
        if not self.degraded and await self._to_store(records):
            return "database"
        journal = self.journal
        if journal is None:
            raise AuditUnavailableError("the database is unreachable and there is no journal")
        async with self._lock:
            # Recovered while this batch waited for the replay to finish?
            if not self.degraded and await self._to_store(records):
                return "database"
            try:
                await asyncio.to_thread(journal.append, records)
            except JournalFullError as exc:
                raise AuditUnavailableError(f"the journal is full ({exc})") from exc
        self._metrics.journal(journal.size, journal.records)
        return "journal"

    # --- degraded mode ----------------------------------------------------------------------

    def _degrade(self) -> None:
        self.degraded = True
        self._metrics.database_up.set(0)
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._recover(), name="audit-recovery")

    async def _recover(self) -> None:
        while self.degraded:
            await asyncio.sleep(RETRY_S)
            try:
                await self.store.ping()
                await self._replay(recovering=True)
            except StoreUnavailableError as exc:
                log.info("audit: the %s store is still unreachable (%s)", self.store.kind, exc)
                continue
            except Exception:
                log.exception("audit: replaying the journal failed")
                continue
            log.warning("audit: the %s store is back; journal replayed", self.store.kind)

    async def _replay(self, *, recovering: bool = False) -> None:
        """Write every journaled record to the store, then forget the journal files. Holds
        the journal lock: no append happens between the last read and the clearing, and a
        recovering writer leaves degraded mode before any batch may append again."""
        journal = self.journal
        if journal is None:
            if recovering:
                self.degraded = False
                self._metrics.database_up.set(1)
            return
        async with self._lock:
            with journal.pending() as files:
                for path, records in files:
                    for i in range(0, len(records), REPLAY_CHUNK):
                        await self.store.write(records[i : i + REPLAY_CHUNK])
                    await asyncio.to_thread(journal.clear, path)
                    self._metrics.replayed(len(records))
                    if records:
                        log.info("audit: replayed %d records from %s", len(records), path.name)
            if recovering:
                self.degraded = False
                self._metrics.database_up.set(1)
            self._metrics.journal(journal.size, journal.records)
