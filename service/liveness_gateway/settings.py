"""Every flag and environment variable of ``liveness-gateway``, declared once.

:data:`SETTINGS` is the one table: each row names where its value goes, its variable, its
flag, how a string becomes a value, its default and its help. The command line, the
environment fallbacks, ``--help``, the README's configuration table (``python -m
liveness_gateway.settings``) and the chart's test all come from it. Precedence: flag, then
variable, then default. Values are checked by the config types themselves
(:mod:`liveness_gateway.config`); a refusal names the flag and the variable to fix.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from liveness_gateway.concurrency import MODES as CONCURRENCY_MODES
from liveness_gateway.config import (
    ALL_INTERFACES,
    AUDIT_DURABILITIES,
    DEFAULT_THRESHOLD,
    SAMPLERS,
    VENDOR_DEFAULT_URLS,
    AuditConfig,
    ConfigError,
    GatewayConfig,
    ResilienceConfig,
    StateConfig,
    TlsConfig,
    TracingConfig,
    VendorConfig,
    read_secret,
    require_credentials,
)
from liveness_gateway.vendors import ENDPOINTS, VENDORS

log = logging.getLogger(__name__)

SERVE = "serve"
SANDBOX = "sandbox"
MIGRATE = "migrate"
"""Reads the ``audit.`` rows of ``serve`` (and the ``*`` ones)."""


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be 1/true/yes/on or 0/false/no/off")


def _hosts(text: str) -> tuple[str, ...]:
    return tuple(h.strip() for h in text.split(",") if h.strip())


def _optional_str(text: str) -> str | None:
    return text or None


def _pairs(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` as OTEL_RESOURCE_ATTRIBUTES writes it (values %-encoded)."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item.strip()!r} is not key=value")
        pairs[key.strip()] = urllib.parse.unquote(value.strip())
    return pairs


def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = tuple(ipaddress.ip_network(p.strip()) for p in text.split(",") if p.strip())
    if not networks:
        raise ValueError("must name at least one address or network")
    return networks


def _rate(text: str) -> float | None:
    rate = float(text)
    return None if rate == 0 else rate  # 0 turns the limit off


@dataclass(frozen=True)
class Setting:
    """One row of the table."""

    key: str
    """Where the value goes: a GatewayConfig field (``port``), a nested one
    (``resilience.max_attempts``, ``linkface.timeout_s``), or a ``cli.``/``sandbox.`` key."""
    env: str
    flag: str | None
    """None: environment only (secrets, which ``ps`` would show)."""
    parse: Callable[[str], Any]
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    command: str = SERVE
    """``serve``, ``sandbox``, or both (``*``)."""
    switch: bool = False
    """A flag without a value (``--sandbox``); its variable takes 1/0."""
    const: Any = True
    """What a switch's flag sets (``--no-reflection`` sets False)."""
    aliases: tuple[tuple[str, Any], ...] = ()
    """Other flags that set a fixed value (``--no-reflection`` is ``--reflection off``)."""
    shown_default: str | None = None
    """How ``--help`` and the README show the default, where ``repr`` would not say it."""

    @property
    def dest(self) -> str:
        return self.key.replace(".", "__").replace("-", "_")

    def default_text(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None or self.default == ():
            return "none"
        if self.switch:
            return "off"
        return f"{self.default}"


_DISPLAY = {"linkface": "LinkFace", "accuauth": "AccuAuth"}


def _vendor_settings(vendor: str) -> list[Setting]:
    up, label = vendor.upper(), _DISPLAY.get(vendor, vendor)
    rows = [
        Setting(f"{vendor}.base_url", f"{up}_BASE_URL", f"--{vendor}-base-url", str,
                VENDOR_DEFAULT_URLS[vendor], f"{label} API root"),
        Setting(f"{vendor}.api_id", f"{up}_API_ID", f"--{vendor}-api-id", str, "",
                f"{label} account id", shown_default="(required)"),
        Setting(f"{vendor}.api_secret", f"{up}_API_SECRET", None, str, "",
                f"{label} secret; or {up}_API_SECRET_FILE naming a file that holds it",
                shown_default="(required)"),
        Setting(f"{vendor}.timeout_s", f"{up}_TIMEOUT_S", f"--{vendor}-timeout", float, 10.0,
                f"{label} request timeout in seconds when the caller sets no deadline"),
    ]  # fmt: skip
    for endpoint in ENDPOINTS:
        if endpoint.vendor != vendor:
            continue
        name = endpoint.setting
        rows.append(
            Setting(
                f"{vendor}.timeout.{endpoint.name}",
                f"{up}_{name.upper().replace('-', '_')}_TIMEOUT_S",
                f"--{vendor}-{name}-timeout",
                float,
                endpoint.default_timeout_s,
                f"the same for {endpoint.name} alone",
                shown_default=f"--{vendor}-timeout",
            )
        )
        if endpoint.file_part_readings:
            rows.append(
                Setting(
                    f"{vendor}.file_part.{endpoint.name}",
                    f"{up}_{name.upper().replace('-', '_')}_FILE_PART",
                    f"--{vendor}-{name}-file-part",
                    str,
                    endpoint.parts["data"],
                    f"the multipart part {endpoint.name} reads the data from (the pages disagree)",
                    choices=endpoint.file_part_choices,
                )
            )
    return rows


SETTINGS: tuple[Setting, ...] = (
    *(row for vendor in VENDORS for row in _vendor_settings(vendor)),
    Setting("host", "LIVENESS_HOST", "--host", str, "[::]", "gRPC listen address"),
    Setting("port", "LIVENESS_PORT", "--port", int, 50051, "gRPC port (0 picks a free one)"),
    Setting("cli.sandbox", "LIVENESS_SANDBOX", "--sandbox", _bool, False,
            "start the offline vendor sandbox in-process and use it", switch=True),
    Setting("detect_threshold", "LIVENESS_DETECT_THRESHOLD", "--detect-threshold", float,
            DEFAULT_THRESHOLD, "Detect: a score above it is a hack"),
    Setting("antihack_threshold", "LIVENESS_ANTIHACK_THRESHOLD", "--antihack-threshold", float,
            DEFAULT_THRESHOLD, "AntiHack: a score above it is a hack"),
    Setting("detect_review_band", "LIVENESS_DETECT_REVIEW_BAND", "--detect-review-band", float,
            0.0, "Detect: a score at most this far from the threshold is VERDICT_REVIEW",
            shown_default="0 (off)"),
    Setting("antihack_review_band", "LIVENESS_ANTIHACK_REVIEW_BAND", "--antihack-review-band",
            float, 0.0, "AntiHack: a score at most this far from the threshold is VERDICT_REVIEW",
            shown_default="0 (off)"),
    Setting("grace_s", "LIVENESS_GRACE_S", "--grace", float, 10.0,
            "seconds in-flight RPCs get to finish on SIGTERM"),
    Setting("cli.workers", "LIVENESS_WORKERS", "--workers", int, 1,
            "gateway processes sharing the port (SO_REUSEPORT); /metrics covers all"),
    Setting("tls.cert_file", "LIVENESS_TLS_CERT", "--tls-cert", _optional_str, None,
            "PEM certificate chain for TLS on the gRPC port (re-read when it changes)",
            shown_default="plaintext"),
    Setting("tls.key_file", "LIVENESS_TLS_KEY", "--tls-key", _optional_str, None,
            "PEM private key for --tls-cert", shown_default="plaintext"),
    Setting("tls.client_ca_file", "LIVENESS_TLS_CLIENT_CA", "--tls-client-ca", _optional_str,
            None, "PEM CA bundle: require and verify client certificates (mTLS)"),
    Setting("health_port", "LIVENESS_HEALTH_PORT", "--health-port", int, None,
            "also serve grpc.health.v1 alone, in plaintext, on this port (probes with TLS)"),
    Setting("callers_file", "LIVENESS_CALLERS_FILE", "--callers-file", _optional_str, None,
            "TOML file of callers; turns caller authentication on",
            shown_default="none (auth off)"),
    Setting("url_allow_hosts", "LIVENESS_URL_ALLOW_HOSTS", "--url-allow-hosts", _hosts, (),
            "comma-separated hosts a liveness_data_url may name (*.example.com allowed)",
            shown_default="any host"),
    Setting("resilience.max_in_flight_rpcs", "LIVENESS_MAX_IN_FLIGHT", "--max-in-flight", int,
            512, "liveness RPCs handled at once; more are shed with UNAVAILABLE/OVERLOADED"),
    Setting("resilience.vendor_max_concurrency", "LIVENESS_VENDOR_MAX_CONCURRENCY",
            "--vendor-max-concurrency", int, 64,
            "with --vendor-concurrency fixed: requests in flight to one vendor; more are shed "
            "at once"),
    Setting("resilience.vendor_rate_per_s", "LIVENESS_VENDOR_RATE", "--vendor-rate", _rate,
            None, "token-bucket requests per second per vendor (0: no limit)",
            shown_default="0 (off)"),
    Setting("resilience.vendor_rate_burst", "LIVENESS_VENDOR_RATE_BURST", "--vendor-rate-burst",
            int, 10, "token-bucket size for --vendor-rate"),
    Setting("resilience.max_attempts", "LIVENESS_MAX_ATTEMPTS", "--max-attempts", int, 3,
            "attempts per vendor call, retries included (retries only where safe)"),
    Setting("resilience.breaker_failures", "LIVENESS_BREAKER_FAILURES", "--breaker-failures",
            int, 5, "consecutive vendor failures that open an endpoint's circuit breaker"),
    Setting("resilience.breaker_open_s", "LIVENESS_BREAKER_OPEN_S", "--breaker-open", float,
            5.0, "seconds an open breaker fails fast before one probe"),
    # vendor concurrency (concurrency.py; README "Vendor concurrency")
    Setting("resilience.vendor_concurrency", "LIVENESS_VENDOR_CONCURRENCY",
            "--vendor-concurrency", str, "adaptive",
            "adaptive: a limit per vendor endpoint that follows the vendor's latency; fixed: "
            "--vendor-max-concurrency per vendor", choices=CONCURRENCY_MODES),
    Setting("resilience.vendor_concurrency_min", "LIVENESS_VENDOR_CONCURRENCY_MIN",
            "--vendor-concurrency-min", int, 8,
            "adaptive: the limit never goes below this many requests in flight"),
    Setting("resilience.vendor_concurrency_max", "LIVENESS_VENDOR_CONCURRENCY_MAX",
            "--vendor-concurrency-max", int, 512,
            "adaptive: the limit never goes above this (nor does it bind above --max-in-flight)"),
    Setting("resilience.vendor_latency_tolerance", "LIVENESS_VENDOR_LATENCY_TOLERANCE",
            "--vendor-latency-tolerance", float, 1.5,
            "adaptive: vendor latency up to this multiple of its unloaded latency is not "
            "queueing; above it the limit shrinks"),
    Setting("resilience.vendor_latency_slack_ms", "LIVENESS_VENDOR_LATENCY_SLACK_MS",
            "--vendor-latency-slack-ms", float, 20.0,
            "adaptive: latency is compared with the vendor's unloaded latency or this, whichever "
            "is larger (the gateway's own delays when its CPU is busy are not queueing)"),
    Setting("cli.reflection", "LIVENESS_REFLECTION", "--reflection", str, None,
            "gRPC server reflection: on, off, or callers (known callers only); "
            "--no-reflection is --reflection off", choices=("on", "off", "callers"),
            aliases=(("--no-reflection", "off"),),
            shown_default="callers with a callers file, else on"),
    Setting("max_streams_per_connection", "LIVENESS_MAX_STREAMS_PER_CONNECTION",
            "--max-streams-per-connection", int, 32,
            "HTTP/2 streams one client connection may have open (bounds memory, SECURITY.md)"),
    Setting("max_connections", "LIVENESS_MAX_CONNECTIONS", "--max-connections", int, 32,
            "client connections the gRPC port accepts at once (bounds memory, SECURITY.md)"),
    # connections that rebalance (README "Connections")
    Setting("max_connection_age_s", "LIVENESS_MAX_CONNECTION_AGE_S", "--max-connection-age",
            float, 300.0, "seconds after which a client connection gets a GOAWAY (give or take "
            "a tenth): its calls finish, new ones reconnect, so callers reach new replicas; "
            "0: never"),
    Setting("max_connection_age_grace_s", "LIVENESS_MAX_CONNECTION_AGE_GRACE_S",
            "--max-connection-age-grace", float, 30.0,
            "seconds calls on a connection past its age may still take before it is closed"),
    Setting("keepalive_min_ping_interval_s", "LIVENESS_KEEPALIVE_MIN_PING_INTERVAL_S",
            "--keepalive-min-ping-interval", float, 300.0,
            "clients' keepalive pings closer together than this are refused (GOAWAY "
            "ENHANCE_YOUR_CALM after two); the shipped clients send none"),
    Setting("keepalive_permit_without_calls", "LIVENESS_KEEPALIVE_PERMIT_WITHOUT_CALLS",
            "--keepalive-permit-without-calls", _bool, False,
            "allow keepalive pings on a connection with no call in flight", switch=True),
    Setting("metrics_host", "LIVENESS_METRICS_HOST", "--metrics-host", str, ALL_INTERFACES,
            "address of the /metrics HTTP endpoint"),
    Setting("metrics_port", "LIVENESS_METRICS_PORT", "--metrics-port", int, 9464,
            "port of the /metrics HTTP endpoint (0 picks a free one)"),
    Setting("ready_file", "LIVENESS_READY_FILE", "--ready-file", _optional_str, None,
            "once serving, write the pid and the bound ports here as JSON (removed on stop): "
            "how a script learns the ports --port 0 got"),
    # Fleet mode: limits and idempotency records shared through Redis (README "Fleet mode").
    Setting("state.url", "LIVENESS_STATE_URL", "--state-url", _optional_str, None,
            "redis://, rediss:// or unix:// URL of the Redis that makes caller rates, daily "
            "quotas, the vendor rate and idempotency fleet-wide (no password in it)",
            shown_default="none (this process)"),
    Setting("state.password", "LIVENESS_STATE_PASSWORD", None, _optional_str, None,
            "the Redis password; or LIVENESS_STATE_PASSWORD_FILE naming a file that holds it",
            shown_default="none"),
    Setting("state.timeout_s", "LIVENESS_STATE_TIMEOUT_S", "--state-timeout", float, 0.1,
            "seconds one state store call may take; past it the fallback policy applies"),
    Setting("state.expected_processes", "LIVENESS_STATE_EXPECTED_PROCESSES",
            "--state-expected-processes", int, 1,
            "gateway processes (replicas x workers) sharing the limits; while Redis is "
            "unreachable each process enforces limit / this"),
    Setting("state.rate_fallback", "LIVENESS_STATE_RATE_FALLBACK", "--state-rate-fallback",
            str, "local", "rates while Redis is unreachable: local (a share per process) or "
            "closed (refuse with STATE_UNAVAILABLE)", choices=("local", "closed")),
    Setting("state.quota_fallback", "LIVENESS_STATE_QUOTA_FALLBACK", "--state-quota-fallback",
            str, "local", "daily quotas while Redis is unreachable: local (open up to a share "
            "per process) or closed (refuse with STATE_UNAVAILABLE)",
            choices=("local", "closed")),
    Setting("state.idempotency_ttl_s", "LIVENESS_IDEMPOTENCY_TTL_S", "--idempotency-ttl",
            float, 3600.0, "seconds a request_id's first result or error is replayed"),
    Setting("state.upload_dedupe_ttl_s", "LIVENESS_UPLOAD_DEDUPE_TTL_S", "--upload-dedupe-ttl",
            float, 600.0, "seconds identical Upload bytes from one caller return the cached "
            "liveness_data_id (0: off)"),
    # OpenTelemetry's own variables, so that a platform's usual settings just work.
    Setting("tracing.endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", None, _optional_str, None,
            "OTLP/gRPC collector URL (http://collector:4317) for traces",
            shown_default="none (tracing off)"),
    Setting("tracing.service_name", "OTEL_SERVICE_NAME", None, str, "liveness-gateway",
            "service.name of the exported spans"),
    Setting("tracing.sampler", "OTEL_TRACES_SAMPLER", None, str, "parentbased_always_on",
            "which spans are kept: the caller's decision, else all", choices=SAMPLERS),
    Setting("tracing.sampler_arg", "OTEL_TRACES_SAMPLER_ARG", None, float, None,
            "the ratio of the traceidratio samplers (0.01 keeps 1%)", shown_default="1.0"),
    Setting("tracing.resource_attributes", "OTEL_RESOURCE_ATTRIBUTES", None, _pairs, {},
            "key=value,... added to the exported resource (deployment.environment=prod)",
            shown_default="none"),
    # The decision audit trail (README "Audit trail"); `liveness-gateway migrate` reads these too.
    Setting("audit.url", "LIVENESS_AUDIT_URL", "--audit-url", _optional_str, None,
            "record every decision in this database: a SQLite file (sqlite:PATH or a path) or "
            "postgresql://user@host:5432/db (password not here)", shown_default="none (off)"),
    Setting("audit.password", "LIVENESS_AUDIT_PASSWORD", None, str, "",
            "the PostgreSQL password; or LIVENESS_AUDIT_PASSWORD_FILE naming a file that holds it",
            shown_default="none"),
    Setting("audit.durability", "LIVENESS_AUDIT_DURABILITY", "--audit-durability", str,
            "strict", "strict: a response leaves once its record is durable (group commit); "
            "async: records are written behind, in batches", choices=AUDIT_DURABILITIES),
    Setting("audit.group_commit_ms", "LIVENESS_AUDIT_GROUP_COMMIT_MS",
            "--audit-group-commit-ms", float, 2.0, "strict: how long a commit may wait for the "
            "records of calls still under way (when 2 or more are), so that under load one "
            "fsync carries several records; 0 commits at once"),
    Setting("audit.record_refused", "LIVENESS_AUDIT_REFUSED", "--audit-refused", _bool, False,
            "also record calls refused before a vendor was called", switch=True),
    Setting("audit.retention_days", "LIVENESS_AUDIT_RETENTION_DAYS", "--audit-retention-days",
            float, 0.0, "purge records older than this many days, in the background",
            shown_default="0 (keep all)"),
    Setting("audit.journal_dir", "LIVENESS_AUDIT_JOURNAL_DIR", "--audit-journal-dir",
            _optional_str, None, "where records wait (fsynced) while the database is "
            "unreachable; without it such calls fail with AUDIT_UNAVAILABLE",
            shown_default="none"),
    Setting("audit.journal_max_bytes", "LIVENESS_AUDIT_JOURNAL_MAX_BYTES",
            "--audit-journal-max-bytes", int, 64 * 1024 * 1024,
            "journal size limit per process; when full, calls fail with AUDIT_UNAVAILABLE",
            shown_default="67108864 (64 MiB)"),
    # liveness-gateway sandbox
    Setting("sandbox.host", "SANDBOX_HOST", "--host", str, "127.0.0.1", "address to listen on",
            command=SANDBOX),
    Setting("sandbox.port", "SANDBOX_PORT", "--port", int, 8080, "HTTP port", command=SANDBOX),
    Setting("sandbox.ready_file", "SANDBOX_READY_FILE", "--ready-file", _optional_str, None,
            "once listening, write the pid, port and URL here as JSON (removed on stop)",
            command=SANDBOX),
    *(
        Setting(f"sandbox.{vendor}.{what}", f"SANDBOX_{vendor.upper()}_API_{what.upper()}",
                None, str, f"sandbox-{what}", f"the {_DISPLAY[vendor]} {what} the sandbox accepts",
                command=SANDBOX)
        for vendor in VENDORS
        for what in ("id", "secret")
    ),
    Setting("sandbox.download_allow", "SANDBOX_DOWNLOAD_ALLOW", "--download-allow", _networks,
            _networks("127.0.0.0/8,::1"),
            "comma-separated addresses or networks url sources may be downloaded from",
            command=SANDBOX, shown_default="127.0.0.0/8,::1 (loopback)"),
    Setting("sandbox.detect_file_part", "SANDBOX_DETECT_FILE_PART", "--detect-file-part", str,
            "any", "which Detect data part the sandbox reads: any, liveness_data_file or file",
            choices=("any", "liveness_data_file", "file"), command=SANDBOX),
    Setting("sandbox.extra_bools", "SANDBOX_EXTRA_BOOLS", "--extra-bools", _bool, False,
            "send face_quality_score and live_proba as bools, as the AntiHack table types them",
            switch=True, command=SANDBOX),
    Setting("sandbox.image_encoding", "SANDBOX_IMAGE_ENCODING", "--image-encoding", str,
            "standard", "how image_base64 is written: standard, urlsafe, unpadded, wrapped "
            "(MIME lines) or data_uri",
            choices=("standard", "urlsafe", "unpadded", "wrapped", "data_uri"), command=SANDBOX),
    Setting("sandbox.latency_ms", "SANDBOX_LATENCY_MS", "--latency-ms", int, 0,
            "every vendor request takes this long (ms) once its body is read: a slow vendor",
            command=SANDBOX),
    Setting("sandbox.capacity", "SANDBOX_CAPACITY", "--capacity", int, 0,
            "requests served at once; more wait for a free slot, so latency grows with the "
            "sandbox's own in-flight count past it", command=SANDBOX,
            shown_default="0 (any number)"),
    Setting("cli.log_format", "LIVENESS_LOG_FORMAT", "--log-format", str, "json",
            "json: one JSON object per line; text: human-readable", choices=("json", "text"),
            command="*"),
    Setting("cli.log_level", "LIVENESS_LOG_LEVEL", "--log-level", str, "INFO", "log level",
            command="*"),
)  # fmt: skip


def for_command(command: str) -> tuple[Setting, ...]:
    if command == MIGRATE:
        return tuple(s for s in SETTINGS if s.key.startswith("audit.") or s.command == "*")
    return tuple(s for s in SETTINGS if s.command in (command, "*"))


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of ``command``. Their argparse default is None: :func:`resolve` decides."""
    for setting in for_command(command):
        if setting.flag is None:
            continue
        shown = f"[env {setting.env}; default {setting.default_text()}]"
        if setting.switch:
            parser.add_argument(
                setting.flag,
                dest=setting.dest,
                action="store_const",
                const=setting.const,
                default=None,
                help=f"{setting.help} {shown}",
            )
            continue
        for alias, value in setting.aliases:
            parser.add_argument(
                alias,
                dest=setting.dest,
                action="store_const",
                const=value,
                default=None,
                help=f"the same as {setting.flag} {value}",
            )
        parser.add_argument(
            setting.flag,
            dest=setting.dest,
            type=setting.parse,
            choices=setting.choices or None,
            metavar=None if setting.choices else setting.flag.rsplit("-", 1)[-1].upper(),
            default=None,
            help=f"{setting.help} {shown}",
        )


def resolve(command: str, args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """Each setting's value: its flag, else its variable, else its default."""
    values: dict[str, Any] = {}
    for setting in for_command(command):
        value = getattr(args, setting.dest, None) if setting.flag else None
        if value is None and env.get(setting.env, "") != "":
            value = _from_env(setting, env[setting.env])
        values[setting.key] = setting.default if value is None else value
    return values


def _from_env(setting: Setting, text: str) -> Any:
    try:
        value = setting.parse(text)
    except ValueError as exc:
        raise ConfigError(f"{setting.env}={text!r}: {exc}") from None
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"{setting.env} must be one of {', '.join(setting.choices)}")
    return value


