"""Gateway configuration: one frozen value, read once at start from flags and environment.

Precedence: command-line flag, then environment variable, then default. Secrets come only
from the environment or from a file (``*_FILE``): never from a flag, which ``ps`` shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LINKFACE = "linkface"
ACCUAUTH = "accuauth"

DEFAULT_THRESHOLD = 0.98
"""Both vendors' documented threshold: score > 0.98 is a hack."""

MAX_LIVENESS_BYTES = 5 * 1024 * 1024
"""The vendors' documented upload limit."""

MAX_GRPC_MESSAGE_BYTES = 6 * 1024 * 1024
"""Leaves room for a 5 MiB payload plus framing (gRPC's 4 MiB default would refuse it)."""

MAX_URL_CHARS = 2048

# /metrics is scraped from outside the pod, so by default it listens on every interface.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104  # nosec B104


class ConfigError(ValueError):
    """The configuration cannot run; the message says what to set."""


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

    def timeout_for(self, endpoint: str) -> float:
        return self.endpoint_timeouts_s.get(endpoint, self.timeout_s)

    def __repr__(self) -> str:  # the secret never appears in a repr or a log line
        return (
            f"VendorConfig(name={self.name!r}, base_url={self.base_url!r}, "
            f"api_id={self.api_id!r}, api_secret='***', timeout_s={self.timeout_s!r}, "
            f"endpoint_timeouts_s={dict(self.endpoint_timeouts_s)!r})"
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
    """Requests in flight to one vendor; beyond it calls are shed at once."""
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


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the server needs; built by :func:`load` or directly in tests."""

    linkface: VendorConfig
    accuauth: VendorConfig
    host: str = "[::]"
    port: int = 50051
    detect_threshold: float = DEFAULT_THRESHOLD
    antihack_threshold: float = DEFAULT_THRESHOLD
    max_reply_bytes: int = 16 * 1024 * 1024
    """Cap on what is read of a vendor reply body (a face image in base64 fits easily)."""
    deadline_margin_s: float = 0.05
    """Kept back from the caller's deadline so that the gateway can still answer in time."""
    grace_s: float = 10.0
    reflection: bool = True
    reflection_callers_only: bool | None = None
    """Reflection answers only known callers, as the liveness RPCs do. None: so when a callers
    file is set (authentication on), else reflection is open."""
    metrics_host: str = ALL_INTERFACES
    metrics_port: int | None = 9464
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    tls: TlsConfig | None = None
    health_port: int | None = None
    """An extra plaintext port serving only grpc.health.v1 (for TLS deployments' probes)."""
    callers_file: str | None = None
    """A TOML file of callers (see auth.py); None leaves authentication off."""
    url_allow_hosts: tuple[str, ...] = ()
    """Hosts a liveness_data_url may name (``*.example.com`` for subdomains); empty: any."""
    max_streams_per_connection: int = 16
    """HTTP/2 streams one client connection may have open at once (the SETTINGS the server
    sends, enforced on streams past it). Each stream can hold one unfinished message of up to
    ``MAX_GRPC_MESSAGE_BYTES`` before anyone is authenticated: see ``max_connections``."""
    max_connections: int = 32
    """Client connections a gRPC listener accepts at once; more are closed on accept. With
    ``max_streams_per_connection`` it bounds what unfinished messages can hold:
    ``max_connections * max_streams_per_connection * MAX_GRPC_MESSAGE_BYTES``."""
    """The /metrics HTTP port; None turns the endpoint off, 0 picks a free port."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured secret, for redaction."""
        return tuple(s for s in (self.linkface.api_secret, self.accuauth.api_secret) if s)


_VENDOR_DEFAULT_URLS = {
    LINKFACE: "https://cloudapi.linkface.cn",
    ACCUAUTH: "https://cloudapi.accuauth.in",
}


def read_secret(prefix: str, env: Mapping[str, str]) -> str:
    """``<PREFIX>_API_SECRET`` or the content of the file named by ``<PREFIX>_API_SECRET_FILE``."""
    direct = env.get(f"{prefix}_API_SECRET", "")
    path = env.get(f"{prefix}_API_SECRET_FILE", "")
    if direct and path:
        raise ConfigError(f"set only one of {prefix}_API_SECRET and {prefix}_API_SECRET_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{prefix}_API_SECRET_FILE: cannot read {path} ({exc.strerror})"
            ) from None
    return direct


def vendor_from_env(
    name: str,
    env: Mapping[str, str],
    *,
    base_url: str | None = None,
    api_id: str | None = None,
    timeout_s: float = 10.0,
    endpoint_timeouts_s: Mapping[str, float] | None = None,
) -> VendorConfig:
    """One vendor's settings: explicit values (from flags) win over the environment."""
    prefix = name.upper()
    url = base_url or env.get(f"{prefix}_BASE_URL") or _VENDOR_DEFAULT_URLS[name]
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{prefix}_BASE_URL must be an http(s) URL")
    return VendorConfig(
        name=name,
        base_url=url.rstrip("/"),
        api_id=api_id or env.get(f"{prefix}_API_ID", ""),
        api_secret=read_secret(prefix, env),
        timeout_s=timeout_s,
        endpoint_timeouts_s=dict(endpoint_timeouts_s or {}),
    )


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
