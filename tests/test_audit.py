"""The decision audit trail on SQLite, in this process: records, queries, retention, refusal.

PostgreSQL, the journal and crashes: tests/test_audit_postgres.py and test_audit_system.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from liveness.audit.v1 import audit_pb2, audit_pb2_grpc
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway import settings
from liveness_gateway.audit import query
from liveness_gateway.audit.record import new_id
from liveness_gateway.audit.retention import Retention
from liveness_gateway.audit.store import Page
from liveness_gateway.auth import hash_token
from liveness_gateway.config import AuditConfig, ConfigError
from liveness_gateway.metrics import AuditMetrics
from liveness_gateway.server import RunningGateway
from prometheus_client import CollectorRegistry

from tests.audit_checks import (
    FILTER_CASES,
    PAYLOAD_MARK,
    all_records,
    check_every_field,
    payload,
    sample_record,
)
from tests.conftest import CHANNEL_OPTIONS, FileServer
from tests.status import failure_of

GatewayMaker = Callable[..., Awaitable[RunningGateway]]


def sqlite_audit(tmp_path: Path, **overrides: Any) -> AuditConfig:
    return AuditConfig(url=f"sqlite:{tmp_path / 'audit.db'}", **overrides)


async def test_every_field_of_every_outcome_on_sqlite(
    make_gateway: GatewayMaker, tmp_path: Path, file_server: FileServer
) -> None:
    gateway = await make_gateway(
        audit=sqlite_audit(tmp_path, record_refused=True),
        linkface_timeout_s=0.5,
        accuauth_timeout_s=0.5,
    )
    await check_every_field(gateway, file_server)
    assert gateway.audit is not None
    await gateway.stop(0)
    # No liveness byte anywhere in the file (nor in its WAL).
    for path in sorted(tmp_path.glob("audit.db*")):  # noqa: ASYNC240  (a test's small files)
        content = path.read_bytes()
        assert PAYLOAD_MARK not in content, path
        assert b"secret-query" not in content, path


async def test_refused_calls_are_not_recorded_by_default(
    make_gateway: GatewayMaker, tmp_path: Path
) -> None:
    gateway = await make_gateway(audit=sqlite_audit(tmp_path))
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Detect(pb.DetectRequest())
        await stub.Detect(pb.DetectRequest(liveness_data=payload("score=0.5")))
    records = await all_records(gateway)
    assert [(r.code, r.attempts) for r in records] == [("OK", 1)]


def _callers_file(tmp_path: Path) -> Path:
    path = tmp_path / "callers.toml"
    path.write_text(
        "[[caller]]\nname = 'checkout'\n"
        f"token_sha256 = '{hash_token('checkout-token')}'\nrpcs = ['*']\n"
        "[[caller]]\nname = 'auditor'\n"
        f"token_sha256 = '{hash_token('auditor-token')}'\nrpcs = ['audit']\n"
    )
    return path


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_audit_service_is_open_only_to_callers_granted_audit(
    make_gateway: GatewayMaker, tmp_path: Path
) -> None:
    gateway = await make_gateway(
        audit=sqlite_audit(tmp_path, record_refused=True),
        callers_file=str(_callers_file(tmp_path)),
    )
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        audit = audit_pb2_grpc.AuditLogStub(channel)
        await stub.Detect(
            pb.DetectRequest(liveness_data=payload("score=0.2")),
            metadata=_bearer("checkout-token"),
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Detect(pb.DetectRequest(liveness_data=payload("score=0.2")))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # "*" does not grant the audit log: it holds every caller's decisions.
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await audit.ListDecisions(
                audit_pb2.ListDecisionsRequest(), metadata=_bearer("checkout-token")
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await audit.ListDecisions(audit_pb2.ListDecisionsRequest())
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        page = await audit.ListDecisions(
            audit_pb2.ListDecisionsRequest(), metadata=_bearer("auditor-token")
        )
        # The auditor may not call the liveness RPCs either.
        with pytest.raises(grpc.aio.AioRpcError) as not_liveness:
            await stub.Detect(
                pb.DetectRequest(liveness_data=payload("score=0.2")),
                metadata=_bearer("auditor-token"),
            )
        assert not_liveness.value.code() == grpc.StatusCode.PERMISSION_DENIED
    by_code = {d.code: d for d in page.decisions}
    assert by_code["OK"].caller == "checkout"
    assert (by_code["UNAUTHENTICATED"].caller, by_code["UNAUTHENTICATED"].reason) == (
        "", "CALLER_UNKNOWN",
    )  # fmt: skip


async def test_list_decisions_pages_and_filters(make_gateway: GatewayMaker, tmp_path: Path) -> None:
    gateway = await make_gateway(audit=sqlite_audit(tmp_path))
    assert gateway.audit is not None
    records = [sample_record(i) for i in range(1, 61)]
    await gateway.audit.store.write(records)
    await gateway.audit.store.write(records[:5])  # again: kept once
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        audit = audit_pb2_grpc.AuditLogStub(channel)

        async def ids(filter_text: str = "", size: int = 7) -> list[str]:
            found: list[str] = []
            token = ""
            for _ in range(100):
                page = await audit.ListDecisions(
                    audit_pb2.ListDecisionsRequest(
                        page_size=size, page_token=token, filter=filter_text
                    )
                )
                assert len(page.decisions) <= size
                found += [d.id for d in page.decisions]
                token = page.next_page_token
                if not token:
                    return found
            raise AssertionError("pages never ended")

        newest_first = [r.id for r in sorted(records, key=lambda r: r.time_us, reverse=True)]
        assert await ids() == newest_first
        assert await ids(size=60) == newest_first
        expected = FILTER_CASES(records)
        for filter_text, wanted in expected.items():
            assert wanted, filter_text
            got = await ids(filter_text, size=4)
            assert got == [r.id for r in sorted(wanted, key=lambda r: r.time_us, reverse=True)], (
                filter_text
            )
        one = await audit.GetDecision(audit_pb2.GetDecisionRequest(id=records[0].id))
        assert one.decision.request_id == "req-1"
        assert one.decision.score == pytest.approx(0.01)
        assert one.decision.vendor_latency.ToMicroseconds() == 1000
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await audit.GetDecision(audit_pb2.GetDecisionRequest(id=new_id()))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert failure_of(missing.value).info.reason == "DECISION_NOT_FOUND"


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"filter": "color = red"}, "filter"),
        ({"filter": "caller > x"}, "filter"),
        ({"filter": "time >= yesterday"}, "filter"),
        ({"filter": 'time >= "2026-01-01T00:00:00"'}, "filter"),
        ({"filter": "caller = a OR caller = b"}, "filter"),
        ({"filter": "caller ="}, "filter"),
        ({"filter": "caller = 'x'"}, "filter"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"page_size": -1}, "page_size"),
    ],
)
async def test_bad_queries_are_invalid_argument_with_bad_request(
    make_gateway: GatewayMaker, tmp_path: Path, request_fields: dict[str, Any], field: str
) -> None:
    gateway = await make_gateway(audit=sqlite_audit(tmp_path))
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        audit = audit_pb2_grpc.AuditLogStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await audit.ListDecisions(audit_pb2.ListDecisionsRequest(**request_fields))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(bad.value)
    assert status is not None
    violations = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            violations += [v.field for v in request.field_violations]
    assert violations == [field]


async def test_a_page_token_is_bound_to_its_filter(
    make_gateway: GatewayMaker, tmp_path: Path
) -> None:
    gateway = await make_gateway(audit=sqlite_audit(tmp_path))
    assert gateway.audit is not None
    await gateway.audit.store.write([sample_record(i) for i in range(1, 10)])
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        audit = audit_pb2_grpc.AuditLogStub(channel)
        first = await audit.ListDecisions(audit_pb2.ListDecisionsRequest(page_size=2))
        assert first.next_page_token
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await audit.ListDecisions(
                audit_pb2.ListDecisionsRequest(
                    page_size=2, page_token=first.next_page_token, filter="caller = x"
                )
            )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_retention_purges_old_records_in_small_batches(tmp_path: Path) -> None:
    from liveness_gateway.audit.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "audit.db"))
    await store.open()
    try:
        old = [sample_record(i) for i in range(1, 26)]  # 2023
        now_s = 1_700_000_000 + 10 * 86_400
        fresh = [
            sample_record(i, id=new_id(now_s - i), time_us=(now_s - i) * 1_000_000)
            for i in range(5)
        ]
        await store.write(old + fresh)
        registry = CollectorRegistry()
        retention = Retention(store, 2.0, AuditMetrics(registry), batch=4)
        assert await retention.purge(now_s) == 25
        left = await store.list(Page((), 100))
        assert sorted(r.id for r in left) == sorted(r.id for r in fresh)
        assert registry.get_sample_value("liveness_gateway_audit_records_purged_total") == 25
        assert await retention.purge(now_s) == 0
    finally:
        await store.close()


async def test_the_schema_is_applied_once_and_indexed(tmp_path: Path) -> None:
    from liveness_gateway.audit.sqlite import SqliteStore

    path = tmp_path / "audit.db"
    first = SqliteStore(str(path))
    assert await first.open() == [1]
    await first.close()
    again = SqliteStore(str(path))
    assert await again.open() == []
    await again.close()
    with sqlite3.connect(path) as conn:
        indexes = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        plan = " ".join(
            str(row)
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM decisions WHERE vendor_request_id = 'x'"
            )
        )
    assert {"decisions_time", "decisions_caller_time", "decisions_vendor_request_id"} <= indexes
    assert "decisions_vendor_request_id" in plan


def test_migrate_subcommand_applies_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from liveness_gateway.cli import main

    url = f"sqlite:{tmp_path / 'audit.db'}"
    assert main(["migrate", "--audit-url", url], env={}) == 0
    assert "applied now: 0001" in capsys.readouterr().out
    assert main(["migrate"], env={"LIVENESS_AUDIT_URL": url}) == 0
    assert "none (up to date)" in capsys.readouterr().out
    assert main(["migrate"], env={}) == 2


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"LIVENESS_AUDIT_URL": "postgresql://u:pw@db/x"}, "must not hold the password"),
        ({"LIVENESS_AUDIT_URL": "mysql://db/x"}, "sqlite:PATH"),
        ({"LIVENESS_AUDIT_URL": "a.db", "LIVENESS_AUDIT_RETENTION_DAYS": "-1"}, "retention"),
        ({"LIVENESS_AUDIT_URL": "a.db", "LIVENESS_AUDIT_DURABILITY": "maybe"}, "strict"),
    ],
)
def test_audit_settings_are_checked(env: dict[str, str], problem: str) -> None:
    import argparse

    def configure() -> None:
        values = settings.resolve(settings.MIGRATE, argparse.Namespace(), env)
        settings.audit_config(values, env)

    with pytest.raises(ConfigError, match=problem):
        configure()


def test_audit_password_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    import argparse

    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    env = {
        "LIVENESS_AUDIT_URL": "postgresql://gw@db/audit",
        "LIVENESS_AUDIT_PASSWORD_FILE": str(secret),
    }
    values = settings.resolve(settings.MIGRATE, argparse.Namespace(), env)
    config = settings.audit_config(values, env)
    assert config is not None
    assert config.password == "s3cret"
    assert "s3cret" not in repr(config)


def test_filter_parser_reads_quotes_and_escapes() -> None:
    conditions = query.parse_filter('caller = "a \\"b\\"" AND time > 2026-01-01T00:00:00+02:00')
    assert conditions[0].value == 'a "b"'
    assert conditions[1].column == "time_us"
    assert conditions[1].value == 1767218400 * 1_000_000


async def test_audit_off_registers_no_audit_service(make_gateway: GatewayMaker) -> None:
    gateway = await make_gateway()
    assert gateway.audit is None
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await audit_pb2_grpc.AuditLogStub(channel).ListDecisions(
                audit_pb2.ListDecisionsRequest()
            )
    assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_async_durability_writes_in_the_background(
    make_gateway: GatewayMaker, tmp_path: Path
) -> None:
    gateway = await make_gateway(audit=sqlite_audit(tmp_path, durability="async"))
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        await asyncio.gather(
            *(
                stub.Detect(pb.DetectRequest(liveness_data=payload(f"score=0.{i}")))
                for i in range(10)
            )
        )
    for _ in range(50):
        if len(await all_records(gateway)) == 10:
            break
        await asyncio.sleep(0.05)
    assert len(await all_records(gateway)) == 10


def test_an_unreachable_database_without_a_journal_stops_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from liveness_gateway.cli import main

    url = f"postgresql://nobody@/audit?host={tmp_path}"  # no server on that socket
    code = main(
        ["serve", "--sandbox", "--port", "0", "--metrics-port", "0", "--audit-url", url], env={}
    )
    assert code == 1
    error = capsys.readouterr().err
    assert "audit postgresql store is unreachable" in error
    assert "Traceback" not in error


async def test_a_replayed_answer_is_recorded_with_no_attempt(
    make_gateway: GatewayMaker, tmp_path: Path
) -> None:
    gateway = await make_gateway(audit=sqlite_audit(tmp_path))
    key = "0b8f6c1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e"
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        request = pb.DetectRequest(liveness_data=payload("score=0.995"), request_id=key)
        first = await stub.Detect(request)
        again = await stub.Detect(request)
    assert again.vendor_request_id == first.vendor_request_id
    records = sorted(await all_records(gateway), key=lambda r: r.time_us)
    assert [(r.client_request_id, r.verdict, r.attempts) for r in records] == [
        (key, "hack", 1),
        (key, "hack", 0),
    ]
    assert records[0].vendor_request_id == records[1].vendor_request_id


async def test_a_dead_sqlite_writer_process_is_started_again(
    make_gateway: GatewayMaker, tmp_path: Path
) -> None:
    import os
    import signal

    from liveness_gateway.audit.sqlite import SqliteStore

    gateway = await make_gateway(audit=sqlite_audit(tmp_path, journal_dir=str(tmp_path / "j")))
    assert gateway.audit is not None
    store = gateway.audit.store
    assert isinstance(store, SqliteStore)
    sent: list[str] = []
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        for i in range(4):
            first = store.writer_pid
            assert first is not None
            if i == 1:
                os.kill(first, signal.SIGKILL)
            await stub.Detect(
                pb.DetectRequest(liveness_data=payload("score=0.5")),
                metadata=(("x-request-id", f"writer-{i}"),),
            )
            sent.append(f"writer-{i}")
            assert (store.writer_pid != first) == (i == 1)
    records = await all_records(gateway)
    assert sorted(r.request_id for r in records) == sent
    registry = gateway.metrics.registry
    assert registry.get_sample_value("liveness_gateway_audit_records_failed_total") == 0


async def test_a_call_cancelled_at_the_vendor_is_recorded_and_released(
    make_gateway: GatewayMaker, tmp_path: Path
) -> None:
    """The caller cancels while the vendor works: the handler is cancelled, the
    record says CANCELLED (the vendor was called), and the call is no longer counted as
    coming (a leak here would make strict batches wait for calls that never end)."""
    gateway = await make_gateway(audit=sqlite_audit(tmp_path))
    assert gateway.audit is not None
    writer = gateway.audit.trail.writer
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        call = stub.Detect(
            pb.DetectRequest(liveness_data=payload("score=0.5;delay_ms=1500")),
            metadata=(("x-request-id", "gave-up"),),
        )
        await asyncio.sleep(0.3)  # at the vendor by now
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        for _ in range(100):
            records = await all_records(gateway)
            if records:
                break
            await asyncio.sleep(0.02)
        await stub.Detect(pb.DetectRequest(liveness_data=payload("score=0.5")))
    assert writer.coming == 0
    records = sorted(await all_records(gateway), key=lambda r: r.time_us)
    first = records[0]
    assert (first.request_id, first.code, first.attempts) == ("gave-up", "CANCELLED", 1)
    assert (
        records[0].liveness_data_sha256
        == hashlib.sha256(payload("score=0.5;delay_ms=1500")).hexdigest()
    )
    assert [r.code for r in records[1:]] == ["OK"]


def _batches(gateway: RunningGateway) -> tuple[float, float]:
    registry = gateway.metrics.registry
    count = registry.get_sample_value("liveness_gateway_audit_batch_records_count") or 0.0
    total = registry.get_sample_value("liveness_gateway_audit_batch_records_sum") or 0.0
    return count, total


@pytest.mark.parametrize("window_ms", [100.0, 0.0])
async def test_strict_group_commit_waits_for_the_calls_under_way(
    make_gateway: GatewayMaker, tmp_path: Path, window_ms: float
) -> None:
    """A fast call while seven slow ones are at the vendor: with a window its commit waits
    for them up to the window (and the seven share a commit or two); with 0 it commits at
    once. A lone call never waits: nobody else is under way."""
    gateway = await make_gateway(audit=sqlite_audit(tmp_path, group_commit_ms=window_ms))
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)

        async def timed(directives: str) -> float:
            started = time.perf_counter()
            await stub.Detect(pb.DetectRequest(liveness_data=payload(directives)))
            return time.perf_counter() - started

        slow = [asyncio.create_task(timed(f"score=0.{i};delay_ms=1000")) for i in range(7)]
        await asyncio.sleep(0.2)  # the seven are at the vendor
        fast = await timed("score=0.5")
        await asyncio.gather(*slow)
        count, total = _batches(gateway)
        lone = min([await timed("score=0.5") for _ in range(3)])  # the best of three
    assert total == 8
    if window_ms:
        assert fast >= window_ms / 1000  # held for the window: the seven were under way
        assert count <= 3
    else:
        assert fast < 0.5  # committed at once, not after the seven
    assert _batches(gateway) == (count + 3, 11)
    assert lone < 0.1  # not held for the window: nobody else was under way


async def test_async_batches_gather_for_the_interval_under_load(tmp_path: Path) -> None:
    """Records arriving all the time (one every ~0.2 ms for ~0.3 s): async batches are one
    per interval (50 ms), not one per commit for what arrived during the previous one."""
    from liveness_gateway.audit.sqlite import SqliteStore
    from liveness_gateway.audit.writer import ASYNC_INTERVAL_S, AuditWriter

    registry = CollectorRegistry()
    store = SqliteStore(str(tmp_path / "audit.db"), synchronous="NORMAL")
    writer = AuditWriter(store, None, AuditMetrics(registry), strict=False)
    await writer.start()
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < 6 * ASYNC_INTERVAL_S:
        i += 1
        writer.submit(sample_record(i))
        await asyncio.sleep(0.0002)
    await writer.stop()
    batches = registry.get_sample_value("liveness_gateway_audit_batch_records_count")
    records = registry.get_sample_value("liveness_gateway_audit_batch_records_sum")
    assert records == i
    assert batches is not None
    assert batches <= 10, (batches, i)  # ~6; one per commit was ~30