def _named(setting_key: str) -> str:
    for setting in SETTINGS:
        if setting.key == setting_key:
            return f"{setting.flag} ({setting.env})" if setting.flag else setting.env
    return setting_key


def gateway_config(
    values: Mapping[str, Any],
    env: Mapping[str, str],
    sandbox: tuple[str, Mapping[str, tuple[str, str]]] | None = None,
) -> GatewayConfig:
    """Build the :class:`GatewayConfig` from resolved values.

    ``sandbox``: the in-process sandbox's URL and each vendor's (id, secret) there; it
    replaces the vendors' URLs and credentials.
    """
    try:
        return _build(values, env, sandbox)
    except ConfigError as exc:
        if exc.field is None:
            raise
        raise ConfigError(f"{_named(exc.field)} {exc.problem}") from None


def _build(
    values: Mapping[str, Any],
    env: Mapping[str, str],
    sandbox: tuple[str, Mapping[str, tuple[str, str]]] | None,
) -> GatewayConfig:
    vendors: dict[str, Any] = {name: _vendor(name, values, env, sandbox) for name in VENDORS}
    if sandbox is None:
        require_credentials(*vendors.values())
    tls = _group(values, "tls")
    if any(tls.values()) and not (tls["cert_file"] and tls["key_file"]):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    reflection = values.get("cli.reflection")
    if reflection == "callers" and not values.get("callers_file"):
        raise ConfigError("--reflection callers needs --callers-file")
    if sandbox is None and not values.get("url_allow_hosts"):
        log.warning(
            "no url allow-list: liveness_data_url may name any host, which the vendor will "
            "fetch (set --url-allow-hosts)"
        )
    fields = {f.name for f in dataclasses.fields(GatewayConfig)}
    top = {k: v for k, v in values.items() if k in fields}
    tracing = _group(values, "tracing")
    audit = audit_config(values, env)
    return GatewayConfig(
        **vendors,
        **top,
        reflection=reflection != "off",
        reflection_callers_only={"on": False, "callers": True}.get(reflection or ""),
        resilience=_within("resilience", ResilienceConfig, _group(values, "resilience")),
        tls=TlsConfig(**tls) if any(tls.values()) else None,
        tracing=_within("tracing", TracingConfig, tracing) if tracing["endpoint"] else None,
        state=_state(values, env),
        audit=audit,
    )


