"""Prometheus metrics: the grpc-ecosystem server metrics and the gateway's own.

One :class:`Metrics` per process, on an injectable registry (tests pass a fresh one). Every
label set is known up front, so label children are created once here and the hot path only
increments cached children. With several worker processes, prometheus_client's multiprocess
mode aggregates the workers' files (see :func:`enable_multiprocess`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    multiprocess,
    values,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from liveness_gateway import __version__, errors
from liveness_gateway.errors import VENDOR_STATUS_TABLE
from liveness_gateway.vendors import ENDPOINTS, Endpoint
from liveness_gateway.vendors.accuauth import IMAGE_INVALID

# grpc-ecosystem/go-grpc-prometheus default histogram buckets
_GRPC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Vendors are slow: reach well past 10 s.
_VENDOR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60)
# Dense near the 0.98 threshold, where decisions flip.
SCORE_BUCKETS = (
    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 1.0,
)  # fmt: skip
_KIB = 1024
_PAYLOAD_BUCKETS = tuple(_KIB * k for k in (1, 4, 16, 64, 256, 1024, 2048, 4096, 5120, 6144))

ALL_CODES = tuple(grpc.StatusCode)

OTHER_STATUS = "OTHER"
VENDOR_ERROR_STATUSES = (
    *VENDOR_STATUS_TABLE,
    errors.RATE_LIMIT_EXCEEDED,
    errors.VENDOR_UNREACHABLE,
    errors.VENDOR_TIMEOUT,
    errors.VENDOR_HTTP_ERROR,
    errors.VENDOR_BAD_REPLY,
    errors.VENDOR_REQUEST_REJECTED,
    errors.DEADLINE_EXCEEDED,
    OTHER_STATUS,
)
"""The closed set of ``status`` label values; anything else folds into OTHER."""

OUTCOMES = (
    "ok", "vendor_error", "http_error", "bad_reply", "unreachable", "timeout", "deadline",
    "cancelled", "error",
)  # fmt: skip
_OUTCOME_BY_REASON = {
    errors.VENDOR_UNREACHABLE: "unreachable",
    errors.VENDOR_TIMEOUT: "timeout",
    errors.DEADLINE_EXCEEDED: "deadline",
    errors.VENDOR_BAD_REPLY: "bad_reply",
    errors.VENDOR_HTTP_ERROR: "http_error",
}

VERDICT_NAMES = ("live", "hack", "review")
CALLER_DECISIONS = (
    "admitted", "unauthenticated", "denied", "rate_limited", "quota_exceeded",
    "state_unavailable",
)  # fmt: skip
SHED_CAUSES = ("max_in_flight", "vendor_concurrency", "vendor_rate", "circuit_open")
IMAGE_DROP_REASONS = (IMAGE_INVALID,)
STATE_OPERATIONS = ("rate", "quota", "records")
STATE_LIMITS = ("caller_rate", "caller_quota", "vendor_rate", "records")
STATE_POLICIES = ("local", "closed")
RPC_NAMES = tuple(dict.fromkeys(e.rpc for e in ENDPOINTS))
# Redis answers in well under a millisecond on a LAN; the timeout is 100 ms by default.
_STATE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


@dataclass(frozen=True)
class Method:
    """A gRPC method as the server metrics label it."""

    service: str
    name: str
    grpc_type: str  # unary, client_stream, server_stream, bidi_stream


class Metrics:
    """All of the gateway's metrics, registered on ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        methods: Iterable[Method] = (),
        endpoints: Iterable[Endpoint[Any]] = ENDPOINTS,
        callers: Iterable[str] = (),
    ) -> None:
        self.registry = registry
        endpoints = tuple(endpoints)
        rpcs = [(e.rpc, e.vendor) for e in endpoints]
        grpc_labels = ("grpc_type", "grpc_service", "grpc_method")
        self.grpc_started = Counter(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            grpc_labels,
            registry=registry,
        )
        self.grpc_handled = Counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*grpc_labels, "grpc_code"),
            registry=registry,
        )
        self.grpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level "
            "handled by the server.",
            grpc_labels,
            buckets=_GRPC_BUCKETS,
            registry=registry,
        )
        vendor_labels = ("vendor", "endpoint")
        self.vendor_seconds = Histogram(
            "liveness_gateway_vendor_request_duration_seconds",
            "Duration of vendor HTTP requests, by outcome.",
            (*vendor_labels, "outcome"),
            buckets=_VENDOR_BUCKETS,
            registry=registry,
        )
        self.vendor_errors = Counter(
            "liveness_gateway_vendor_errors_total",
            "Failed vendor requests, by the vendor's status (or the gateway's reason).",
            (*vendor_labels, "status"),
            registry=registry,
        )
        self.vendor_retries = Counter(
            "liveness_gateway_vendor_retries_total",
            "Vendor requests sent again after a retryable failure.",
            vendor_labels,
            registry=registry,
        )
        self.vendor_in_flight = Gauge(
            "liveness_gateway_vendor_requests_in_flight",
            "Vendor requests currently waiting for a reply.",
            vendor_labels,
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.circuit_state = Gauge(
            "liveness_gateway_circuit_state",
            "Circuit breaker state per vendor endpoint: 0 closed, 1 half-open, 2 open.",
            vendor_labels,
            registry=registry,
            multiprocess_mode="max",
        )
        self.concurrency_limit = Gauge(
            "liveness_gateway_vendor_concurrency_limit",
            "Requests a vendor endpoint may have in flight now (adaptive: follows its latency).",
            vendor_labels,
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.shed = Counter(
            "liveness_gateway_shed_total",
            "Calls refused at once to protect the gateway or a vendor, by cause.",
            ("cause",),
            registry=registry,
        )
        self.rpcs_in_flight = Gauge(
            "liveness_gateway_rpcs_in_flight",
            "Liveness RPCs being handled now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.caller_calls = Counter(
            "liveness_gateway_caller_calls_total",
            "Liveness calls by caller and what the gateway decided about them.",
            ("caller", "rpc", "decision"),
            registry=registry,
        )
        self.score = Histogram(
            "liveness_gateway_score",
            "Vendor hack scores returned to callers.",
            ("rpc", "vendor"),
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        self.verdicts = Counter(
            "liveness_gateway_verdicts_total",
            "Verdicts returned to callers.",
            ("rpc", "verdict"),
            registry=registry,
        )
        self.payload_bytes = Histogram(
            "liveness_gateway_payload_bytes",
            "Size of liveness data sent inline by callers.",
            ("rpc",),
            buckets=_PAYLOAD_BUCKETS,
            registry=registry,
        )
        self.images_dropped = Counter(
            "liveness_gateway_vendor_images_dropped_total",
            "Face images a vendor sent that could not be used; the score was still returned.",
            ("vendor", "reason"),
            registry=registry,
        )
        self.build_info = Gauge(
            "liveness_gateway_build_info",
            "Always 1; the labels say which build is running.",
            ("version",),
            registry=registry,
            multiprocess_mode="max",
        )
        self.build_info.labels(version=__version__).set(1)
        # --- fleet mode: the state store and idempotency (state/) ---
        self.state_seconds = Histogram(
            "liveness_gateway_state_request_duration_seconds",
            "Duration of state store calls (Redis in fleet mode), by operation.",
            ("operation",),
            buckets=_STATE_BUCKETS,
            registry=registry,
        )
        self.state_errors = Counter(
            "liveness_gateway_state_errors_total",
            "State store calls that failed or outlasted --state-timeout, by operation.",
            ("operation",),
            registry=registry,
        )
        self.state_fallback = Gauge(
            "liveness_gateway_state_fallback_active",
            "1 while the state store is unreachable and the fallback policy applies, else 0.",
            registry=registry,
            multiprocess_mode="max",
        )
        self.state_fallback_calls = Counter(
            "liveness_gateway_state_fallback_calls_total",
            "Limit checks decided by the fallback policy instead of the state store.",
            ("limit", "policy"),
            registry=registry,
        )
        self.idempotent_replays = Counter(
            "liveness_gateway_idempotent_replays_total",
            "Calls answered with the recorded result or error of their request_id.",
            ("rpc",),
            registry=registry,
        )
        self.dedupe_hits = Counter(
            "liveness_gateway_upload_dedupe_hits_total",
            "Uploads of bytes the caller uploaded within --upload-dedupe-ttl, answered from cache.",
            registry=registry,
        )
        self.vendor_calls_saved = Counter(
            "liveness_gateway_vendor_calls_saved_total",
            "Vendor calls not made thanks to a request_id replay or an Upload dedupe hit.",
            ("rpc",),
            registry=registry,
        )
        self._state_seconds = {op: self.state_seconds.labels(op) for op in STATE_OPERATIONS}
        self._state_errors = {op: self.state_errors.labels(op) for op in STATE_OPERATIONS}
        self.state_fallback.set(0)
        for limit in STATE_LIMITS:
            for policy in STATE_POLICIES:
                self.state_fallback_calls.labels(limit, policy)
        self._replays = {rpc: self.idempotent_replays.labels(rpc) for rpc in RPC_NAMES}
        self._saved = {rpc: self.vendor_calls_saved.labels(rpc) for rpc in RPC_NAMES}

        # Pre-create every child: rates exist before the first call, and the hot path
        # never builds a label set.
        self._started: dict[str, Counter] = {}
        self._handled: dict[tuple[str, grpc.StatusCode], Counter] = {}
        self._seconds: dict[str, Histogram] = {}
        for m in methods:
            key = f"/{m.service}/{m.name}"
            labels = (m.grpc_type, m.service, m.name)
            self._started[key] = self.grpc_started.labels(*labels)
            self._seconds[key] = self.grpc_seconds.labels(*labels)
            for code in ALL_CODES:
                self._handled[(key, code)] = self.grpc_handled.labels(*labels, code.name)
        self._vendor_seconds: dict[tuple[str, str, str], Histogram] = {}
        self._vendor_errors: dict[tuple[str, str, str], Counter] = {}
        self._vendor_in_flight: dict[tuple[str, str], Gauge] = {}
        for vendor, endpoint in ((e.vendor, e.name) for e in endpoints):
            self._vendor_in_flight[(vendor, endpoint)] = self.vendor_in_flight.labels(
                vendor, endpoint
            )
            self.vendor_retries.labels(vendor, endpoint)
            self.circuit_state.labels(vendor, endpoint).set(0)
            for outcome in OUTCOMES:
                self._vendor_seconds[(vendor, endpoint, outcome)] = self.vendor_seconds.labels(
                    vendor, endpoint, outcome
                )
            for status in VENDOR_ERROR_STATUSES:
                self._vendor_errors[(vendor, endpoint, status)] = self.vendor_errors.labels(
                    vendor, endpoint, status
                )
        self._images_dropped = {
            (vendor, reason): self.images_dropped.labels(vendor, reason)
            for vendor in dict.fromkeys(e.vendor for e in endpoints)
            for reason in IMAGE_DROP_REASONS
        }
        self._shed = {cause: self.shed.labels(cause) for cause in SHED_CAUSES}
        rpc_names = [rpc for rpc, _ in rpcs]
        self._caller_calls = {
            (caller, rpc, decision): self.caller_calls.labels(caller, rpc, decision)
            for caller in callers
            for rpc in rpc_names
            for decision in CALLER_DECISIONS
        }
        self._score: dict[tuple[str, str], Histogram] = {}
        self._verdicts: dict[tuple[str, str], Counter] = {}
        self._payload: dict[str, Histogram] = {}
        for rpc, vendor in rpcs:
            self._score[(rpc, vendor)] = self.score.labels(rpc, vendor)
            self._payload[rpc] = self.payload_bytes.labels(rpc)
            for verdict in VERDICT_NAMES:
                self._verdicts[(rpc, verdict)] = self.verdicts.labels(rpc, verdict)

    # --- hot path: cached children only ----------------------------------------------------

    def rpc_started(self, method: str) -> None:
        child = self._started.get(method)
        if child is not None:
            child.inc()

    def rpc_handled(
        self,
        method: str,
        code: grpc.StatusCode,
        seconds: float,
        exemplar: dict[str, str] | None = None,
    ) -> None:
        """``exemplar``: the RPC's trace, when it was sampled (OpenMetrics shows it)."""
        child = self._handled.get((method, code))
        if child is not None:
            child.inc()
            self._seconds[method].observe(seconds, exemplar)

    def vendor_call(
        self,
        vendor: str,
        endpoint: str,
        seconds: float,
        failure: errors.GatewayError | None,
        ended: str | None = None,
        exemplar: dict[str, str] | None = None,
    ) -> None:
        """One vendor exchange; ``ended`` names an end that was not a GatewayError
        (``cancelled`` by the caller, or an ``error`` in the gateway itself); ``exemplar``
        names the attempt's span when it was sampled."""
        if ended is not None:
            outcome = ended
        elif failure is None:
            outcome = "ok"
        else:
            outcome = _OUTCOME_BY_REASON.get(failure.reason, "vendor_error")
            status = failure.reason if failure.reason in VENDOR_ERROR_STATUSES else OTHER_STATUS
            self._vendor_errors[(vendor, endpoint, status)].inc()
        self._vendor_seconds[(vendor, endpoint, outcome)].observe(seconds, exemplar)

    def in_flight(self, vendor: str, endpoint: str) -> Gauge:
        child = self._vendor_in_flight.get((vendor, endpoint))
        return child if child is not None else self.vendor_in_flight.labels(vendor, endpoint)

    def caller_decision(self, caller: str, rpc: str, decision: str) -> None:
        child = self._caller_calls.get((caller, rpc, decision))
        if child is not None:
            child.inc()

    def shed_call(self, cause: str) -> None:
        self._shed[cause].inc()

    def retried(self, vendor: str, endpoint: str) -> None:
        self.vendor_retries.labels(vendor, endpoint).inc()

    def decision(self, rpc: str, vendor: str, score: float, verdict: str) -> None:
        self._score[(rpc, vendor)].observe(score)
        self._verdicts[(rpc, verdict)].inc()

    def image_dropped(self, vendor: str, reason: str) -> None:
        self._images_dropped[(vendor, reason)].inc()

    def payload(self, rpc: str, size: int) -> None:
        self._payload[rpc].observe(size)

    # --- fleet mode ----------------------------------------------------------------------

    def state_call(self, operation: str, seconds: float, failed: bool) -> None:
        self._state_seconds[operation].observe(seconds)
        if failed:
            self._state_errors[operation].inc()

    def state_fallback_call(self, limit: str, policy: str) -> None:
        self.state_fallback_calls.labels(limit, policy).inc()

    def replayed(self, rpc: str) -> None:
        self._replays[rpc].inc()
        self._saved[rpc].inc()

    def dedupe_hit(self, rpc: str) -> None:
        self.dedupe_hits.inc()
        self._saved[rpc].inc()


def enable_multiprocess(directory: str) -> None:
    """Switch this process' metric values to prometheus_client's multiprocess files.

    Call in each worker before any :class:`Metrics` is created; the metrics endpoint then
    aggregates the directory with :class:`~prometheus_client.multiprocess.MultiProcessCollector`.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def multiprocess_registry(directory: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


class WorkerProcessCollector:
    """``process_*`` of the supervisor and of each live worker, told apart by a ``worker``
    label (``supervisor``, ``0``, ``1``, ...): with ``--workers N`` the parent serves /metrics,
    and the process metrics of the process that serves them would hide the workers'."""

    def __init__(self, workers: Mapping[int, int]) -> None:
        """``workers``: pid -> worker index, kept current by the supervisor."""
        self._workers = workers
        self._collectors: dict[int, ProcessCollector] = {}

    def _collector(self, pid: int) -> ProcessCollector:
        collector = self._collectors.get(pid)
        if collector is None:
            collector = ProcessCollector(pid=lambda: pid, registry=None)
            self._collectors[pid] = collector
        return collector

    def collect(self) -> Iterable[Metric]:
        processes = [("supervisor", os.getpid())]
        processes += [(str(index), pid) for pid, index in sorted(self._workers.items())]
        for pid in list(self._collectors):
            if pid != os.getpid() and pid not in self._workers:
                del self._collectors[pid]
        families: dict[str, Metric] = {}
        for label, pid in processes:
            for family in self._collector(pid).collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = Metric(family.name, family.documentation, family.type)
                    families[family.name] = merged
                for s in family.samples:
                    merged.add_sample(s.name, {**s.labels, "worker": label}, s.value)
        return families.values()


def metrics_app(registry: CollectorRegistry) -> web.Application:
    """The /metrics HTTP endpoint (aiohttp, on its own port). Prometheus' text format, or
    OpenMetrics (with exemplars) when the scraper asks for it, as Prometheus does."""

    async def handle(request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(registry), headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    return app


# --- the audit trail (issue #19; service/liveness_gateway/audit/) ----------------------------

_AUDIT_WRITE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_AUDIT_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
AUDIT_TARGETS = ("database", "journal")


class AuditMetrics:
    """The audit writer's metrics; registered only when the audit trail is on."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.write_seconds = Histogram(
            "liveness_gateway_audit_write_seconds",
            "Time to commit one batch of audit records, by where it went.",
            ("target",),
            buckets=_AUDIT_WRITE_BUCKETS,
            registry=registry,
        )
        self.batch_records = Histogram(
            "liveness_gateway_audit_batch_records",
            "Audit records committed together in one transaction (group commit).",
            buckets=_AUDIT_BATCH_BUCKETS,
            registry=registry,
        )
        self.records_written = Counter(
            "liveness_gateway_audit_records_written_total",
            "Audit records made durable, by where: the database, or the local journal.",
            ("target",),
            registry=registry,
        )
        self.records_replayed = Counter(
            "liveness_gateway_audit_records_replayed_total",
            "Journaled audit records written to the database once it answered again.",
            registry=registry,
        )
        self.records_failed = Counter(
            "liveness_gateway_audit_records_failed_total",
            "Audit records kept nowhere (database unreachable and journal full or absent).",
            registry=registry,
        )
        self.records_purged = Counter(
            "liveness_gateway_audit_records_purged_total",
            "Audit records deleted by the retention purge.",
            registry=registry,
        )
        self.journal_bytes = Gauge(
            "liveness_gateway_audit_journal_bytes",
            "Bytes in the local audit journal waiting for the database.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.journal_records = Gauge(
            "liveness_gateway_audit_journal_records",
            "Audit records in the local journal waiting for the database (journal depth).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.database_up = Gauge(
            "liveness_gateway_audit_database_up",
            "1 while audit records go to the database, 0 while they go to the journal.",
            registry=registry,
            multiprocess_mode="min",
        )
        self._seconds = {t: self.write_seconds.labels(t) for t in AUDIT_TARGETS}
        self._written = {t: self.records_written.labels(t) for t in AUDIT_TARGETS}

    def written(self, target: str, records: int, seconds: float) -> None:
        self._seconds[target].observe(seconds)
        self.batch_records.observe(records)
        self._written[target].inc(records)

    def failed(self, records: int) -> None:
        self.records_failed.inc(records)

    def replayed(self, records: int) -> None:
        self.records_replayed.inc(records)

    def journal(self, size: int, records: int) -> None:
        self.journal_bytes.set(size)
        self.journal_records.set(records)
