"""Gateway configuration: frozen values that check themselves.

Each value type refuses what cannot run in ``__post_init__``, so a configuration built in
code or in a test is held to the same rules as one read from flags and the environment
(:mod:`liveness_gateway.settings`, the one table of flags and variables).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from liveness_gateway.concurrency import MODES as CONCURRENCY_MODES

LINKFACE = "linkface"
ACCUAUTH = "accuauth"

DEFAULT_THRESHOLD = 0.98
"""Both vendors' documented threshold: score > 0.98 is a hack."""

MAX_LIVENESS_BYTES = 5 * 1024 * 1024
"""The vendors' documented upload limit."""

MAX_GRPC_MESSAGE_BYTES = 6 * 1024 * 1024
"""Leaves room for a 5 MiB payload plus framing (gRPC's 4 MiB default would refuse it)."""

MAX_URL_CHARS = 2048

VENDOR_DOWNLOAD_LIMIT_S = 5.0
"""Both vendors' documented limit for downloading a caller's url."""

# /metrics is scraped from outside the pod, so by default it listens on every interface.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104  # nosec B104


class ConfigError(ValueError):
    """The configuration cannot run; the message says what to set.

    ``field`` names the offending dataclass field (``timeout_s``); the settings loader
    turns it into the flag and variable an operator sets.
    """

    def __init__(self, message: str, field: str | None = None, problem: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem or message
        """The message without the field's name, for a caller that names it better."""


def _check(ok: bool, field: str, problem: str) -> None:
    if not ok:
        raise ConfigError(f"{field} {problem}", field, problem)


@dataclass(frozen=True)
class VendorConfig:
    """Where one vendor lives and how the gateway authenticates to it."""

    name: str
    base_url: str
    api_id: str
    api_secret: str = field(repr=False)
    timeout_s: float = 10.0
    """Per-request timeout when the caller sets no deadline."""
    endpoint_timeouts_s: Mapping[str, float] = field(default_factory=dict)
    """Per-endpoint overrides of ``timeout_s`` (an upload may need longer than a detect)."""
    file_parts: Mapping[str, str] = field(default_factory=dict)
    """Per-endpoint name of the multipart part carrying the data, where the pages disagree."""

    def __post_init__(self) -> None:
        _check(
            self.base_url.startswith(("http://", "https://")),
            "base_url",
            "must be an http(s) URL",
        )
        _check(self.timeout_s > 0, "timeout_s", "must be greater than 0")  # refuses NaN too
        for endpoint, seconds in self.endpoint_timeouts_s.items():
            _check(seconds > 0, f"endpoint_timeouts_s.{endpoint}", "must be greater than 0")

    def timeout_for(self, endpoint: str) -> float:
        return self.endpoint_timeouts_s.get(endpoint, self.timeout_s)

    def __repr__(self) -> str:  # the secret never appears in a repr or a log line
        return (
            f"VendorConfig(name={self.name!r}, base_url={self.base_url!r}, "
            f"api_id={self.api_id!r}, api_secret='***', timeout_s={self.timeout_s!r}, "
            f"endpoint_timeouts_s={dict(self.endpoint_timeouts_s)!r}, "
            f"file_parts={dict(self.file_parts)!r})"
        )


@dataclass(frozen=True)
class TlsConfig:
    """TLS on the gRPC listener; with ``client_ca_file``, client certificates are required
    (mTLS). The files are re-read when they change, without a restart."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None


@dataclass(frozen=True)
class ResilienceConfig:
    """Limits, retries and circuit breaking; see the README's "Failure behaviour"."""

    max_in_flight_rpcs: int = 512
    """Liveness RPCs handled at once; beyond it calls are shed with UNAVAILABLE/OVERLOADED."""
    vendor_max_concurrency: int = 64
    """With ``vendor_concurrency="fixed"``: requests in flight to one vendor; beyond it
    calls are shed at once."""
    vendor_rate_per_s: float | None = None
    """Token-bucket rate per vendor (the vendor contract's QPS); None means no limit."""
    vendor_rate_burst: int = 10
    max_attempts: int = 3
    """Attempts per call, retries included (retries only where safe, within the deadline)."""
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 1.0
    retry_max_tokens: float = 10.0
    retry_token_ratio: float = 0.1
    breaker_failures: int = 5
    """Consecutive UNAVAILABLE-class failures that open an endpoint's breaker."""
    breaker_open_s: float = 5.0
    """How long an open breaker fails fast before letting one probe through."""
    shed_retry_after_s: float = 0.5
    vendor_concurrency: str = "adaptive"
    """``adaptive``: a limit per vendor endpoint that follows the vendor's latency, within
    [``vendor_concurrency_min``, ``vendor_concurrency_max``] (concurrency.py); ``fixed``:
    ``vendor_max_concurrency`` per vendor."""
    vendor_concurrency_min: int = 8
    vendor_concurrency_max: int = 512
    """Above ``max_in_flight_rpcs`` it never binds: the RPC cap is reached first."""
    vendor_latency_tolerance: float = 1.5
    """Vendor latency up to this multiple of its unloaded latency is not queueing."""
    vendor_latency_slack_ms: float = 20.0
    """Latency is compared with the unloaded latency or this, whichever is larger."""

    def __post_init__(self) -> None:
        _check(
            self.vendor_concurrency in CONCURRENCY_MODES,
            "vendor_concurrency",
            f"must be one of {', '.join(CONCURRENCY_MODES)}",
        )
        _check(
            self.vendor_concurrency_min <= self.vendor_concurrency_max,
            "vendor_concurrency_min",
            "must not be above the maximum",
        )
        _check(self.vendor_latency_tolerance >= 1, "vendor_latency_tolerance", "must be at least 1")
        _check(self.vendor_latency_slack_ms >= 0, "vendor_latency_slack_ms", "must not be negative")
        for name in (
            "max_in_flight_rpcs",
            "vendor_max_concurrency",
            "vendor_concurrency_min",
            "vendor_concurrency_max",
            "vendor_rate_burst",
            "max_attempts",
            "breaker_failures",
        ):
            _check(getattr(self, name) >= 1, name, "must be at least 1")
        rate = self.vendor_rate_per_s
        _check(rate is None or rate > 0, "vendor_rate_per_s", "must be greater than 0")
        for name in ("backoff_base_s", "backoff_cap_s", "breaker_open_s", "shed_retry_after_s"):
            _check(getattr(self, name) > 0, name, "must be greater than 0")
        _check(self.retry_max_tokens > 0, "retry_max_tokens", "must be greater than 0")
        _check(0 < self.retry_token_ratio <= 1, "retry_token_ratio", "must be within (0, 1]")


STATE_FALLBACKS = ("local", "closed")
"""What a fleet-wide limit does while the state store cannot answer: ``local`` keeps a
process-local share (limit / expected processes), ``closed`` refuses with STATE_UNAVAILABLE."""


@dataclass(frozen=True)
class StateConfig:
    """Where limits and idempotency records live; see the README's "Fleet mode".

    No ``url``: in this process (one replica's behaviour). A ``redis://``, ``rediss://`` or
    ``unix://`` URL: in Redis, shared by every process that names it (fleet-wide limits).
    """

    url: str | None = None
    password: str | None = field(default=None, repr=False)
    """From LIVENESS_STATE_PASSWORD or the file LIVENESS_STATE_PASSWORD_FILE, never a flag."""
    timeout_s: float = 0.1
    """Bound on every store call; past it the call counts as failed and the fallback applies."""
    expected_processes: int = 1
    """Gateway processes (replicas x workers) sharing the limits: the local share's divisor."""
    rate_fallback: str = "local"
    quota_fallback: str = "local"
    idempotency_ttl_s: float = 3600.0
    """How long a request_id's first result (or error) is kept and replayed."""
    upload_dedupe_ttl_s: float = 600.0
    """How long identical Upload bytes return the cached liveness_data_id (0: off)."""

    def __post_init__(self) -> None:
        url = self.url
        if url is not None:
            _check(
                url.startswith(("redis://", "rediss://", "unix://")),
                "url",
                "must be a redis://, rediss:// or unix:// URL",
            )
            _check(
                urllib.parse.urlsplit(url).password is None,
                "url",
                "must not hold a password: set LIVENESS_STATE_PASSWORD(_FILE)",
            )
        _check(self.timeout_s > 0, "timeout_s", "must be greater than 0")
        _check(self.expected_processes >= 1, "expected_processes", "must be at least 1")
        for name in ("rate_fallback", "quota_fallback"):
            _check(
                getattr(self, name) in STATE_FALLBACKS,
                name,
                f"must be one of {', '.join(STATE_FALLBACKS)}",
            )
        _check(self.idempotency_ttl_s > 0, "idempotency_ttl_s", "must be greater than 0")
        _check(self.upload_dedupe_ttl_s >= 0, "upload_dedupe_ttl_s", "must be 0 or more seconds")

    @property
    def shared(self) -> bool:
        return self.url is not None


SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
"""The OpenTelemetry specification's built-in samplers (``OTEL_TRACES_SAMPLER``)."""


@dataclass(frozen=True)
class TracingConfig:
    """OpenTelemetry tracing, exported over OTLP/gRPC; the standard OTEL_* variables set it.

    No endpoint, no tracing: the gateway then builds no tracer at all.
    """

    endpoint: str
    """OTLP/gRPC collector address (``http://collector:4317``; https for TLS)."""
    service_name: str = "liveness-gateway"
    sampler: str = "parentbased_always_on"
    sampler_arg: float | None = None
    """The ratio of the ``*traceidratio`` samplers (default 1.0)."""
    resource_attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(
            self.endpoint.startswith(("http://", "https://")),
            "endpoint",
            "must be an http(s) URL of an OTLP/gRPC collector",
        )
        _check(self.sampler in SAMPLERS, "sampler", f"must be one of {', '.join(SAMPLERS)}")
        arg = self.sampler_arg
        _check(arg is None or 0.0 <= arg <= 1.0, "sampler_arg", "must be within [0, 1]")


AUDIT_DURABILITIES = ("strict", "async")


@dataclass(frozen=True)
class AuditConfig:
    """The decision audit trail (service/liveness_gateway/audit/); None turns it off."""

    url: str
    """``sqlite:PATH`` (or a bare path) for an embedded file, or ``postgresql://user@host/db``."""
    password: str = field(default="", repr=False)
    """PostgreSQL's password, from the environment or a file; never in ``url``."""
    durability: str = "strict"
    """strict: a response leaves only once its record is durable; async: written behind."""
    group_commit_ms: float = 2.0
    """Strict: how long a commit may wait for the records of calls still under way."""
    record_refused: bool = False
    """Also record calls refused before any vendor was called."""
    retention_days: float = 0.0
    """Records older than this are purged in the background; 0 keeps them all."""
    journal_dir: str | None = None
    """Where records wait, fsynced, while the database is unreachable; None: no journal."""
    journal_max_bytes: int = 64 * 1024 * 1024

    @property
    def postgres(self) -> bool:
        return self.url.startswith(("postgresql://", "postgres://"))

    def __post_init__(self) -> None:
        _check(bool(self.url.strip()), "url", "must name a SQLite file or a postgresql:// URL")
        if self.postgres:
            parts = urllib.parse.urlsplit(self.url)
            _check(
                parts.password is None and "password" not in parts.query,
                "url",
                "must not hold the password: set LIVENESS_AUDIT_PASSWORD(_FILE)",
            )
        else:
            _check("://" not in self.url or self.url.startswith("sqlite://"), "url",
                   "must be sqlite:PATH, a file path, or a postgresql:// URL")  # fmt: skip
        _check(self.durability in AUDIT_DURABILITIES, "durability", "must be strict or async")
        _check(self.retention_days >= 0, "retention_days", "must be 0 (keep) or more days")
        _check(0 <= self.group_commit_ms <= 100, "group_commit_ms", "must be 0 to 100 ms")
        _check(self.journal_max_bytes >= 64 * 1024, "journal_max_bytes", "must be at least 65536")


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the server needs; built by :func:`load` or directly in tests."""

    linkface: VendorConfig
    accuauth: VendorConfig
    host: str = "[::]"
    port: int = 50051
    detect_threshold: float = DEFAULT_THRESHOLD
    antihack_threshold: float = DEFAULT_THRESHOLD
    detect_review_band: float = 0.0
    """Detect: scores at most this far from the threshold are VERDICT_REVIEW; 0 turns it off."""
    antihack_review_band: float = 0.0
    deadline_margin_s: float = 0.05
    """Kept back from the caller's deadline so that the gateway can still answer in time."""
    grace_s: float = 10.0
    reflection: bool = True
    reflection_callers_only: bool | None = None
    """Reflection answers only known callers, as the liveness RPCs do. None: so when a callers
    file is set (authentication on), else reflection is open."""
    metrics_host: str = ALL_INTERFACES
    metrics_port: int | None = 9464
    """The /metrics HTTP port; None turns the endpoint off, 0 picks a free port."""
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    tls: TlsConfig | None = None
    health_port: int | None = None
    """An extra plaintext port serving only grpc.health.v1 (for TLS deployments' probes)."""
    callers_file: str | None = None
    """A TOML file of callers (see auth.py); None leaves authentication off."""
    url_allow_hosts: tuple[str, ...] = ()
    """Hosts a liveness_data_url may name (``*.example.com`` for subdomains); empty: any."""
    tracing: TracingConfig | None = None
    """OpenTelemetry tracing; None (no OTLP endpoint) turns it off, at no cost per call."""
    ready_file: str | None = None
    """Written (JSON: pid and bound ports) once serving, removed on stop; see readyfile.py."""
    max_streams_per_connection: int = 32
    """HTTP/2 streams one client connection may have open at once (the SETTINGS the server
    sends, enforced on streams past it). Each stream can hold one unfinished message of up to
    ``MAX_GRPC_MESSAGE_BYTES`` before anyone is authenticated: see ``max_connections``."""
    max_connections: int = 32
    """Client connections a gRPC listener accepts at once; more are closed on accept. With
    ``max_streams_per_connection`` it bounds what unfinished messages can hold:
    ``max_connections * max_streams_per_connection * MAX_GRPC_MESSAGE_BYTES``."""
    max_connection_age_s: float = 300.0
    """A client connection older than this (gRPC adds +/-10% jitter) gets a GOAWAY: its
    calls finish, new ones go to a new connection, so callers reach replicas added since
    they connected. 0 turns it off."""
    max_connection_age_grace_s: float = 30.0
    """After the GOAWAY, how long calls still running on the old connection may take
    before it is closed (the clients' default deadline is 20 s)."""
    keepalive_min_ping_interval_s: float = 300.0
    """Pings without data closer together than this are strikes (two, then GOAWAY
    ENHANCE_YOUR_CALM): gRPC's own default, stated. The shipped clients send no keepalive
    pings at all."""
    keepalive_permit_without_calls: bool = False
    """Allow keepalive pings on a connection with no call in flight."""
    state: StateConfig = field(default_factory=StateConfig)
    """Where limits and idempotency records live: this process, or Redis (fleet-wide)."""
    audit: AuditConfig | None = None
    """The decision audit trail; None turns it off, at no cost per call."""

    def __post_init__(self) -> None:
        for name in (
            "detect_threshold",
            "antihack_threshold",
            "detect_review_band",
            "antihack_review_band",
        ):
            _check(0.0 <= getattr(self, name) <= 1.0, name, "must be within [0, 1]")
        _check(self.grace_s >= 0, "grace_s", "must be 0 or more seconds")
        _check(self.deadline_margin_s >= 0, "deadline_margin_s", "must be 0 or more seconds")
        for name in ("max_streams_per_connection", "max_connections"):
            _check(getattr(self, name) >= 1, name, "must be at least 1")
        for name in (
            "max_connection_age_s",
            "max_connection_age_grace_s",
            "keepalive_min_ping_interval_s",
        ):
            _check(getattr(self, name) >= 0, name, "must be 0 or more seconds")
        for name in ("port", "metrics_port", "health_port"):
            port = getattr(self, name)
            _check(port is None or 0 <= port <= 65535, name, "must be a port within [0, 65535]")

    def vendor(self, name: str) -> VendorConfig:
        """The settings of the vendor called ``name``."""
        vendor: VendorConfig = getattr(self, name)
        return vendor

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured secret, for redaction."""
        return tuple(s for s in (self.linkface.api_secret, self.accuauth.api_secret) if s)


VENDOR_DEFAULT_URLS = {
    LINKFACE: "https://cloudapi.linkface.cn",
    ACCUAUTH: "https://cloudapi.accuauth.in",
}


def read_secret(variable: str, env: Mapping[str, str]) -> str:
    """A secret from the environment only (never a flag): ``variable`` or the content of the
    file named by ``<variable>_FILE`` (a mounted Secret); empty when neither is set."""
    direct = env.get(variable, "")
    path = env.get(f"{variable}_FILE", "")
    if direct and path:
        raise ConfigError(f"set only one of {variable} and {variable}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{variable}_FILE: cannot read {path} ({exc.strerror})") from None
    return direct


def require_credentials(*vendors: VendorConfig) -> None:
    """Refuse to start without credentials: never score silently against a fake."""
    missing = [
        f"{v.name.upper()}_{what}"
        for v in vendors
        for what, value in (("API_ID", v.api_id), ("API_SECRET", v.api_secret))
        if not value
    ]
    if missing:
        raise ConfigError(
            "missing vendor credentials: set "
            + ", ".join(missing)
            + " (secrets may also come from *_API_SECRET_FILE), or pass --sandbox"
        )