def _state(values: Mapping[str, Any], env: Mapping[str, str]) -> StateConfig:
    group = _group(values, "state")
    group["password"] = read_secret("LIVENESS_STATE_PASSWORD", env) or None
    return _within("state", StateConfig, group)  # type: ignore[no-any-return]


def audit_config(values: Mapping[str, Any], env: Mapping[str, str]) -> AuditConfig | None:
    """The audit trail's configuration; None when ``--audit-url`` is unset (off)."""
    group = _group(values, "audit")
    if not group.get("url"):
        return None
    group["password"] = read_secret("LIVENESS_AUDIT_PASSWORD", env)
    try:
        return _within("audit", AuditConfig, group)  # type: ignore[no-any-return]
    except ConfigError as exc:
        if exc.field is None:
            raise
        raise ConfigError(f"{_named(exc.field)} {exc.problem}") from None


def _group(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    start = prefix + "."
    return {k[len(start) :]: v for k, v in values.items() if k.startswith(start)}


def _within(prefix: str, kind: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    try:
        return kind(**kwargs)
    except ConfigError as exc:
        if exc.field is None:
            raise
        raise ConfigError(str(exc), f"{prefix}.{exc.field}", exc.problem) from None


def _vendor(
    name: str,
    values: Mapping[str, Any],
    env: Mapping[str, str],
    sandbox: tuple[str, Mapping[str, tuple[str, str]]] | None,
) -> VendorConfig:
    group = _group(values, name)
    timeouts = {
        key[len("timeout.") :]: value
        for key, value in group.items()
        if key.startswith("timeout.") and value is not None
    }
    parts = {
        key[len("file_part.") :]: value
        for key, value in group.items()
        if key.startswith("file_part.")
    }
    if sandbox is not None:
        url, credentials = sandbox
        api_id, secret = credentials[name]
    else:
        secret = read_secret(f"{name.upper()}_API_SECRET", env)
        url, api_id = group["base_url"], group["api_id"]
    try:
        return VendorConfig(
            name,
            url.rstrip("/"),
            api_id,
            secret,
            group["timeout_s"],
            endpoint_timeouts_s=timeouts,
            file_parts=parts,
        )
    except ConfigError as exc:
        field = exc.field or ""
        if field.startswith("endpoint_timeouts_s."):
            field = "timeout." + field.split(".", 1)[1]
        raise ConfigError(str(exc), f"{name}.{field}", exc.problem) from None


def markdown_table(settings: Iterable[Setting] = SETTINGS, command: str = SERVE) -> str:
    """The README's configuration table."""
    lines = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for s in settings:
        if s.command not in (command, "*"):
            continue
        env = f"`{s.env}`"
        if s.flag is None and s.key.endswith((".api_secret", ".password")):
            env = f"`{s.env}` / `{s.env}_FILE`"
        flag = f"`{s.flag}`" if s.flag else "(none)"
        lines.append(f"| {env} | {flag} | {s.default_text()} | {s.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - documentation helper
    sys.stdout.write(markdown_table(command=sys.argv[1] if len(sys.argv) > 1 else SERVE))
