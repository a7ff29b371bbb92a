"""The shared conformance table (clients/conformance.json) against a live gateway.

Run by ``make test-clients-python`` under scripts/with-gateway.sh with the table's gateway_env
(``pytest -m conformance``); the plain run deselects it. The gateway is in LIVENESS_TARGET and
its sandbox in LIVENESS_SANDBOX_URL, where the vendor calls of each case are counted. Cases run
in order (later ones depend on the breaker state earlier ones leave), each with a new client
(retry throttling is per channel) with default settings. LIVENESS_CONFORMANCE_CLIENT says which
client: ``asyncio`` (the default) or ``blocking``; make runs the table once with each, each time
on a fresh gateway (the gateway's breaker remembers the failures of an earlier pass).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import urllib.request
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from liveness_client import DOMAIN, AsyncLivenessClient, LivenessClient, LivenessError, Reason
from liveness_client._proto.liveness.v1 import liveness_pb2 as pb
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.conformance

TABLE = json.loads((REPO_ROOT / "clients" / "conformance.json").read_text())
CASES: list[dict[str, Any]] = TABLE["cases"]
STATS_TIMEOUT_S = 5.0

REQUESTS: dict[str, type[Message]] = {
    "Upload": pb.UploadRequest,
    "Detect": pb.DetectRequest,
    "AntiHack": pb.AntiHackRequest,
}


def _live_gateway() -> tuple[str, str]:
    target, sandbox = os.environ.get("LIVENESS_TARGET"), os.environ.get("LIVENESS_SANDBOX_URL")
    if not target or not sandbox:
        pytest.fail(
            "LIVENESS_TARGET and LIVENESS_SANDBOX_URL are not set: run "
            "`make test-clients-python`, which starts the gateway with the table's gateway_env"
        )
    return target, sandbox


def _vendor_calls(sandbox: str) -> int:
    with urllib.request.urlopen(  # noqa: S310 - the loopback sandbox from with-gateway.sh
        f"{sandbox.rstrip('/')}/_sandbox/stats", timeout=STATS_TIMEOUT_S
    ) as reply:
        return int(json.load(reply)["total"])


def _request(rpc: str, fields: dict[str, Any]) -> Message:
    message = REQUESTS[rpc]()
    for name, value in fields.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        is_bytes = field.type == FieldDescriptor.TYPE_BYTES
        setattr(message, name, value.encode() if is_bytes else value)
    return message


async def _call_async(target: str, rpc: str, request: Any) -> Any:
    async with AsyncLivenessClient(target) as client:
        if rpc == "Upload":
            return await client.upload(request=request)
        if rpc == "Detect":
            return await client.detect(request=request)
        if rpc == "AntiHack":
            return await client.anti_hack(request=request)
    pytest.fail(f"unknown rpc {rpc!r} in the conformance table")


def _call_sync(target: str, rpc: str, request: Any) -> Any:
    with LivenessClient(target) as client:
        if rpc == "Upload":
            return client.upload(request=request)
        if rpc == "Detect":
            return client.detect(request=request)
        if rpc == "AntiHack":
            return client.anti_hack(request=request)
    pytest.fail(f"unknown rpc {rpc!r} in the conformance table")


KIND = os.environ.get("LIVENESS_CONFORMANCE_CLIENT", "asyncio")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
DATA_IDS: dict[str, str] = {}
"""Case name -> the liveness_data_id its result had (cases run in order)."""
IDS = [f"{KIND} {i:02d} {case['name']}" for i, case in enumerate(CASES)]


def test_the_table_is_run_under_its_gateway_env() -> None:
    _live_gateway()
    assert CASES
    for name, value in TABLE["gateway_env"].items():
        assert os.environ.get(name) == value, f"the gateway must run with {name}={value}"


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{KIND} {i:02d} {c['name']}" for i, c in enumerate(CASES)]
)
async def test_case(case: dict[str, Any]) -> None:
    target, sandbox = _live_gateway()
    request = _request(case["rpc"], case["request"])
    result: Any = None
    error: LivenessError | None = None
    before = _vendor_calls(sandbox)
    start = time.monotonic()
    try:
        if KIND == "asyncio":
            result = await _call_async(target, case["rpc"], request)
        elif KIND == "blocking":  # in a thread, as an application's worker would call it
            result = await asyncio.to_thread(_call_sync, target, case["rpc"], request)
        else:
            pytest.fail(f"LIVENESS_CONFORMANCE_CLIENT={KIND!r}: want asyncio or blocking")
    except LivenessError as e:
        error = e
    elapsed = time.monotonic() - start
    calls = _vendor_calls(sandbox) - before

    if case["code"] == "OK":
        assert error is None, f"{error!r}, want OK"
        if "score" in case:
            assert result.score == pytest.approx(case["score"])
        request_id, key = result.request_id, result.idempotency_key
        DATA_IDS[case["name"]] = getattr(result, "liveness_data_id", "")
    else:
        assert error is not None, f"succeeded, want {case['code']} {case['reason']}"
        assert error.grpc_code is grpc.StatusCode[case["code"]], repr(error)
        assert error.reason is Reason[case["reason"]], repr(error)
        assert error.domain == DOMAIN
        request_id, key = error.request_id, error.idempotency_key
    # The idempotency key: the request's own, or one the client made for an upload.
    if given := case["request"].get("request_id"):
        assert key == given
    elif case["rpc"] == "Upload":
        assert UUID4.fullmatch(key), key
    else:
        assert key == ""
    if earlier := case.get("same_liveness_data_id_as"):
        assert DATA_IDS.get(earlier), f"no liveness_data_id from case {earlier!r}"
        assert DATA_IDS[case["name"]] == DATA_IDS[earlier]
    # The client's fresh id (32 hex digits), as the gateway's trailers returned it.
    assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
    assert calls == case["vendor_calls"], f"{calls} vendor calls, want {case['vendor_calls']}"
    assert elapsed >= case["min_elapsed_s"], f"took {elapsed:.3f}s"
