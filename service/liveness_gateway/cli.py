"""``liveness-gateway`` command line: ``serve`` and ``sandbox``.

Every flag has an environment variable (shown in ``--help``); a flag wins over its variable.
Vendor secrets have no flag at all: ``ps`` would show them.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from liveness_gateway import __version__, logs, workers
from liveness_gateway.config import (
    ACCUAUTH,
    ALL_INTERFACES,
    DEFAULT_THRESHOLD,
    LINKFACE,
    ConfigError,
    GatewayConfig,
    ResilienceConfig,
    TlsConfig,
    VendorConfig,
    require_credentials,
    vendor_from_env,
)
from liveness_gateway.sandbox import Credentials, SandboxConfig, start_sandbox
from liveness_gateway.sandbox.app import Network
from liveness_gateway.server import serve_until, start, stop_signal
from liveness_gateway.vendors.linkface import UPLOAD

log = logging.getLogger("liveness_gateway")


def _env_option(
    parser: argparse.ArgumentParser,
    env: Mapping[str, str],
    flag: str,
    var: str,
    default: Any = None,
    **kwargs: Any,
) -> None:
    """A flag whose default comes from an environment variable, both shown in ``--help``."""
    value = env.get(var)
    help_text = kwargs.pop("help", "")
    parser.add_argument(
        flag,
        default=value if value not in (None, "") else default,
        help=f"{help_text} [env {var}; default {default}]",
        **kwargs,
    )


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="liveness-gateway", description=__doc__)
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = root.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gRPC gateway")
    _env_option(serve, env, "--host", "LIVENESS_HOST", "[::]", help="address to listen on")
    _env_option(serve, env, "--port", "LIVENESS_PORT", 50051, type=int, help="gRPC port")
    serve.add_argument(
        "--sandbox",
        action="store_true",
        default=env.get("LIVENESS_SANDBOX", "") in ("1", "true"),
        help="start the offline vendor sandbox in-process and use it [env LIVENESS_SANDBOX=1]",
    )
    for vendor in (LINKFACE, ACCUAUTH):
        up = vendor.upper()
        # Vendor URL and id fall back to the environment in config.vendor_from_env, the one
        # place that reads vendor settings (secrets included, which have no flag).
        serve.add_argument(f"--{vendor}-base-url", help=f"{vendor} base URL [env {up}_BASE_URL]")
        serve.add_argument(f"--{vendor}-api-id", help=f"{vendor} API id [env {up}_API_ID]")
        _env_option(
            serve,
            env,
            f"--{vendor}-timeout",
            f"{up}_TIMEOUT_S",
            10.0,
            type=float,
            help=f"{vendor} request timeout in seconds when the caller sets no deadline",
        )
    _env_option(
        serve,
        env,
        "--linkface-upload-timeout",
        "LINKFACE_UPLOAD_TIMEOUT_S",
        None,
        type=float,
        help="LinkFace upload timeout in seconds when the caller sets no deadline "
        "(default: --linkface-timeout)",
    )
    _env_option(
        serve,
        env,
        "--detect-threshold",
        "LIVENESS_DETECT_THRESHOLD",
        DEFAULT_THRESHOLD,
        type=float,
        help="Detect: score above this is a hack",
    )
    _env_option(
        serve,
        env,
        "--antihack-threshold",
        "LIVENESS_ANTIHACK_THRESHOLD",
        DEFAULT_THRESHOLD,
        type=float,
        help="AntiHack: score above this is a hack",
    )
    _env_option(
        serve,
        env,
        "--grace",
        "LIVENESS_GRACE_S",
        10.0,
        type=float,
        help="seconds in-flight RPCs get to finish on SIGTERM",
    )
    _env_option(
        serve,
        env,
        "--reflection",
        "LIVENESS_REFLECTION",
        None,
        choices=("on", "off", "callers"),
        help="gRPC server reflection: on, off, or callers (known callers only); "
        "default: callers with a callers file, else on",
    )
    serve.add_argument(
        "--no-reflection",
        dest="reflection",
        action="store_const",
        const="off",
        help="the same as --reflection off",
    )
    _env_option(
        serve,
        env,
        "--tls-cert",
        "LIVENESS_TLS_CERT",
        None,
        help="PEM certificate chain for TLS on the gRPC port (re-read when it changes)",
    )
    _env_option(serve, env, "--tls-key", "LIVENESS_TLS_KEY", None, help="PEM private key file")
    _env_option(
        serve,
        env,
        "--tls-client-ca",
        "LIVENESS_TLS_CLIENT_CA",
        None,
        help="PEM CA bundle: require and verify client certificates (mTLS)",
    )
    _env_option(
        serve,
        env,
        "--health-port",
        "LIVENESS_HEALTH_PORT",
        None,
        type=int,
        help="also serve grpc.health.v1 alone, in plaintext, on this port (for probes with TLS)",
    )
    _env_option(
        serve,
        env,
        "--callers-file",
        "LIVENESS_CALLERS_FILE",
        None,
        help="TOML file of callers; turns caller authentication on",
    )
    _env_option(
        serve,
        env,
        "--url-allow-hosts",
        "LIVENESS_URL_ALLOW_HOSTS",
        "",
        help="comma-separated hosts a liveness_data_url may name (*.example.com allowed)",
    )
    _env_option(
        serve,
        env,
        "--max-streams-per-connection",
        "LIVENESS_MAX_STREAMS_PER_CONNECTION",
        16,
        type=int,
        help="HTTP/2 streams one client connection may have open (bounds memory, SECURITY.md)",
    )
    _env_option(
        serve,
        env,
        "--max-connections",
        "LIVENESS_MAX_CONNECTIONS",
        32,
        type=int,
        help="client connections the gRPC port accepts at once (bounds memory, SECURITY.md)",
    )
    _env_option(
        serve,
        env,
        "--max-in-flight",
        "LIVENESS_MAX_IN_FLIGHT",
        512,
        type=int,
        help="liveness RPCs handled at once; more are shed with UNAVAILABLE/OVERLOADED",
    )
    _env_option(
        serve,
        env,
        "--vendor-max-concurrency",
        "LIVENESS_VENDOR_MAX_CONCURRENCY",
        64,
        type=int,
        help="requests in flight to one vendor; more are shed at once",
    )
    _env_option(
        serve,
        env,
        "--vendor-rate",
        "LIVENESS_VENDOR_RATE",
        0.0,
        type=float,
        help="token-bucket requests per second per vendor (0: no limit)",
    )
    _env_option(
        serve,
        env,
        "--vendor-rate-burst",
        "LIVENESS_VENDOR_RATE_BURST",
        10,
        type=int,
        help="token-bucket size for --vendor-rate",
    )
    _env_option(
        serve,
        env,
        "--max-attempts",
        "LIVENESS_MAX_ATTEMPTS",
        3,
        type=int,
        help="attempts per vendor call, retries included (retries only where safe)",
    )
    _env_option(
        serve,
        env,
        "--breaker-failures",
        "LIVENESS_BREAKER_FAILURES",
        5,
        type=int,
        help="consecutive vendor failures that open an endpoint's circuit breaker",
    )
    _env_option(
        serve,
        env,
        "--breaker-open",
        "LIVENESS_BREAKER_OPEN_S",
        5.0,
        type=float,
        help="seconds an open breaker fails fast before one probe",
    )
    _env_option(
        serve,
        env,
        "--workers",
        "LIVENESS_WORKERS",
        1,
        type=int,
        help="gateway processes sharing the port (SO_REUSEPORT); /metrics covers all",
    )
    _env_option(
        serve,
        env,
        "--metrics-host",
        "LIVENESS_METRICS_HOST",
        ALL_INTERFACES,
        help="address of the /metrics HTTP endpoint",
    )
    _env_option(
        serve,
        env,
        "--metrics-port",
        "LIVENESS_METRICS_PORT",
        9464,
        type=int,
        help="port of the /metrics HTTP endpoint (0 picks a free one)",
    )
    _log_options(serve, env)

    sandbox = sub.add_parser("sandbox", help="run the offline vendor sandbox alone")
    _env_option(sandbox, env, "--host", "SANDBOX_HOST", "127.0.0.1", help="address to listen on")
    _env_option(sandbox, env, "--port", "SANDBOX_PORT", 8080, type=int, help="HTTP port")
    _env_option(
        sandbox,
        env,
        "--download-allow",
        "SANDBOX_DOWNLOAD_ALLOW",
        "127.0.0.0/8,::1",
        help="comma-separated addresses or networks url sources may be downloaded from",
    )
    _log_options(sandbox, env)
    return root


def _log_options(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    _env_option(parser, env, "--log-level", "LIVENESS_LOG_LEVEL", "INFO", help="log level")
    _env_option(
        parser,
        env,
        "--log-format",
        "LIVENESS_LOG_FORMAT",
        "json",
        choices=("json", "text"),
        help="json: one JSON object per line; text: human-readable",
    )


def _positive(value: float, flag: str) -> float:
    if not value > 0:  # also refuses NaN
        raise ConfigError(f"{flag} must be greater than 0")
    return value


def _at_least_one(value: int, flag: str) -> int:
    if value < 1:
        raise ConfigError(f"{flag} must be at least 1")
    return value


def _grace(value: float) -> float:
    if not value >= 0:  # 0 is allowed: stop without waiting
        raise ConfigError("--grace must be 0 or more seconds")
    return value


def _threshold(value: float, flag: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{flag} must be within [0, 1]")
    return value


def _gateway_config(
    args: argparse.Namespace, env: Mapping[str, str], sandbox: tuple[str, SandboxConfig] | None
) -> GatewayConfig:
    vendors: dict[str, VendorConfig] = {}
    for name in (LINKFACE, ACCUAUTH):
        timeout_s = _positive(getattr(args, f"{name}_timeout"), f"--{name}-timeout")
        endpoint_timeouts: dict[str, float] = {}
        if name == LINKFACE and args.linkface_upload_timeout is not None:
            endpoint_timeouts[UPLOAD] = _positive(
                args.linkface_upload_timeout, "--linkface-upload-timeout"
            )
        if sandbox is not None:
            url, sandbox_config = sandbox
            creds: Credentials = getattr(sandbox_config, name)
            vendors[name] = VendorConfig(
                name, url, creds.api_id, creds.api_secret, timeout_s, endpoint_timeouts
            )
        else:
            vendors[name] = vendor_from_env(
                name,
                env,
                base_url=getattr(args, f"{name}_base_url"),
                api_id=getattr(args, f"{name}_api_id"),
                timeout_s=timeout_s,
                endpoint_timeouts_s=endpoint_timeouts,
            )
    if sandbox is None:
        require_credentials(*vendors.values())
        if not args.url_allow_hosts.strip():
            log.warning(
                "no url allow-list: liveness_data_url may name any host, which the vendor "
                "will fetch (set --url-allow-hosts)"
            )
    if args.reflection not in (None, "on", "off", "callers"):
        raise ConfigError("--reflection must be on, off or callers")
    if args.reflection == "callers" and not args.callers_file:
        raise ConfigError("--reflection callers needs --callers-file")
    return GatewayConfig(
        linkface=vendors[LINKFACE],
        accuauth=vendors[ACCUAUTH],
        host=args.host,
        port=args.port,
        detect_threshold=_threshold(args.detect_threshold, "--detect-threshold"),
        antihack_threshold=_threshold(args.antihack_threshold, "--antihack-threshold"),
        grace_s=_grace(args.grace),
        reflection=args.reflection != "off",
        reflection_callers_only={"on": False, "callers": True}.get(args.reflection),
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        resilience=_resilience(args),
        tls=_tls(args),
        health_port=args.health_port,
        callers_file=args.callers_file or None,
        url_allow_hosts=tuple(h.strip() for h in args.url_allow_hosts.split(",") if h.strip()),
        max_streams_per_connection=_at_least_one(
            args.max_streams_per_connection, "--max-streams-per-connection"
        ),
        max_connections=_at_least_one(args.max_connections, "--max-connections"),
    )


def _tls(args: argparse.Namespace) -> TlsConfig | None:
    if not (args.tls_cert or args.tls_key or args.tls_client_ca):
        return None
    if not (args.tls_cert and args.tls_key):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    return TlsConfig(args.tls_cert, args.tls_key, args.tls_client_ca or None)


def _resilience(args: argparse.Namespace) -> ResilienceConfig:
    positive = {
        "--max-in-flight": args.max_in_flight,
        "--vendor-max-concurrency": args.vendor_max_concurrency,
        "--vendor-rate-burst": args.vendor_rate_burst,
        "--max-attempts": args.max_attempts,
        "--breaker-failures": args.breaker_failures,
    }
    for flag, value in positive.items():
        if value < 1:
            raise ConfigError(f"{flag} must be at least 1")
    if args.vendor_rate < 0 or args.breaker_open <= 0:
        raise ConfigError("--vendor-rate must be >= 0 and --breaker-open > 0")
    return ResilienceConfig(
        max_in_flight_rpcs=args.max_in_flight,
        vendor_max_concurrency=args.vendor_max_concurrency,
        vendor_rate_per_s=args.vendor_rate or None,
        vendor_rate_burst=args.vendor_rate_burst,
        max_attempts=args.max_attempts,
        breaker_failures=args.breaker_failures,
        breaker_open_s=args.breaker_open,
    )


async def _serve(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    stop = stop_signal()
    sandbox = None
    sandbox_info = None
    if args.sandbox:
        sandbox = await start_sandbox(
            SandboxConfig(linkface=Credentials.generate(), accuauth=Credentials.generate())
        )
        sandbox_info = (sandbox.url, sandbox.config)
        log.warning("SANDBOX MODE: vendors are emulated at %s; scores are not real", sandbox.url)
    try:
        config = _gateway_config(args, env, sandbox_info)
        gateway = await start(config)
        log.info("liveness-gateway %s listening on %s:%d", __version__, config.host, gateway.port)
        if gateway.metrics_port is not None:
            log.info("metrics on http://%s:%d/metrics", config.metrics_host, gateway.metrics_port)
        await serve_until(gateway, stop)
    finally:
        if sandbox is not None:
            await sandbox.stop()


def _networks(value: str, flag: str) -> tuple[Network, ...]:
    try:
        networks = tuple(
            ipaddress.ip_network(part.strip()) for part in value.split(",") if part.strip()
        )
    except ValueError:
        raise ConfigError(f"{flag}: not a list of addresses or networks: {value!r}") from None
    if not networks:
        raise ConfigError(f"{flag} must name at least one address or network")
    return networks


async def _sandbox(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    config = SandboxConfig(
        linkface=Credentials(
            env.get("SANDBOX_LINKFACE_API_ID", "sandbox-id"),
            env.get("SANDBOX_LINKFACE_API_SECRET", "sandbox-secret"),
        ),
        accuauth=Credentials(
            env.get("SANDBOX_ACCUAUTH_API_ID", "sandbox-id"),
            env.get("SANDBOX_ACCUAUTH_API_SECRET", "sandbox-secret"),
        ),
        download_allow=_networks(args.download_allow, "--download-allow"),
    )
    sandbox = await start_sandbox(config, host=args.host, port=args.port)
    log.info("vendor sandbox listening on %s", sandbox.url)
    try:
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = _parser(env).parse_args(argv)
    logs.configure(args.log_format, str(args.log_level))
    try:
        if args.command == "serve" and args.workers != 1:
            if args.workers < 1:
                raise ConfigError("--workers must be at least 1")
            return workers.supervise(
                args.workers,
                lambda sandbox: _gateway_config(args, env, sandbox),
                sandbox=args.sandbox,
            )
        runner = _serve if args.command == "serve" else _sandbox
        asyncio.run(runner(args, env))
    except ConfigError as exc:
        print(f"liveness-gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"liveness-gateway: {exc}", file=sys.stderr)
        return 1
    return 0
