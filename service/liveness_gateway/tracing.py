"""OpenTelemetry tracing: a server span per liveness RPC, a client span per vendor attempt.

On only when an OTLP endpoint is configured (:class:`~liveness_gateway.config.TracingConfig`);
off, no tracer, interceptor or span exists and the hot path pays one ``is None`` test.

- The server span comes from the official gRPC instrumentation (``aio_server_interceptor``):
  it continues the caller's ``traceparent``/``tracestate`` from the metadata and sets the
  gRPC semantic-convention attributes and the status. It covers the liveness service only:
  its wrapper for streaming RPCs iterates the behaviour as an async generator, which the
  coroutine-style streaming handlers of health (Watch) and reflection are not; nor are health
  checks worth a span each. The gateway's interceptor adds its own attributes to that span.
- The client span per vendor attempt is the gateway's own (:func:`start_attempt`), not the
  aiohttp-client instrumentation's: an attempt is more than its HTTP exchange (the reply is
  read and judged, then the breaker and the retry policy decide, and those decisions are
  events on the attempt's span), the instrumentation would record the full url, query
  included, and it would make a second client span per attempt.

The provider is the gateway's own, never the global one: each gateway (tests start several in
one process) exports where its configuration says.
"""

from __future__ import annotations

import dataclasses
import functools
import urllib.parse
from collections.abc import Mapping
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.semconv.attributes import (
    error_attributes,
    http_attributes,
    server_attributes,
    url_attributes,
)
from opentelemetry.trace import Span, SpanKind, StatusCode

from liveness_gateway import __version__
from liveness_gateway.config import TracingConfig
from liveness_gateway.errors import GatewayError
from liveness_gateway.logs import CallRecord
from liveness_gateway.vendors.base import VendorRequest

_PREFIX = "liveness_gateway."
ATTEMPT = _PREFIX + "attempt"
"""1 for the first request to the vendor, 2 for the first retry, ..."""
EVENT_SHED = _PREFIX + "shed"
EVENT_BREAKER = _PREFIX + "breaker"
EVENT_RETRY = _PREFIX + "retry"
EVENT_GIVE_UP = _PREFIX + "give_up"
_HTTP_RESEND_COUNT = "http.request.resend_count"
_INSTRUMENTATION = "liveness_gateway"


def sampler_for(config: TracingConfig) -> Sampler:
    """The OTEL_TRACES_SAMPLER the configuration names, as the specification defines it."""
    ratio = 1.0 if config.sampler_arg is None else config.sampler_arg
    root: Sampler = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
    }[config.sampler.removeprefix("parentbased_")]
    return ParentBased(root) if config.sampler.startswith("parentbased_") else root


class Tracing:
    """One gateway's tracer provider, exporting in batches over OTLP/gRPC."""

    def __init__(self, config: TracingConfig) -> None:
        resource = Resource.create(
            {
                **config.resource_attributes,
                SERVICE_NAME: config.service_name,
                SERVICE_VERSION: __version__,
            }
        )
        self.provider = TracerProvider(resource=resource, sampler=sampler_for(config))
        self.provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=config.endpoint))
        )
        self.tracer = self.provider.get_tracer(_INSTRUMENTATION, __version__)

    def server_interceptor(self, service: str) -> grpc.aio.ServerInterceptor:
        """The official instrumentation's server span, for ``service``'s RPCs."""
        interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider, filter_=filters.service_name(service)
        )
        return interceptor

    def force_flush(self) -> bool:
        return bool(self.provider.force_flush())

    def shutdown(self) -> None:
        """Export what is left (blocking: call it off the event loop)."""
        self.provider.shutdown()


# --- the server span: set by the instrumentation, completed here ---------------------------


def note_ids(record: CallRecord) -> None:
    """Put the current (server) span's ids on the access log record."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        record.trace_id = trace.format_trace_id(context.trace_id)
        record.span_id = trace.format_span_id(context.span_id)


def finish_server_span(record: CallRecord) -> dict[str, str] | None:
    """Add the gateway's facts to the current server span; its exemplar, if it is sampled."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    attributes = {
        _PREFIX + "request_id": record.request_id,
        _PREFIX + "reason": record.reason,
        _PREFIX + "verdict": record.verdict,
        _PREFIX + "caller": record.caller,
        _PREFIX + "vendor": record.vendor,
        _PREFIX + "vendor_request_id": record.vendor_request_id,
    }
    span.set_attributes({k: v for k, v in attributes.items() if v})
    return exemplar(span)


def exemplar(span: Span) -> dict[str, str] | None:
    """A Prometheus exemplar naming ``span``, when the span is exported (sampled)."""
    context = span.get_span_context()
    if not context.trace_flags.sampled:
        return None
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }


def event(name: str, attributes: Mapping[str, Any]) -> None:
    """An event on the current span (the RPC's), for decisions taken before any attempt."""
    trace.get_current_span().add_event(name, {_PREFIX + k: v for k, v in attributes.items()})


# --- the client span of one vendor attempt -------------------------------------------------


@functools.lru_cache(maxsize=64)
def _url_attributes(url: str) -> tuple[str, dict[str, Any]]:
    """The span name and the url attributes of a vendor url: never its query, fragment or
    user info (the vendors' samples put credentials in queries)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    shown_host = f"[{host}]" if ":" in host else host
    path = parts.path or "/"
    return f"POST {path}", {
        http_attributes.HTTP_REQUEST_METHOD: "POST",
        url_attributes.URL_FULL: f"{parts.scheme}://{shown_host}:{port}{path}",
        url_attributes.URL_SCHEME: parts.scheme,
        "url.template": path,
        server_attributes.SERVER_ADDRESS: host,
        server_attributes.SERVER_PORT: port,
    }


def start_attempt(
    tracer: trace.Tracer, request: VendorRequest, attempt: int
) -> tuple[Span, VendorRequest]:
    """A client span for one attempt (child of the current span), and the request carrying
    its ``traceparent``: the vendor's own tracing, if any, continues the caller's trace."""
    name, url_attrs = _url_attributes(request.url)
    attributes: dict[str, Any] = {
        **url_attrs,
        ATTEMPT: attempt,
        _PREFIX + "vendor": request.vendor,
        _PREFIX + "endpoint": request.endpoint,
    }
    if attempt > 1:
        attributes[_HTTP_RESEND_COUNT] = attempt - 1
    span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return span, dataclasses.replace(request, headers={**request.headers, **carrier})


def reply_status(span: Span, http_status: int) -> None:
    span.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, http_status)


def attempt_failed(span: Span, err: GatewayError) -> None:
    """The attempt's failure, by the gateway's reason; never the message (it may quote the
    vendor's reply)."""
    if err.http_status is not None:
        span.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, err.http_status)
    if err.vendor_request_id:
        span.set_attribute(_PREFIX + "vendor_request_id", err.vendor_request_id)
    span.set_attribute(error_attributes.ERROR_TYPE, err.reason)
    span.set_attribute(_PREFIX + "reason", err.reason)
    span.set_status(StatusCode.ERROR, err.reason)


def attempt_aborted(span: Span, exc: BaseException) -> None:
    """An attempt ended by something other than a vendor failure (cancelled, a bug)."""
    span.set_attribute(error_attributes.ERROR_TYPE, type(exc).__qualname__)
    span.set_status(StatusCode.ERROR, type(exc).__qualname__)
