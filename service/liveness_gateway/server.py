"""grpc.aio server assembly: servicer, health, reflection, interceptor, metrics; start/stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry, ProcessCollector

from liveness_gateway import audit, errors, http1, readyfile, wire
from liveness_gateway.audit import query as audit_query
from liveness_gateway.auth import ANONYMOUS, UNKNOWN_CALLER, CallerAuth, load_callers
from liveness_gateway.config import MAX_GRPC_MESSAGE_BYTES, ConfigError, GatewayConfig
from liveness_gateway.interceptor import ObservabilityInterceptor
from liveness_gateway.metrics import Method, Metrics, metrics_app
from liveness_gateway.servicer import LivenessServicer
from liveness_gateway.state import StateStore, open_store
from liveness_gateway.tls import server_credentials
from liveness_gateway.tracing import Tracing
from liveness_gateway.transport import Transport, VendorTransport, new_client
from liveness_gateway.upstream import Upstream

log = logging.getLogger(__name__)

LIVENESS_SERVICE = wire.SERVICE
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"]
REFLECTION_SERVICE = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]
SERVICE_NAME = LIVENESS_SERVICE.full_name
AUDIT_SERVICE = audit_query.SERVICE


@dataclass(frozen=True)
class ConnectionPolicy:
    """How long client connections live and which keepalive pings they may send (README,
    "Connections"); ``None`` ages: gRPC's defaults (never)."""

    max_age_s: float | None = None
    grace_s: float | None = None
    min_ping_interval_s: float | None = None
    permit_pings_without_calls: bool = False

    @staticmethod
    def of(config: GatewayConfig) -> ConnectionPolicy:
        return ConnectionPolicy(
            config.max_connection_age_s or None,
            config.max_connection_age_grace_s,
            config.keepalive_min_ping_interval_s,
            config.keepalive_permit_without_calls,
        )

    def options(self) -> list[tuple[str, int]]:
        options = [("grpc.keepalive_permit_without_calls", int(self.permit_pings_without_calls))]
        if self.max_age_s is not None:
            options.append(("grpc.max_connection_age_ms", round(self.max_age_s * 1000)))
        if self.grace_s is not None:
            options.append(("grpc.max_connection_age_grace_ms", round(self.grace_s * 1000)))
        if self.min_ping_interval_s is not None:
            interval_ms = round(self.min_ping_interval_s * 1000)
            options.append(("grpc.http2.min_ping_interval_without_data_ms", interval_ms))
        return options


def server_options(
    *,
    reuse_port: bool = False,
    max_streams_per_connection: int | None = None,
    max_connections: int | None = None,
    connections: ConnectionPolicy | None = None,
) -> list[tuple[str, int]]:
    """gRPC core's channel arguments for a listener.

    gRPC reads a whole message before any handler (authentication included) runs, and opens a
    stream's flow-control window to the length its message header announces: a stream costs
    up to ``MAX_GRPC_MESSAGE_BYTES`` whoever sends it. The stream limit bounds that per
    connection, the connection limit the connections (SECURITY.md, "Memory").
    """
    options = [
        ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
        ("grpc.so_reuseport", int(reuse_port)),
    ]
    if max_streams_per_connection is not None:
        options.append(("grpc.max_concurrent_streams", max_streams_per_connection))
    if max_connections is not None:
        options.append(("grpc.max_allowed_incoming_connections", max_connections))
    if connections is not None:
        options += connections.options()
    return options


def methods_of(services: Iterable[ServiceDescriptor]) -> list[Method]:
    """Every method of the given services, typed as the grpc-ecosystem metrics label them."""
    kinds = {
        (False, False): "unary",
        (True, False): "client_stream",
        (False, True): "server_stream",
        (True, True): "bidi_stream",
    }
    return [
        Method(s.full_name, m.name, kinds[(m.client_streaming, m.server_streaming)])
        for s in services
        for m in s.methods
    ]


