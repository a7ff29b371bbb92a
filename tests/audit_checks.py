"""Checks shared by the audit trail's tests on SQLite and on PostgreSQL: one gateway, calls of
each outcome class, and every field of every record they leave."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway import __version__
from liveness_gateway.audit.record import Decision, is_id, new_id
from liveness_gateway.audit.store import Page
from liveness_gateway.server import RunningGateway

from tests.conftest import CHANNEL_OPTIONS, FileServer

KYC_REQUEST_ID = "6f1c2a4e-8b3d-4e5f-9a7b-1c2d3e4f5a6b"
"""A caller's idempotency key (AIP-155: a UUID), recorded as client_request_id."""
PAYLOAD_MARK = b"biometric-payload-7f3a9c"
"""In every inline payload the tests send: a dump of the database must not contain it."""


def payload(directives: str, size: int = 2048) -> bytes:
    """A sandbox vector padded with recognisable bytes (never to be found in a database)."""
    head = f"SANDBOX:{directives}\n".encode()
    body = (PAYLOAD_MARK * (size // len(PAYLOAD_MARK) + 1))[: max(0, size - len(head))]
    return head + body


async def all_records(gateway: RunningGateway) -> list[Decision]:
    assert gateway.audit is not None
    return await gateway.audit.store.list(Page((), 10_000))


async def one_call(
    gateway: RunningGateway, call: Callable[[liveness_pb2_grpc.LivenessCheckStub], Awaitable[Any]]
) -> tuple[Any, Decision]:
    """Make one call; return its reply (or RpcError) and the one record it added."""
    before = {r.id for r in await all_records(gateway)}
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        try:
            reply: Any = await call(liveness_pb2_grpc.LivenessCheckStub(channel))
        except grpc.aio.AioRpcError as err:
            reply = err
    added: list[Decision] = []
    for _ in range(40):  # a caller's expired deadline may end the call before its record
        added = [r for r in await all_records(gateway) if r.id not in before]
        if added:
            break
        await asyncio.sleep(0.05)
    assert len(added) == 1, added
    return reply, added[0]


def common(record: Decision, reply: Any, rpc: str) -> None:
    """The fields every record has, whatever the outcome."""
    assert is_id(record.id)
    assert abs(record.time_us / 1e6 - time.time()) < 60
    metadata = dict(
        (reply.trailing_metadata() if isinstance(reply, grpc.aio.AioRpcError) else ()) or ()
    )
    if metadata:
        assert record.request_id == metadata["x-request-id"]
    assert len(record.request_id) >= 8
    assert record.rpc == rpc
    assert record.gateway_version == __version__
    assert record.host
    assert record.total_latency_us >= record.vendor_latency_us >= 0
    assert record.total_latency_us > 0


async def check_every_field(gateway: RunningGateway, files: FileServer) -> None:
    """Success of each RPC and source kind, and each failure class; every field."""
    data = payload("score=0.995")
    reply, rec = await one_call(
        gateway, lambda s: s.Detect(pb.DetectRequest(liveness_data=data, request_id=KYC_REQUEST_ID))
    )
    common(rec, reply, "Detect")
    assert (rec.caller, rec.vendor, rec.vendor_endpoint) == (
        "anonymous", "linkface", "liveness_hack_detect",
    )  # fmt: skip
    assert rec.client_request_id == KYC_REQUEST_ID
    assert rec.vendor_request_id == reply.vendor_request_id
    assert rec.liveness_data_id == reply.liveness_data_id != ""
    assert (rec.source, rec.liveness_data_sha256) == ("data", hashlib.sha256(data).hexdigest())
    assert rec.score == pytest.approx(0.995)
    assert rec.threshold == pytest.approx(0.98)
    assert (rec.verdict, rec.code, rec.reason, rec.attempts) == ("hack", "OK", "", 1)
    assert rec.vendor_latency_us > 0

    live = payload("score=0.1")
    reply, rec = await one_call(
        gateway, lambda s: s.AntiHack(pb.AntiHackRequest(liveness_data=live, return_image=True))
    )
    common(rec, reply, "AntiHack")
    assert (rec.vendor, rec.vendor_endpoint) == ("accuauth", "liveness_anti_hack")
    assert rec.vendor_request_id == reply.vendor_request_id != ""
    assert (rec.score, rec.verdict, rec.code) == (pytest.approx(0.1), "live", "OK")
    assert rec.liveness_data_sha256 == hashlib.sha256(live).hexdigest()
    assert rec.client_request_id == ""

    uploaded, rec = await one_call(
        gateway, lambda s: s.Upload(pb.UploadRequest(liveness_data=data))
    )
    common(rec, uploaded, "Upload")
    assert (rec.vendor_endpoint, rec.code, rec.verdict) == ("upload_liveness_data", "OK", "")
    assert (rec.score, rec.threshold) == (None, None)
    assert rec.liveness_data_id == uploaded.liveness_data_id != ""

    reply, rec = await one_call(
        gateway,
        lambda s: s.Detect(pb.DetectRequest(liveness_data_id=uploaded.liveness_data_id)),
    )
    assert (rec.source, rec.liveness_data_sha256) == ("id", "")
    assert rec.liveness_data_id == uploaded.liveness_data_id

    url = files.add("blob", payload("score=0.3")) + "?token=secret-query"
    reply, rec = await one_call(
        gateway, lambda s: s.Detect(pb.DetectRequest(liveness_data_url=url))
    )
    assert (rec.source, rec.liveness_data_sha256, rec.verdict) == ("url", "", "live")
    assert "secret-query" not in repr(rec)

    # The vendor refuses the data: its status, one attempt, its request id.
    err, rec = await one_call(
        gateway,
        lambda s: s.Detect(pb.DetectRequest(liveness_data=payload("status=NO_FACE_DETECTED"))),
    )
    common(rec, err, "Detect")
    assert (rec.code, rec.reason, rec.attempts) == (err.code().name, "NO_FACE_DETECTED", 1)
    assert rec.vendor_request_id != ""
    assert (rec.score, rec.verdict) == (None, "")

    # The vendor fails: retried, every attempt counted.
    err, rec = await one_call(
        gateway, lambda s: s.Detect(pb.DetectRequest(liveness_data=payload("http=503")))
    )
    assert (rec.code, rec.reason, rec.attempts) == ("UNAVAILABLE", "VENDOR_HTTP_ERROR", 3)

    # A reply the gateway cannot read.
    err, rec = await one_call(
        gateway, lambda s: s.AntiHack(pb.AntiHackRequest(liveness_data=payload("body=garbage")))
    )
    assert (rec.code, rec.reason) == ("UNAVAILABLE", "VENDOR_BAD_REPLY")
    assert rec.attempts >= 1

    # The vendor is too slow for the gateway's timeout (0.5 s in these tests).
    err, rec = await one_call(
        gateway, lambda s: s.Detect(pb.DetectRequest(liveness_data=payload("delay_ms=1500")))
    )
    assert (rec.code, rec.reason) == ("UNAVAILABLE", "VENDOR_TIMEOUT")
    assert rec.vendor_latency_us >= 400_000

    # The caller's own deadline runs out while the vendor works.
    err, rec = await one_call(
        gateway,
        lambda s: s.Detect(pb.DetectRequest(liveness_data=payload("delay_ms=1500")), timeout=0.3),
    )
    assert rec.code == "DEADLINE_EXCEEDED"
    assert rec.reason in ("DEADLINE_EXCEEDED", "VENDOR_TIMEOUT")

    # Refused before any vendor (recorded because the gateway records refused calls).
    err, rec = await one_call(gateway, lambda s: s.Detect(pb.DetectRequest()))
    common(rec, err, "Detect")
    assert (rec.code, rec.reason, rec.attempts) == ("INVALID_ARGUMENT", "INVALID_REQUEST", 0)
    assert (rec.vendor, rec.vendor_endpoint, rec.source) == ("", "", "")


def sample_record(i: int, **fields: Any) -> Decision:
    base: dict[str, Any] = {
        "id": new_id(1_700_000_000 + i),
        "time_us": (1_700_000_000 + i) * 1_000_000,
        "request_id": f"req-{i}",
        "client_request_id": f"client-{i}" if i % 2 else "",
        "caller": "checkout" if i % 3 else "payouts",
        "rpc": "Detect" if i % 2 else "AntiHack",
        "vendor": "linkface" if i % 2 else "accuauth",
        "vendor_endpoint": "liveness_hack_detect" if i % 2 else "liveness_anti_hack",
        "vendor_request_id": f"TID{i}",
        "liveness_data_id": "",
        "source": "data",
        "liveness_data_sha256": f"{i:064x}",
        "score": i / 100,
        "threshold": 0.98,
        "verdict": "hack" if i % 5 == 0 else "live",
        "code": "OK" if i % 7 else "UNAVAILABLE",
        "reason": "" if i % 7 else "VENDOR_TIMEOUT",
        "attempts": 1,
        "vendor_latency_us": 1000,
        "total_latency_us": 2000,
        "gateway_version": "test",
        "host": "h",
    }
    base.update(fields)
    return Decision(**base)


def FILTER_CASES(records: list[Decision]) -> dict[str, list[Decision]]:  # noqa: N802
    """A filter on each field over ``sample_record(1..60)``, and the records it must find."""
    return {
        "caller = payouts": [r for r in records if r.caller == "payouts"],
        "caller != payouts": [r for r in records if r.caller != "payouts"],
        "rpc = AntiHack": [r for r in records if r.rpc == "AntiHack"],
        "verdict = hack": [r for r in records if r.verdict == "hack"],
        "reason = VENDOR_TIMEOUT": [r for r in records if r.reason == "VENDOR_TIMEOUT"],
        "code = UNAVAILABLE": [r for r in records if r.code == "UNAVAILABLE"],
        "vendor = accuauth": [r for r in records if r.vendor == "accuauth"],
        "vendor_request_id = TID17": [records[16]],
        'request_id = "req-23"': [records[22]],
        "client_request_id = client-9": [records[8]],
        f"liveness_data_sha256 = {records[3].liveness_data_sha256}": [records[3]],
        'time >= "2023-11-14T22:13:40Z" AND time < "2023-11-14T22:13:50Z"': [
            r for r in records if 1_700_000_020 <= r.time_us // 1_000_000 < 1_700_000_030
        ],
        "caller = checkout AND verdict = hack AND rpc = Detect": [
            r for r in records
            if r.caller == "checkout" and r.verdict == "hack" and r.rpc == "Detect"
        ],
    }  # fmt: skip
