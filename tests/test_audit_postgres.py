"""The decision audit trail on a real PostgreSQL (tests/postgres.py starts one per test):
every field, a dump searched for the liveness bytes, and an outage that fills the journal."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.audit.store import Page
from liveness_gateway.config import AuditConfig
from liveness_gateway.sandbox import RunningSandbox
from liveness_gateway.server import RunningGateway

from tests.audit_checks import PAYLOAD_MARK, check_every_field, payload, sample_record
from tests.conftest import CHANNEL_OPTIONS, FileServer
from tests.postgres import Postgres

GatewayMaker = Callable[..., Awaitable[RunningGateway]]


async def test_every_field_of_every_outcome_on_postgresql(
    make_gateway: GatewayMaker, postgres: Postgres, file_server: FileServer
) -> None:
    gateway = await make_gateway(
        audit=AuditConfig(url=postgres.url(), record_refused=True),
        linkface_timeout_s=0.5,
        accuauth_timeout_s=0.5,
    )
    await check_every_field(gateway, file_server)
    dump = await asyncio.to_thread(postgres.dump)
    assert b"liveness_hack_detect" in dump  # the records are in it
    assert PAYLOAD_MARK not in dump
    assert b"secret-query" not in dump
    assert b"SANDBOX:" not in dump


async def _counts(postgres: Postgres) -> dict[str, int]:
    conn = await asyncpg.connect(postgres.url())
    try:
        rows = await conn.fetch("SELECT request_id, count(*) AS n FROM decisions GROUP BY 1")
    finally:
        await conn.close()
    return {row["request_id"]: row["n"] for row in rows}


async def test_outage_fills_the_journal_then_every_record_is_kept_exactly_once(
    make_gateway: GatewayMaker, postgres: Postgres, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    config = AuditConfig(url=postgres.url(), journal_dir=str(journal), journal_max_bytes=64 * 1024)
    gateway = await make_gateway(audit=config)
    assert gateway.audit is not None
    writer = gateway.audit.trail.writer
    answered: list[str] = []
    refused = 0
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)

        async def call() -> grpc.aio.AioRpcError | None:
            request_id = f"outage-{secrets.token_hex(6)}"
            try:
                await stub.Detect(
                    pb.DetectRequest(liveness_data=payload("score=0.4")),
                    metadata=(("x-request-id", request_id),),
                )
            except grpc.aio.AioRpcError as err:
                return err
            answered.append(request_id)
            return None

        for _ in range(5):
            assert await call() is None
        await asyncio.to_thread(postgres.stop)  # the database goes away mid-run
        failure = None
        for _ in range(1000):
            failure = await call()
            if failure is not None:
                break
        assert failure is not None, "the journal never filled"
        assert failure.code() == grpc.StatusCode.UNAVAILABLE
        status = rpc_status.from_call(failure)
        assert status is not None
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        assert info.reason == "AUDIT_UNAVAILABLE"
        # Refused before the vendor was called: the vendor saw only the answered calls.
        assert sandbox.state.total() == len(answered)
        for _ in range(3):
            again = await call()
            assert again is not None
            refused += 1
        assert sandbox.state.total() == len(answered)
        journaled = len(answered) - 5
        assert journaled > 20
        assert writer.journal is not None
        assert writer.journal.records == journaled
        saved = tmp_path / "journal-copy"
        shutil.copytree(journal, saved)

        await asyncio.to_thread(postgres.start)
        for _ in range(100):  # the writer tries the database every second
            if not writer.degraded:
                break
            await asyncio.sleep(0.1)
        assert not writer.degraded
        assert writer.journal.records == 0
        assert await call() is None  # straight to the database again

    counts = await _counts(postgres)
    assert set(answered) <= set(counts)
    assert all(counts[r] == 1 for r in answered)
    assert len(counts) == len(answered)
    registry = gateway.metrics.registry
    assert registry.get_sample_value("liveness_gateway_audit_records_replayed_total") == journaled
    assert (
        registry.get_sample_value(
            "liveness_gateway_audit_records_written_total", {"target": "journal"}
        )
        == journaled
    )
    assert registry.get_sample_value("liveness_gateway_audit_journal_records") == 0
    assert refused == 3

    # The same journal replayed again (as after a crash between the replay and its clearing):
    # a new gateway replays a dead process' file at start, and nothing is kept twice.
    for path in saved.iterdir():
        shutil.copy(path, journal / path.name.replace("journal-", "journal-0-"))
    second = await make_gateway(audit=config)
    assert not [p for p in journal.iterdir() if "journal-0-" in p.name]
    assert (
        second.metrics.registry.get_sample_value("liveness_gateway_audit_records_replayed_total")
        == journaled
    )
    assert await _counts(postgres) == counts


@pytest.mark.parametrize(("durability", "setting"), [("async", "off"), ("strict", "on")])
async def test_each_pooled_connection_keeps_its_commit_setting(
    postgres: Postgres, durability: str, setting: str
) -> None:
    """asyncpg's default reset between uses (RESET ALL among others) would turn async
    durability back into synchronous commits after the first batch."""
    from liveness_gateway.audit import open_store
    from liveness_gateway.audit.postgres import PostgresStore

    store = open_store(AuditConfig(url=postgres.url(), durability=durability))
    assert isinstance(store, PostgresStore)
    await store.open()
    try:
        for i in range(1, 6):
            await store.write([sample_record(i)])
        seen = await asyncio.gather(
            *(store._with(lambda c: c.fetchval("SHOW synchronous_commit")) for _ in range(8))
        )
        assert set(seen) == {setting}
        assert len(await store.list(Page(conditions=(), limit=10))) == 5
    finally:
        await store.close()