def new_metrics(
    registry: CollectorRegistry,
    *,
    reflection_on: bool = True,
    callers: tuple[str, ...] = (),
    audit_on: bool = False,
) -> Metrics:
    services = [LIVENESS_SERVICE, HEALTH_SERVICE]
    if reflection_on:
        services.append(REFLECTION_SERVICE)
    if audit_on:
        services.append(AUDIT_SERVICE)
    return Metrics(
        registry,
        methods=methods_of(services),
        callers=(*callers, UNKNOWN_CALLER) if callers else (ANONYMOUS,),
    )


class CallersOnlyReflection(ReflectionServicer):  # type: ignore[misc]
    """Server reflection that answers known callers only (it lists every service)."""

    def __init__(self, service_names: tuple[str, ...], auth: CallerAuth) -> None:
        super().__init__(service_names)
        self._auth = auth

    async def ServerReflectionInfo(  # noqa: N802  (gRPC method name)
        self, request_iterator: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        if self._auth.identify(context) is None:
            status = rpc_status.to_status(errors.unauthenticated().to_status())
            await context.abort(status.code, status.details, status.trailing_metadata)
        async for response in super().ServerReflectionInfo(request_iterator, context):
            yield response


@dataclass
class RunningGateway:
    """A started gateway: where it listens and what must be closed on stop."""

    server: grpc.aio.Server
    port: int
    vendor_client: http1.Client | None
    """The vendor client, when the gateway made its own transport."""
    health: health.aio.HealthServicer
    config: GatewayConfig
    metrics: Metrics
    metrics_runner: web.AppRunner | None = None
    metrics_port: int | None = None
    health_server: grpc.aio.Server | None = None
    health_port: int | None = None
    tracing: Tracing | None = None
    store: StateStore | None = None
    """The state store (limits, idempotency records): closed on stop."""
    audit: audit.RunningAudit | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain: NOT_SERVING first, then let in-flight RPCs finish, then close the vendor
        client."""
        if self.config.ready_file:
            readyfile.remove(self.config.ready_file)
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.config.grace_s if grace_s is None else grace_s)
        if self.audit is not None:  # after the last call: what is queued is written
            await self.audit.stop()
        if self.health_server is not None:
            await self.health_server.stop(None)
        if self.vendor_client is not None:
            await self.vendor_client.close()
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)  # exports what is left
        if self.store is not None:
            await self.store.close()


async def start_metrics_server(
    registry: CollectorRegistry, host: str, port: int
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(metrics_app(registry), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner, runner.addresses[0][1]


async def start(
    config: GatewayConfig,
    *,
    registry: CollectorRegistry | None = None,
    serve_metrics: bool = True,
    reuse_port: bool = False,
    transport: Transport | None = None,
) -> RunningGateway:
    """Build and start the server on ``config.host:config.port`` (0 picks a free port).

    ``serve_metrics=False`` leaves /metrics to someone else (the multi-worker parent).
    ``transport`` replaces the HTTP transport to the vendors (tests: an in-memory one).
    """
    callers = load_callers(config.callers_file) if config.callers_file else None
    if registry is None:
        registry = CollectorRegistry()
        if serve_metrics:  # this process' CPU and memory (the multi-worker parent has its own)
            ProcessCollector(registry=registry)
    metrics = new_metrics(
        registry,
        reflection_on=config.reflection,
        callers=tuple(c.name for c in callers) if callers else (),
        audit_on=config.audit is not None,
    )
    store = open_store(config.state, metrics)
    auth = (
        CallerAuth(callers, on_decision=metrics.caller_decision, store=store) if callers else None
    )
    credentials = server_credentials(config.tls) if config.tls is not None else None
    vendor_client = None
    if transport is None:
        vendor_client = new_client()
        transport = VendorTransport(vendor_client)
    tracing = Tracing(config.tracing) if config.tracing is not None else None
    interceptors: list[grpc.aio.ServerInterceptor] = [
        ObservabilityInterceptor(metrics, traced=tracing is not None)
    ]
    if tracing is not None:  # outermost, so that its server span is current in ours
        interceptors.insert(0, tracing.server_interceptor(SERVICE_NAME))
    server = grpc.aio.server(
        options=server_options(
            reuse_port=reuse_port,
            max_streams_per_connection=config.max_streams_per_connection,
            max_connections=config.max_connections,
            connections=ConnectionPolicy.of(config),
        ),
        interceptors=interceptors,
    )
    upstream = Upstream(
        config, transport, metrics, tracer=tracing.tracer if tracing else None, store=store
    )
    running_audit = None
    if config.audit is not None:
        try:
            running_audit = await audit.start(config.audit, registry)
        except BaseException:
            if vendor_client is not None:
                await vendor_client.close()
            await store.close()
            raise
        audit_query.add_to_server(audit_query.AuditLogServicer(running_audit.store, auth), server)
    trail = running_audit.trail if running_audit is not None else None
    wire.add_to_server(
        LivenessServicer(config, upstream, metrics, auth, store, audit=trail), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        names: tuple[str, ...] = (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
        if running_audit is not None:
            names += (AUDIT_SERVICE.full_name,)
        callers_only = config.reflection_callers_only
        if auth is not None and callers_only is not False:
            reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
                CallersOnlyReflection(names, auth), server
            )
        elif callers_only:
            raise ConfigError("reflection for callers only needs a callers file")
        else:
            reflection.enable_server_reflection(names, server)
    address = f"{config.host}:{config.port}"
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError:
        port = 0
    metrics_runner, metrics_port = None, None
    health_server, health_port = None, None
    try:
        if port == 0:
            raise OSError(f"cannot listen on {config.host}:{config.port}")
        if config.health_port is not None:
            health_server, health_port = await start_health_server(
                health_servicer, config, reuse_port=reuse_port
            )
        if serve_metrics and config.metrics_port is not None:
            metrics_runner, metrics_port = await start_metrics_server(
                registry, config.metrics_host, config.metrics_port
            )
    except BaseException:
        if vendor_client is not None:
            await vendor_client.close()
        await store.close()
        await server.stop(None)
        if running_audit is not None:
            await running_audit.stop()
        if health_server is not None:
            await health_server.stop(None)
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)
        raise
    await server.start()
    if config.tls is None:
        log.warning("gRPC on %s is PLAINTEXT (no TLS): for local use only", address)
    else:
        mode = "mTLS (client certificates required)" if config.tls.client_ca_file else "TLS"
        log.info("gRPC on %s uses %s", address, mode)
    if auth is None:
        log.warning("caller authentication is OFF: any client may call (set a callers file)")
    # The vendor client is up and the port is bound: ready.
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningGateway(
        server,
        port,
        vendor_client,
        health_servicer,
        config,
        metrics,
        metrics_runner,
        metrics_port,
        health_server,
        health_port,
        tracing,
        store,
        running_audit,
    )
    if config.ready_file:
        try:
            readyfile.write(
                config.ready_file, readyfile.gateway_info(config, port, metrics_port, health_port)
            )
        except OSError:
            await running.stop(0)
            raise
    return running


async def start_health_server(
    servicer: health.aio.HealthServicer, config: GatewayConfig, *, reuse_port: bool
) -> tuple[grpc.aio.Server, int]:
    """grpc.health.v1 alone, in plaintext, for probes that cannot speak TLS (kubelet's)."""
    host, port = config.host, config.health_port
    server = grpc.aio.server(
        options=server_options(
            reuse_port=reuse_port,
            max_streams_per_connection=config.max_streams_per_connection,
            max_connections=config.max_connections,
            connections=ConnectionPolicy.of(config),
        )
    )
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} for health checks")
    await server.start()
    return server, bound


def stop_signal() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT. Install it first thing, so that a signal during
    start-up is not lost (the process may be PID 1 in a container, with no default action)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_until(gateway: RunningGateway, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then drain within the configured grace period."""
    try:
        await stop.wait()
        log.info("signal received: draining for up to %.1fs", gateway.config.grace_s)
    finally:
        await gateway.stop()
        log.info("stopped")
