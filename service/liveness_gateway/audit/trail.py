"""The audit trail on the call path: one record per call, kept before the answer leaves.

The servicer calls :meth:`AuditTrail.begin` when a liveness RPC starts, :meth:`~AuditTrail.admit`
before the vendor is called, and :meth:`~AuditTrail.succeeded` or :meth:`~AuditTrail.failed`
with the outcome; the vendor exchanges note themselves through :func:`note_attempt`. The
facts the access log already gathers (request id, caller, vendor, vendor request id, verdict)
come from its :class:`~liveness_gateway.logs.CallRecord`.

What a record holds is listed in :class:`~liveness_gateway.audit.record.Decision`: of the
liveness data only its SHA-256, never the bytes; of a url nothing but the word ``url``.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import socket
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from liveness_gateway import __version__, errors
from liveness_gateway.audit.record import Decision, new_id
from liveness_gateway.audit.writer import AuditUnavailableError, AuditWriter
from liveness_gateway.errors import GatewayError
from liveness_gateway.logs import CallRecord

_HASH_IN_THREAD_BYTES = 256 * 1024
"""Larger inline data is hashed in a thread, while the vendor works."""
AUDIT_RETRY_DELAY_S = 1.0
"""The retry advice of AUDIT_UNAVAILABLE: the writer tries the database again each second."""

_VERDICTS = {1: "live", 2: "hack", 3: "review"}  # liveness.v1.Verdict


@dataclass(slots=True)
class Draft:
    """What one call's record is built from, gathered while it runs."""

    rpc: str
    source: str
    client_request_id: str
    request_data_id: str
    data: memoryview | None
    hashing: asyncio.Future[str] | None
    attempts: int = 0
    vendor_s: float = 0.0
    endpoint: str = ""
    admitted: bool = False
    closed: bool = False


class _Outcome(NamedTuple):
    """How a call ended, as its record says."""

    code: str
    reason: str
    score: float | None = None
    threshold: float | None = None
    verdict: str = ""
    data_id: str = ""
    vendor_request_id: str = ""


_draft: contextvars.ContextVar[Draft | None] = contextvars.ContextVar("audit_draft", default=None)


def note_attempt(endpoint: str, seconds: float) -> None:
    """One request sent to a vendor for the current call (upstream.py, every attempt)."""
    draft = _draft.get()
    if draft is not None:
        draft.attempts += 1
        draft.vendor_s += seconds
        draft.endpoint = endpoint


