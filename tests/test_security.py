"""TLS, mTLS, certificate reload, caller authentication and per-caller limits, for real.

Certificates are made in the test; every handshake is a real one over loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from cryptography import x509
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.auth import hash_token, load_callers
from liveness_gateway.cli import _parser
from liveness_gateway.config import ConfigError, TlsConfig
from liveness_gateway.logs import ACCESS_LOGGER, TextFormatter
from liveness_gateway.sandbox import Credentials, RunningSandbox, SandboxConfig, start_sandbox
from liveness_gateway.server import RunningGateway
from liveness_gateway.vendors import linkface

from tests.conftest import CHANNEL_OPTIONS
from tests.h2raw import unary_call
from tests.metrics_text import sample, scrape
from tests.pki import Authority, Pair
from tests.status import failure_of

C = grpc.StatusCode
CHECKOUT_TOKEN = "checkout-token-" + "x" * 20
OK_DATA = b"SANDBOX:score=0.2"


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority("test-ca")


@pytest.fixture
def pki(tmp_path: Path, ca: Authority) -> dict[str, Any]:
    server_cert, server_key = ca.issue("gateway.test", server=True).write(tmp_path, "server")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.pem)
    return {"dir": tmp_path, "cert": server_cert, "key": server_key, "ca": ca_file}


def secure_channel(
    gateway: RunningGateway, root: bytes, client: Pair | None = None
) -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=client.key_pem if client else None,
        certificate_chain=client.cert_pem if client else None,
    )
    return grpc.aio.secure_channel(
        f"localhost:{gateway.port}",
        creds,
        options=[*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", "gateway.test")],
    )


async def detect(channel: grpc.aio.Channel, data: bytes = OK_DATA, **kw: Any) -> Any:
    return await liveness_pb2_grpc.LivenessCheckStub(channel).Detect(
        pb.DetectRequest(liveness_data=data), timeout=5, **kw
    )


# --- transport -------------------------------------------------------------------------------


async def test_tls_handshake_and_plaintext_refused(make_gateway, sandbox, pki, ca) -> None:
    gateway = await make_gateway(tls=TlsConfig(str(pki["cert"]), str(pki["key"])))
    async with secure_channel(gateway, ca.pem) as channel:
        assert (await detect(channel)).score == pytest.approx(0.2)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await detect(channel)
        assert caught.value.code() == C.UNAVAILABLE
    async with secure_channel(gateway, Authority("other-ca").pem) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await detect(channel)  # the client does not trust the server
        assert caught.value.code() == C.UNAVAILABLE
    assert sandbox.state.total() == 1


async def test_mtls_requires_a_client_certificate_from_the_ca(
    make_gateway, sandbox, pki, ca
) -> None:
    gateway = await make_gateway(tls=TlsConfig(str(pki["cert"]), str(pki["key"]), str(pki["ca"])))
    async with secure_channel(gateway, ca.pem, ca.issue("kyc.internal")) as channel:
        assert (await detect(channel)).verdict == pb.VERDICT_LIVE
    for client in (None, Authority("rogue-ca").issue("kyc.internal")):
        async with secure_channel(gateway, ca.pem, client) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await detect(channel)
            assert caught.value.code() == C.UNAVAILABLE
    assert sandbox.state.total() == 1


async def test_certificates_reload_from_disk_without_restart(make_gateway, pki, ca) -> None:
    gateway = await make_gateway(tls=TlsConfig(str(pki["cert"]), str(pki["key"])))
    async with secure_channel(gateway, ca.pem) as channel:
        await detect(channel)
    rotated = Authority("rotated-ca")
    pair = rotated.issue("gateway.test", server=True)
    pki["key"].write_bytes(pair.key_pem)
    pki["cert"].write_bytes(pair.cert_pem)
    future = os.stat(pki["cert"]).st_mtime + 5
    for path in (pki["cert"], pki["key"]):
        os.utime(path, (future, future))
    async with secure_channel(gateway, rotated.pem) as channel:
        assert (await detect(channel)).score == pytest.approx(0.2)
    async with secure_channel(gateway, ca.pem) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await detect(channel)  # the old certificate is no longer served


# --- callers ---------------------------------------------------------------------------------


def _callers_file(directory: Path) -> Path:
    path = directory / "callers.toml"
    path.write_text(
        f"""
