"""The audit trail from outside: ``kill -9`` of a gateway process under load in strict mode
(every OK answer a client received has its record), and ListDecisions through grpcurl."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.config import AuditConfig
from liveness_gateway.server import RunningGateway

from tests import tools
from tests.audit_checks import FILTER_CASES, payload, sample_record
from tests.conftest import CHANNEL_OPTIONS
from tests.metrics_text import sample, scrape
from tests.postgres import Postgres
from tests.processes import Processes

_CLIENTS = 12
"""Concurrent callers (over two connections: each allows 16 streams)."""
_KILL_AFTER = 150
"""OK answers before the kill: the gateway is busy committing when it dies."""


async def _load_then_kill(address: str, kill: Callable[[], None]) -> list[str]:
    """Call Detect from several clients until ``_KILL_AFTER`` answers, kill the gateway while
    calls are in flight, and return the x-request-id of every OK answer received."""
    answered: list[str] = []
    killed = asyncio.Event()
    options = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]  # two connections
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(2)]
    for channel in channels:  # warm: the server's stream limit is known before the burst
        await liveness_pb2_grpc.LivenessCheckStub(channel).Detect(
            pb.DetectRequest(liveness_data=payload("score=0.5", 512)), timeout=10
        )

    async def client(index: int) -> None:
        stub = liveness_pb2_grpc.LivenessCheckStub(channels[index % 2])
        for _ in range(10_000):
            request_id = f"load-{index}-{secrets.token_hex(6)}"
            try:
                await stub.Detect(
                    pb.DetectRequest(liveness_data=payload("score=0.5", 512)),
                    metadata=(("x-request-id", request_id),),
                    timeout=10,
                )
            except grpc.aio.AioRpcError:
                if killed.is_set():
                    return
                raise
            answered.append(request_id)
            if len(answered) >= _KILL_AFTER and not killed.is_set():
                killed.set()
                kill()

    try:
        await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(_CLIENTS))), 120)
    finally:
        for channel in channels:
            await channel.close()
    assert killed.is_set()
    return answered


async def test_kill_9_under_load_keeps_every_answered_record_sqlite(
    processes: Processes, tmp_path: Path
) -> None:
    db = tmp_path / "audit.db"
    gateway = processes.gateway("--audit-url", f"sqlite:{db}", "--audit-durability", "strict")
    answered = await _load_then_kill(gateway.address, gateway.proc.kill)
    assert gateway.proc.wait(timeout=10) == -9
    with sqlite3.connect(db) as conn:  # opening it recovers the WAL, as a restart would
        kept = {row[0] for row in conn.execute("SELECT request_id FROM decisions")}
    assert len(answered) >= _KILL_AFTER
    missing = set(answered) - kept
    assert not missing, f"{len(missing)} answered calls have no record"


async def test_kill_9_under_load_keeps_every_answered_record_postgresql(
    processes: Processes, postgres: Postgres
) -> None:
    gateway = processes.gateway("--audit-url", postgres.url(), "--audit-durability", "strict")
    answered = await _load_then_kill(gateway.address, gateway.proc.kill)
    assert gateway.proc.wait(timeout=10) == -9
    conn = await asyncpg.connect(postgres.url())
    try:
        kept = {row[0] for row in await conn.fetch("SELECT request_id FROM decisions")}
    finally:
        await conn.close()
    missing = set(answered) - kept
    assert not missing, f"{len(missing)} answered calls have no record"


async def _grpcurl(grpcurl: str, address: str, method: str, body: dict[str, Any]) -> Any:
    proc = await asyncio.create_subprocess_exec(
        grpcurl, "-plaintext", "-d", json.dumps(body), address,
        f"liveness.audit.v1.AuditLog/{method}",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


async def test_list_decisions_pages_and_filters_through_grpcurl(
    make_gateway: Callable[..., Awaitable[RunningGateway]],
    tool: Callable[[str], str],
    tmp_path: Path,
) -> None:
    grpcurl = tool("grpcurl")
    gateway = await make_gateway(audit=AuditConfig(url=str(tmp_path / "audit.db")))
    assert gateway.audit is not None
    records = [sample_record(i) for i in range(1, 61)]
    await gateway.audit.store.write(records)

    async def page_through(filter_text: str, size: int) -> list[str]:
        found: list[str] = []
        token = ""
        for _ in range(100):
            code, out, err = await _grpcurl(
                grpcurl,
                gateway.address,
                "ListDecisions",
                {"page_size": size, "page_token": token, "filter": filter_text},
            )
            assert code == 0, err
            page = json.loads(out)
            found += [d["id"] for d in page.get("decisions", [])]
            token = page.get("next_page_token", "")
            if not token:
                return found
        raise AssertionError("pages never ended")

    newest_first = sorted(records, key=lambda r: r.time_us, reverse=True)
    assert await page_through("", 9) == [r.id for r in newest_first]
    for filter_text, wanted in FILTER_CASES(records).items():
        expected = [r.id for r in sorted(wanted, key=lambda r: r.time_us, reverse=True)]
        assert await page_through(filter_text, 5) == expected, filter_text

    code, out, _ = await _grpcurl(grpcurl, gateway.address, "GetDecision", {"id": records[9].id})
    assert code == 0
    decision = json.loads(out)["decision"]
    assert decision["request_id"] == "req-10"
    assert decision["decide_time"] == "2023-11-14T22:13:30Z"
    code, _, err = await _grpcurl(grpcurl, gateway.address, "ListDecisions", {"filter": "x = 1"})
    assert code != 0
    assert "InvalidArgument" in err


async def test_audit_metrics_are_exported_and_pass_promtool(
    make_gateway: Callable[..., Awaitable[RunningGateway]],
    tool: Callable[[str], str],
    tmp_path: Path,
) -> None:
    gateway = await make_gateway(audit=AuditConfig(url=str(tmp_path / "audit.db")))
    assert gateway.metrics_port
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
        stub = liveness_pb2_grpc.LivenessCheckStub(channel)
        for _ in range(3):
            await stub.Detect(pb.DetectRequest(liveness_data=payload("score=0.5")))
    text = await scrape(gateway.metrics_port)
    result = await tools.promtool_check_metrics(tool("promtool"), text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sample(text, "liveness_gateway_audit_records_written_total", target="database") == 3
    assert sample(text, "liveness_gateway_audit_records_written_total", target="journal") == 0
    assert sample(text, "liveness_gateway_audit_batch_records_count") >= 1
    assert sample(text, "liveness_gateway_audit_write_seconds_count", target="database") >= 1
    assert sample(text, "liveness_gateway_audit_database_up") == 1
    assert sample(text, "liveness_gateway_audit_journal_records") == 0
    assert sample(text, "liveness_gateway_audit_records_failed_total") == 0
    assert sample(text, "liveness_gateway_audit_records_replayed_total") == 0
    # The AuditLog service has its server metrics, like every other service.
    assert 'grpc_method="ListDecisions"' in text


async def test_two_workers_share_one_sqlite_file(processes: Processes, tmp_path: Path) -> None:
    db = tmp_path / "data" / "audit.db"
    gateway = processes.gateway(
        "--workers", "2", "--audit-url", f"sqlite:{db}",
        "--audit-journal-dir", str(tmp_path / "data" / "journal"),
    )  # fmt: skip
    sent = []
    for i in range(6):  # a fresh channel per call: connections spread over the workers
        async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
            request_id = f"workers-{i}"
            await liveness_pb2_grpc.LivenessCheckStub(channel).Detect(
                pb.DetectRequest(liveness_data=payload("score=0.5")),
                metadata=(("x-request-id", request_id),),
            )
            sent.append(request_id)
    gateway.terminate()
    assert gateway.wait() == 0, gateway.log()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT request_id, host FROM decisions").fetchall()
    assert sorted(r[0] for r in rows) == sorted(sent), gateway.log()
    # Each worker's journal file is removed on a clean stop (nothing waited in it).
    assert not list((tmp_path / "data" / "journal").iterdir())
