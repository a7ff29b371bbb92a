"""TLS, mTLS, bearer tokens and health states, against small real gRPC servers on loopback.

The gateway itself serves plaintext and takes no tokens (a mesh or proxy does that in front of
it), so these run against a server built from the client's own generated servicer. The test
PKI is made per session with the openssl command line.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from liveness_client import LivenessClient, TLSConfig, Unauthenticated, Unavailable, Verdict
from liveness_client._proto.liveness.v1 import liveness_pb2 as pb
from liveness_client._proto.liveness.v1 import liveness_pb2_grpc
from tests.test_cli import livenessctl

OPENSSL_TIMEOUT_S = 30.0
TOKEN = "t0ken"


@dataclass(frozen=True)
class PKI:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None, "the TLS tests need the openssl command line"
    subprocess.run(
        [openssl, *map(str, args)],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=OPENSSL_TIMEOUT_S,
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=liveness test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=d)  # fmt: skip
    return PKI(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")


class TokenServicer(liveness_pb2_grpc.LivenessCheckServicer):
    """Answers Detect only with the right bearer token, as an authenticating proxy would."""

    def Detect(self, request: pb.DetectRequest, context: Any) -> pb.DetectResponse:
        if dict(context.invocation_metadata()).get("authorization") != f"Bearer {TOKEN}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        return pb.DetectResponse(score=0.25, verdict=pb.VERDICT_LIVE, threshold=0.98)

    def Upload(self, request: pb.UploadRequest, context: Any) -> pb.UploadResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this test")
        raise AssertionError("unreachable")

    def AntiHack(self, request: pb.AntiHackRequest, context: Any) -> pb.AntiHackResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this test")
        raise AssertionError("unreachable")


@dataclass
class Server:
    target: str
    health: health.HealthServicer


def _serve(credentials: grpc.ServerCredentials | None) -> Iterator[Server]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    liveness_pb2_grpc.add_LivenessCheckServicer_to_server(TokenServicer(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = (
        server.add_secure_port("127.0.0.1:0", credentials)
        if credentials is not None
        else server.add_insecure_port("127.0.0.1:0")
    )
    server.start()
    try:
        yield Server(f"127.0.0.1:{port}", health_servicer)
    finally:
        server.stop(0).wait(timeout=10)


@pytest.fixture
def mtls_server(pki: PKI) -> Iterator[Server]:
    credentials = grpc.ssl_server_credentials(
        [(pki.server_key.read_bytes(), pki.server_cert.read_bytes())],
        root_certificates=pki.ca.read_bytes(),
        require_client_auth=True,
    )
    yield from _serve(credentials)


@pytest.fixture
def plain_server() -> Iterator[Server]:
    yield from _serve(None)


def test_mtls(mtls_server: Server, pki: PKI) -> None:
    tls = TLSConfig.from_files(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    with LivenessClient(mtls_server.target, tls=tls, auth_token=TOKEN) as client:
        assert client.detect(data=b"x").verdict is Verdict.LIVE
        assert client.health() == "SERVING"


def test_mtls_without_a_client_certificate_fails(mtls_server: Server, pki: PKI) -> None:
    with (
        LivenessClient(mtls_server.target, tls=TLSConfig.from_files(ca=pki.ca), timeout=5) as c,
        pytest.raises(Unavailable),
    ):
        c.health()


def test_plaintext_client_cannot_talk_to_a_tls_server(mtls_server: Server) -> None:
    with LivenessClient(mtls_server.target, timeout=5) as client, pytest.raises(Unavailable):
        client.health()


def test_tls_config_needs_cert_and_key_together(pki: PKI) -> None:
    with pytest.raises(ValueError, match="both"):
        TLSConfig.from_files(ca=pki.ca, cert=pki.client_cert)


def test_cli_mtls(mtls_server: Server, pki: PKI) -> None:
    tls = ("--ca", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key)
    run = livenessctl("health", *tls, target=mtls_server.target)
    assert (run.code, run.stdout) == (0, "SERVING\n"), run.stderr


def test_bearer_token(plain_server: Server, tmp_path: Path) -> None:
    with LivenessClient(plain_server.target, auth_token=TOKEN) as client:
        assert client.detect(data=b"x").score == 0.25
    with LivenessClient(plain_server.target) as client, pytest.raises(Unauthenticated):
        client.detect(data=b"x")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    run = livenessctl("detect", "--id", "x", "--token-file", token_file, target=plain_server.target)
    assert run.code == 0, run.stderr
    run = livenessctl("detect", "--id", "x", target=plain_server.target)
    assert run.code == 9
    assert run.stderr.startswith("livenessctl: error: UNAUTHENTICATED")


def test_health_not_serving_exit_code(plain_server: Server) -> None:
    plain_server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    run = livenessctl("health", target=plain_server.target)
    assert (run.code, run.stdout) == (10, "NOT_SERVING\n")
    with LivenessClient(plain_server.target) as client:
        assert client.health() == "NOT_SERVING"