[[caller]]
name = "checkout"
token_sha256 = "{hash_token(CHECKOUT_TOKEN)}"
rpcs = ["Detect", "AntiHack"]
rate_per_s = 0.1
burst = 2

[[caller]]
name = "kyc"
cert_names = ["kyc.internal"]
rpcs = ["*"]
daily_quota = 3
"""
    )
    return path


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_two_callers_with_different_permissions_and_limits(
    make_gateway, sandbox, pki, ca, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    gateway = await make_gateway(
        tls=TlsConfig(str(pki["cert"]), str(pki["key"]), str(pki["ca"])),
        callers_file=str(_callers_file(pki["dir"])),
    )
    unknown_client = ca.issue("stranger.internal")
    checkout_client = ca.issue("checkout-box.internal")  # not a cert name of any caller
    kyc_client = ca.issue("kyc.internal")

    async with secure_channel(gateway, ca.pem, unknown_client) as channel:
        for metadata in ((), bearer("wrong-token"), (("authorization", "Basic Zm9vOmJhcg=="),)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await detect(channel, metadata=metadata)
            failure = failure_of(caught.value)
            assert (failure.code, failure.info.reason) == (C.UNAUTHENTICATED, "CALLER_UNKNOWN")

    async with secure_channel(gateway, ca.pem, checkout_client) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Upload(pb.UploadRequest(liveness_data=b"x"), metadata=bearer(CHECKOUT_TOKEN))
        failure = failure_of(caught.value)
        assert (failure.code, failure.info.reason) == (C.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")
        for _ in range(2):
            await detect(channel, metadata=bearer(CHECKOUT_TOKEN))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await detect(channel, metadata=bearer(CHECKOUT_TOKEN))
        failure = failure_of(caught.value)
        assert (failure.code, failure.info.reason) == (C.RESOURCE_EXHAUSTED, "CALLER_RATE_LIMITED")
        quota = failure.detail(error_details_pb2.QuotaFailure)
        assert isinstance(quota, error_details_pb2.QuotaFailure)
        assert quota.violations[0].subject == "caller:checkout"
        assert "0.1 calls/s" in quota.violations[0].description
        assert failure.retry_delay_s == pytest.approx(10.0)

    async with secure_channel(gateway, ca.pem, kyc_client) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        await stub.Upload(pb.UploadRequest(liveness_data=b"x"), timeout=5)  # kyc may upload
        for _ in range(2):
            await detect(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await detect(channel)
        failure = failure_of(caught.value)
        assert (failure.code, failure.info.reason) == (
            C.RESOURCE_EXHAUSTED,
            "CALLER_QUOTA_EXCEEDED",
        )
        quota = failure.detail(error_details_pb2.QuotaFailure)
        assert isinstance(quota, error_details_pb2.QuotaFailure)
        assert quota.violations[0].subject == "caller:kyc"
        assert "3 calls per UTC day" in quota.violations[0].description

    # Only admitted calls reached the vendor: 2 checkout Detects, kyc's Upload and 2 Detects.
    assert sandbox.state.total() == 5
    assert gateway.metrics_port
    text = await scrape(gateway.metrics_port)
    calls = "liveness_gateway_caller_calls_total"
    assert sample(text, calls, caller="unknown", rpc="Detect", decision="unauthenticated") == 3
    assert sample(text, calls, caller="checkout", rpc="Upload", decision="denied") == 1
    assert sample(text, calls, caller="checkout", rpc="Detect", decision="admitted") == 2
    assert sample(text, calls, caller="checkout", rpc="Detect", decision="rate_limited") == 1
    assert sample(text, calls, caller="kyc", rpc="Detect", decision="quota_exceeded") == 1
    assert CHECKOUT_TOKEN not in text
    callers_logged = {getattr(r, "caller", None) for r in caplog.records if r.name == ACCESS_LOGGER}
    assert {"checkout", "kyc"} <= callers_logged


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("", "no [[caller]]"),
        ("[[caller]]\nname = 'a'\n", "needs token_sha256 or cert_names"),
        ("[[caller]]\nname = 'a'\ntoken_sha256 = 'abc'\n", "64 hex digits"),
        ("[[caller]]\nname = 'a'\ncert_names = ['x']\nrpcs = ['Delete']\n", "rpcs must list"),
        ("[[caller]]\nname = 'a'\ncert_names = ['x']\nrate_per_s = -1\n", "rate_per_s"),
        ("[[caller]]\nname = 'a'\ncert_names = ['x']\ncolour = 'red'\n", "unknown keys"),
        ("[[caller]]\nname = 'A B'\ncert_names = ['x']\n", "name must be"),
        ("[[caller]]\nname = 'a'\ncert_names = ['x']\n" * 2, "unique"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_callers_file_mistakes_are_one_line_errors(
    tmp_path: Path, body: str, complaint: str
) -> None:
    path = tmp_path / "callers.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as caught:
        load_callers(path)
    assert complaint in str(caught.value)
    assert "\n" not in str(caught.value)


# --- hostile input ---------------------------------------------------------------------------


async def test_oversized_message_is_refused_and_the_gateway_carries_on(stub, sandbox) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data=b"x" * (7 * 1024 * 1024)))
    assert caught.value.code() == C.RESOURCE_EXHAUSTED
    assert (await stub.Detect(pb.DetectRequest(liveness_data=OK_DATA))).score == pytest.approx(0.2)
    assert sandbox.state.total() == 1


async def test_url_host_allow_list(make_stub, sandbox, file_server) -> None:
    stub = await make_stub(url_allow_hosts=("127.0.0.1", "*.cdn.example"))
    url = file_server.add("ok", OK_DATA)
    assert (await stub.Detect(pb.DetectRequest(liveness_data_url=url))).score == pytest.approx(0.2)
    for bad in ("http://evil.example/x", "http://cdn.example.evil/x", "http://metadata.internal/"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Detect(pb.DetectRequest(liveness_data_url=bad))
        failure = failure_of(caught.value)
        assert (failure.code, failure.info.reason) == (C.INVALID_ARGUMENT, "INVALID_REQUEST")
        assert "allow-list" in failure.message
    assert sandbox.state.total() == 1


@pytest.mark.parametrize(
    "vector",
    ["SANDBOX:score_raw=NaN", "SANDBOX:score_raw=1.5", "SANDBOX:score_raw=-0.1",
     "SANDBOX:score_raw=inf", "SANDBOX:score_raw=abc", "SANDBOX:body=huge"],
)  # fmt: skip
async def test_hostile_vendor_replies_never_pass_as_a_score(make_stub, vector: str) -> None:
    stub = await make_stub()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(liveness_data=vector.encode()), timeout=10)
    failure = failure_of(caught.value)
    assert (failure.code, failure.info.reason) == (C.UNAVAILABLE, "VENDOR_BAD_REPLY")


def test_no_command_line_flag_takes_a_secret() -> None:
    parser = _parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    flags = [opt for action in serve._actions for opt in action.option_strings]
    assert flags
    assert not [f for f in flags if "secret" in f or "token" in f or f == "--tls-key-data"]


async def test_plaintext_health_port_beside_a_tls_listener(make_gateway, sandbox, pki, ca) -> None:
    gateway = await make_gateway(
        tls=TlsConfig(str(pki["cert"]), str(pki["key"]), str(pki["ca"])),
        health_port=0,
    )
    assert gateway.health_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.health_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(
            health_pb2.HealthCheckRequest(service="liveness.v1.LivenessCheck")
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # Only health lives there: the liveness service is not reachable without TLS.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await detect(channel)
        assert caught.value.code() == C.UNIMPLEMENTED
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.create_task(gateway.stop(0.5))
        update = await asyncio.wait_for(watch.read(), timeout=5)
        assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
        await stopping
    assert sandbox.state.total() == 0


# --- the error contract under malformed bytes and hostile metadata (issue #17) ---------------

DETECT_METHOD = "/liveness.v1.LivenessCheck/Detect"


async def test_malformed_protobuf_is_invalid_argument_logged_once_without_traceback(
    gateway: RunningGateway, sandbox: RunningSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """The 9-byte request 00 00000004 ffffffff: a truncated varint, which protobuf refuses."""
    caplog.set_level(logging.INFO)
    calls = 50
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        raw = channel.unary_unary(DETECT_METHOD)  # bytes in, bytes out: no serializer
        for _ in range(calls):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await raw(b"\xff\xff\xff\xff", timeout=5)
            failure = failure_of(caught.value)
            assert (failure.code, failure.info.reason) == (C.INVALID_ARGUMENT, "INVALID_REQUEST")
            bad = failure.detail(error_details_pb2.BadRequest)
            assert isinstance(bad, error_details_pb2.BadRequest)
            assert bad.field_violations[0].field == "request"
            assert "Error" not in failure.message
            assert "class" not in failure.message
            trailers = dict(caught.value.trailing_metadata() or ())
            assert re.fullmatch(r"[0-9a-f]{32}", str(trailers["x-request-id"]))
    access = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [getattr(r, "code", None) for r in access] == ["INVALID_ARGUMENT"] * calls
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    # Only the access lines: what unauthenticated bytes add to the log is one line per call.
    assert len(caplog.records) == calls
    assert gateway.metrics_port
    text = await scrape(gateway.metrics_port)
    handled = sample(
        text, "grpc_server_handled_total", grpc_method="Detect", grpc_code="INVALID_ARGUMENT"
    )
    assert handled == calls
    assert sandbox.state.total() == 0


async def test_non_ascii_request_id_is_replaced_before_the_vendor_is_called(
    gateway: RunningGateway, sandbox: RunningSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    body = pb.DetectRequest(liveness_data=OK_DATA).SerializeToString()
    for given in ("café", "id\u00a0nbsp", "日本"):
        # gRPC's own clients refuse to send these: the raw HTTP/2 client does, as anyone can.
        answer = await asyncio.to_thread(
            unary_call, gateway.port, body, metadata=(("x-request-id", given),)
        )
        assert answer.header(b"grpc-status") == b"0", answer.headers
        assert pb.DetectResponse.FromString(bytes(answer.data[5:])).score == pytest.approx(0.2)
        echoed = answer.header(b"x-request-id")
        assert echoed is not None
        assert re.fullmatch(rb"[0-9a-f]{32}", echoed)
    assert sandbox.state.total() == 3  # once per call, and each call answered OK
    assert [getattr(r, "code", None) for r in caplog.records] == ["OK"] * 3
    answer = await asyncio.to_thread(
        unary_call, gateway.port, body, metadata=(("x-request-id", "abc-123 ok"),)
    )
    assert answer.header(b"x-request-id") == b"abc-123 ok"  # printable ASCII is kept


async def test_text_log_values_cannot_forge_fields(stub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    forged = 'fake caller=admin code=OK "x=1'
    await stub.Detect(pb.DetectRequest(liveness_data=OK_DATA), metadata=(("x-request-id", forged),))
    (record,) = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    line = TextFormatter().format(record)
    fields = re.findall(r'(?:^| )([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)', line.split(" rpc ", 1)[1])
    names = [name for name, _ in fields]
    assert names.count("caller") == 1, line
    assert names.count("code") == 1, line
    values = dict(fields)
    assert json.loads(values["request_id"]) == forged
    assert values["code"] == "OK"


async def test_certificate_identity_follows_rfc_6125(
    make_gateway, sandbox, pki, ca, tmp_path
) -> None:
    """DNS SANs identify; URI SANs only where a cert_names entry is a URI; the CN only when
    the certificate has no SAN; an e-mail SAN equal to a name never does."""
    callers = tmp_path / "cert-callers.toml"
    callers.write_text(
        '[[caller]]\nname = "kyc"\ncert_names = ["kyc.internal"]\nrpcs = ["*"]\n'
        '[[caller]]\nname = "mesh"\ncert_names = ["spiffe://corp/kyc"]\nrpcs = ["*"]\n'
    )
    gateway = await make_gateway(
        tls=TlsConfig(str(pki["cert"]), str(pki["key"]), str(pki["ca"])),
        callers_file=str(callers),
    )
    dns, uri, email = x509.DNSName, x509.UniformResourceIdentifier, x509.RFC822Name
    cases = [
        ("the CN beside a SAN", ca.issue("kyc.internal", sans=[dns("stranger.internal")]), False),
        ("an e-mail SAN", ca.issue("other", sans=[email("kyc.internal")]), False),
        ("a URI SAN equal to a DNS name", ca.issue("other", sans=[uri("kyc.internal")]), False),
        ("a DNS SAN like a URI entry", ca.issue("o", sans=[dns("spiffe://corp/kyc")]), False),
        ("a DNS SAN", ca.issue("other", sans=[dns("KYC.internal")]), True),
        ("the CN, no SAN at all", ca.issue("kyc.internal", sans=[]), True),
        ("a configured URI SAN", ca.issue("other", sans=[uri("spiffe://corp/kyc")]), True),
    ]  # fmt: skip
    for what, client, admitted in cases:
        async with secure_channel(gateway, ca.pem, client) as channel:
            if admitted:
                assert (await detect(channel)).score == pytest.approx(0.2), what
                continue
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await detect(channel)
            failure = failure_of(caught.value)
            assert (failure.code, failure.info.reason) == (C.UNAUTHENTICATED, "CALLER_UNKNOWN"), (
                what
            )
    assert sandbox.state.total() == 3


# --- the sandbox's url downloads (issue #17) ---------------------------------------------------


async def _sandbox_detect_url(sandbox: RunningSandbox, url: str) -> dict[str, Any]:
    """LinkFace detect on the sandbox with a url source, as the gateway sends it."""
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("api_id", sandbox.config.linkface.api_id)
    form.add_field("api_secret", sandbox.config.linkface.api_secret)
    form.add_field("liveness_data_url", url)
    async with (
        aiohttp.ClientSession() as session,
        session.post(sandbox.url + linkface.DETECT.path, data=form) as resp,
    ):
        reply: dict[str, Any] = await resp.json()
        return reply


@pytest.fixture
async def web_origin() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback HTTP server: /data answers a vector, /redirect points at /data, /missing is
    a 404. Returns its base url (127.0.0.1) and the paths it was asked for."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if request.path == "/data":
            return web.Response(body=OK_DATA)
        if request.path == "/redirect":
            raise web.HTTPFound(f"http://127.0.0.1:{request.url.port}/data")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_sandbox_follows_no_redirect_and_says_one_thing_for_every_failure(
    sandbox: RunningSandbox, web_origin: tuple[str, list[str]]
) -> None:
    origin, seen = web_origin
    assert (await _sandbox_detect_url(sandbox, f"{origin}/data"))["status"] == "OK"
    failures = [
        await _sandbox_detect_url(sandbox, url)
        for url in (
            f"{origin}/redirect",  # would lead to /data
            f"{origin}/missing",  # answered 404
            f"http://127.0.0.1:{_closed_port()}/x",  # nothing listens
        )
    ]
    assert [(f["status"], f.get("reason")) for f in failures] == [
        ("DOWNLOAD_ERROR", "download failed")
    ] * 3
    assert seen == ["/data", "/redirect", "/missing"]  # the redirect was not followed


async def test_sandbox_downloads_only_from_allowed_addresses(
    web_origin: tuple[str, list[str]],
) -> None:
    origin, seen = web_origin
    port = origin.rsplit(":", 1)[1]
    # Only 127.0.0.2 allowed: the origin on 127.0.0.1 (by address or by name) is refused
    # before a connection is made. Loopback only: nothing leaves the machine.
    only = SandboxConfig(
        Credentials.generate(),
        Credentials.generate(),
        download_allow=(ipaddress.ip_network("127.0.0.2/32"),),
    )
    restricted = await start_sandbox(only)
    try:
        for url in (f"{origin}/data", f"http://localhost:{port}/data"):
            reply = await _sandbox_detect_url(restricted, url)
            assert (reply["status"], reply["reason"]) == ("DOWNLOAD_ERROR", "download failed")
    finally:
        await restricted.stop()
    assert seen == []
    default = SandboxConfig(Credentials.generate(), Credentials.generate())
    assert {str(n) for n in default.download_allow} == {"127.0.0.0/8", "::1/128"}


def test_sandbox_download_allow_list_setting() -> None:
    from liveness_gateway import settings

    env = {"SANDBOX_DOWNLOAD_ALLOW": "198.51.100.0/24, ::1"}
    values = settings.resolve("sandbox", _parser().parse_args(["sandbox"]), env)
    assert [str(n) for n in values["sandbox.download_allow"]] == ["198.51.100.0/24", "::1/128"]
    for bad in ("", "example.com", "198.51.100.0/33"):
        with pytest.raises(ConfigError, match="SANDBOX_DOWNLOAD_ALLOW"):
            settings.resolve(
                "sandbox",
                _parser().parse_args(["sandbox"]),
                {**env, "SANDBOX_DOWNLOAD_ALLOW": bad} if bad else {"SANDBOX_DOWNLOAD_ALLOW": ",,"},
            )
    with pytest.raises(SystemExit):
        _parser().parse_args(["sandbox", "--download-allow", "example.com"])


async def _list_services(channel: grpc.aio.Channel, metadata: Any = ()) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(metadata=metadata, timeout=5)
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    await call.done_writing()
    reply = await call.read()
    return [s.name for s in reply.list_services_response.service]


async def test_reflection_answers_known_callers_only_when_authentication_is_on(
    make_gateway, tmp_path
) -> None:
    callers = str(_callers_file(tmp_path))
    gateway = await make_gateway(callers_file=callers)  # the default: callers
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _list_services(channel)
        failure = failure_of(caught.value)
        assert (failure.code, failure.info.reason) == (C.UNAUTHENTICATED, "CALLER_UNKNOWN")
        assert "liveness.v1.LivenessCheck" in await _list_services(channel, bearer(CHECKOUT_TOKEN))
    gateway = await make_gateway(callers_file=callers, reflection_callers_only=False)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        assert "liveness.v1.LivenessCheck" in await _list_services(channel)  # --reflection on
    gateway = await make_gateway()  # no authentication: open, as before
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        assert "liveness.v1.LivenessCheck" in await _list_services(channel)


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, (True, None)),
        (["--no-reflection"], {}, (False, None)),
        (["--reflection", "off"], {}, (False, None)),
        (["--reflection", "on"], {}, (True, False)),
        ([], {"LIVENESS_REFLECTION": "callers", "LIVENESS_CALLERS_FILE": "x"}, (True, True)),
    ],
)
def test_reflection_setting(argv: list[str], env: dict[str, str], expected: Any) -> None:
    config = _serve_config(argv, env)
    assert (config.reflection, config.reflection_callers_only) == expected


def test_reflection_callers_needs_a_callers_file_and_a_known_mode() -> None:
    for env in ({"LIVENESS_REFLECTION": "callers"}, {"LIVENESS_REFLECTION": "yes"}):
        with pytest.raises(ConfigError, match=r"(?i)reflection"):
            _serve_config([], env)


def test_no_url_allow_list_is_a_warning_outside_sandbox_mode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {f"{v}_API_{k}": "x" for v in ("LINKFACE", "ACCUAUTH") for k in ("ID", "SECRET")}
    _serve_config([], env, sandbox=False)
    assert any("no url allow-list" in r.getMessage() for r in caplog.records)
    caplog.clear()
    _serve_config([], {**env, "LIVENESS_URL_ALLOW_HOSTS": "cdn.example"}, sandbox=False)
    assert not any("allow-list" in r.getMessage() for r in caplog.records)
    caplog.clear()
    _serve_config([], {}, sandbox=True)
    assert not any("allow-list" in r.getMessage() for r in caplog.records)


def _serve_config(argv: list[str], env: dict[str, str], *, sandbox: bool = True) -> Any:
    from liveness_gateway import settings

    values = settings.resolve("serve", _parser().parse_args(["serve", *argv]), env)
    creds = {name: ("id", "secret") for name in ("linkface", "accuauth")}
    return settings.gateway_config(values, env, ("http://127.0.0.1:1", creds) if sandbox else None)


def _sandbox_config() -> SandboxConfig:
    return SandboxConfig(Credentials.generate(), Credentials.generate())


@pytest.mark.parametrize("method", ["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"])
async def test_malformed_requests_to_any_service_are_refused_without_a_traceback(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    """Health answers anyone: bytes it cannot parse must not put a traceback in the log."""
    caplog.set_level(logging.INFO)
    calls = 20
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        if method.endswith("Check"):
            raw: Any = channel.unary_unary(method)
        else:
            raw = channel.unary_stream(method)
        for _ in range(calls):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _finish(raw(b"\xff\xff\xff\xff", timeout=5))
            failure = failure_of(caught.value)
            assert (failure.code, failure.info.reason) == (C.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    access = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [getattr(r, "code", None) for r in access] == ["INVALID_ARGUMENT"] * calls
    assert len(caplog.records) == calls


async def _finish(call: Any) -> None:
    """Await a unary call, or read a server stream to its end."""
    if isinstance(call, grpc.aio.UnaryStreamCall):
        async for _ in call:
            pass
    else:
        await call