def _sha256(data: memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


class AuditTrail:
    """Builds each call's :class:`Decision` and hands it to the :class:`AuditWriter`."""

    def __init__(
        self, writer: AuditWriter, *, record_refused: bool = False, host: str | None = None
    ) -> None:
        self.writer = writer
        self._record_refused = record_refused
        self._host = host or socket.gethostname()

    def begin(self, rpc: str, request: Any) -> Draft:
        """A liveness call starts: note what its request says (never the data itself)."""
        message = getattr(request, "message", request)
        data: memoryview | None = getattr(request, "liveness_data", None)
        kind = message.WhichOneof("source") if hasattr(message, "WhichOneof") else None
        source = {None: "", "liveness_data": "data", "liveness_data_url": "url"}.get(kind, "id")
        if data is not None:
            source = "data"
        request_data_id = ""
        if source == "id":
            request_data_id = str(getattr(message, kind or "", ""))
        hashing = None
        if data is not None and len(data) > _HASH_IN_THREAD_BYTES:
            hashing = asyncio.get_running_loop().run_in_executor(None, _sha256, data)
        draft = Draft(
            rpc,
            source,
            str(getattr(message, "request_id", "")),
            request_data_id,
            data,
            hashing,
        )
        _draft.set(draft)
        return draft

    def admit(self, draft: Draft) -> None:
        """Before the vendor is called: refuse the call when its record could not be kept
        (the database is unreachable and the journal has no room)."""
        if not self.writer.admit():
            raise errors.audit_unavailable(AUDIT_RETRY_DELAY_S)
        draft.admitted = True

    async def succeeded(self, draft: Draft, call: CallRecord | None, response: Any) -> None:
        """The answer is ready: record it; in strict mode, return once it is durable.
        Raises AUDIT_UNAVAILABLE when the record could not be kept."""
        outcome = _Outcome(
            "OK",
            "",
            getattr(response, "score", None),
            getattr(response, "threshold", None),
            _VERDICTS.get(getattr(response, "verdict", 0), ""),
            getattr(response, "liveness_data_id", "") or draft.request_data_id,
            getattr(response, "vendor_request_id", ""),  # a replay's too
        )
        await self._keep(draft, call, outcome)

    async def failed(
        self, draft: Draft, call: CallRecord | None, failure: GatewayError
    ) -> GatewayError:
        """The call failed: record the failure (a refused call only when so configured).
        Returns the failure to send, AUDIT_UNAVAILABLE when the record could not be kept."""
        if draft.closed or (draft.attempts == 0 and not self._record_refused):
            self._close(draft)
            return failure
        outcome = _Outcome(
            failure.code.name,
            failure.reason,
            vendor_request_id=failure.vendor_request_id or "",
            data_id=draft.request_data_id,
        )
        try:
            await self._keep(draft, call, outcome)
        except GatewayError as err:
            return err
        return failure

    def cancelled(self, draft: Draft, call: CallRecord | None) -> None:
        """The call was cancelled (its caller went away) before it ended: a call that
        reached a vendor is recorded as CANCELLED, without waiting for the commit (nobody
        is left to answer); its admission is released either way."""
        if draft.closed:
            return
        if draft.attempts == 0 and not self._record_refused:
            self._close(draft)
            return
        digest = ""
        if draft.hashing is not None and draft.hashing.done() and not draft.hashing.cancelled():
            digest = draft.hashing.result()
        elif draft.data is not None:
            digest = _sha256(draft.data)
        outcome = _Outcome("CANCELLED", "", data_id=draft.request_data_id)
        self.writer.submit(self._record(draft, call, digest, outcome), awaited=False)

    async def _keep(self, draft: Draft, call: CallRecord | None, outcome: _Outcome) -> None:
        digest = ""
        if draft.hashing is not None:
            digest = await draft.hashing
        elif draft.data is not None:
            digest = _sha256(draft.data)
        done = self.writer.submit(self._record(draft, call, digest, outcome))
        if done is None:
            return
        try:
            await done
        except AuditUnavailableError:
            raise errors.audit_unavailable(AUDIT_RETRY_DELAY_S) from None

    def _record(
        self, draft: Draft, call: CallRecord | None, digest: str, outcome: _Outcome
    ) -> Decision:
        """The call's record; closes the draft (its admission is released)."""
        self._close(draft)
        draft.data = None
        now = time.time()
        return Decision(
            id=new_id(now),
            time_us=int(now * 1_000_000),
            request_id=call.request_id if call is not None else "",
            client_request_id=draft.client_request_id,
            caller=call.caller if call is not None else "",
            rpc=draft.rpc,
            vendor=call.vendor if call is not None else "",
            vendor_endpoint=draft.endpoint,
            vendor_request_id=(call.vendor_request_id if call is not None else "")
            or outcome.vendor_request_id,
            liveness_data_id=outcome.data_id,
            source=draft.source,
            liveness_data_sha256=digest,
            score=outcome.score,
            threshold=outcome.threshold,
            verdict=outcome.verdict,
            code=outcome.code,
            reason=outcome.reason,
            attempts=draft.attempts,
            vendor_latency_us=int(draft.vendor_s * 1_000_000),
            total_latency_us=int((time.perf_counter() - call.started) * 1_000_000)
            if call is not None
            else 0,
            gateway_version=__version__,
            host=self._host,
        )

    def _close(self, draft: Draft) -> None:
        if draft.admitted:
            draft.admitted = False
            self.writer.release()
        draft.closed = True
