"""Connections that rebalance: a connection past --max-connection-age gets a GOAWAY, the call
on it still completes, and the client's next call goes out on a new connection.

Seen on the wire: the client reaches the gateway process through a loopback TCP relay that
reads the HTTP/2 frames the gateway sends (plaintext h2c), so the GOAWAY, and the call's
response after it, are frames a test can point at, not inferred from channel states.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

import grpc
from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc
from liveness_gateway.server import ConnectionPolicy, server_options

from tests.conftest import CHANNEL_OPTIONS
from tests.processes import Processes

GOAWAY, HEADERS = 0x7, 0x1
END_STREAM = 0x1
NO_ERROR = 0


@dataclass
class Frame:
    type: int
    flags: int
    stream: int
    payload: bytes


@dataclass
class Relay:
    """Relays loopback TCP connections to ``port``, keeping every frame the server sent on
    each (in order)."""

    port: int
    connections: list[list[Frame]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames: list[Frame] = []
        self.connections.append(frames)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        down = asyncio.ensure_future(_pipe(reader, up_writer))
        try:
            buffer = b""
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
                buffer += chunk
                while len(buffer) >= 9:
                    length = int.from_bytes(buffer[:3], "big")
                    if len(buffer) < 9 + length:
                        break
                    stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                    frames.append(Frame(buffer[3], buffer[4], stream, buffer[9 : 9 + length]))
                    buffer = buffer[9 + length :]
        except ConnectionError:
            pass
        finally:
            down.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await down
            writer.close()
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.close()


def goaway(frame: Frame) -> tuple[int, int]:
    """(last stream id, error code) of a GOAWAY frame."""
    last, code = struct.unpack(">II", frame.payload[:8])
    return last & 0x7FFFFFFF, code


async def test_an_old_connection_gets_goaway_its_call_completes_and_the_next_call_reconnects(
    processes: Processes,
) -> None:
    gateway = processes.gateway("--max-connection-age", "1", "--max-connection-age-grace", "10")
    relay = Relay(gateway.port)
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    relay_port = server.sockets[0].getsockname()[1]
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{relay_port}", options=CHANNEL_OPTIONS
        ) as channel:
            stub = liveness_pb2_grpc.LivenessCheckStub(channel)
            # 2.5 s at the vendor: the connection passes its age (1 s +/-10%) during the call
            slow = await stub.Detect(
                pb.DetectRequest(liveness_data=b"SANDBOX:score=0.2;delay_ms=2500"), timeout=20
            )
            assert slow.verdict == pb.VERDICT_LIVE
            after = await stub.Detect(
                pb.DetectRequest(liveness_data=b"SANDBOX:score=0.2"), timeout=20
            )
            assert after.verdict == pb.VERDICT_LIVE
    finally:
        server.close()
        await server.wait_closed()
    assert len(relay.connections) >= 2, "the second call went out on a new connection"
    first = relay.connections[0]
    goaways = [i for i, f in enumerate(first) if f.type == GOAWAY]
    assert goaways, "the old connection got a GOAWAY"
    assert {goaway(first[i])[1] for i in goaways} == {NO_ERROR}
    # gRPC announces the drain with a GOAWAY naming the largest stream id, then sends one
    # naming the last stream it took: the slow call's, which then completes on this connection.
    slow_stream = max(f.stream for f in first if f.type == HEADERS)
    assert goaway(first[goaways[-1]])[0] >= slow_stream
    trailers = [
        i
        for i, f in enumerate(first)
        if f.type == HEADERS and f.stream == slow_stream and f.flags & END_STREAM
    ]
    assert trailers
    assert trailers[-1] > goaways[0], "the call's response came after the GOAWAY"
    second = relay.connections[-1]
    assert any(f.type == HEADERS and f.flags & END_STREAM for f in second), (
        "the next call was answered on the new connection"
    )
    assert not any(f.type == GOAWAY for f in second)


def test_the_keepalive_policy_is_set_and_the_age_can_be_turned_off() -> None:
    options = dict(
        server_options(
            connections=ConnectionPolicy(
                max_age_s=300, grace_s=30, min_ping_interval_s=300, permit_pings_without_calls=False
            )
        )
    )
    assert options["grpc.max_connection_age_ms"] == 300_000
    assert options["grpc.max_connection_age_grace_ms"] == 30_000
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 300_000
    assert options["grpc.keepalive_permit_without_calls"] == 0
    never = dict(server_options(connections=ConnectionPolicy(max_age_s=None)))
    assert "grpc.max_connection_age_ms" not in never


ENHANCE_YOUR_CALM = 0xB


async def test_a_client_pinging_an_idle_connection_is_refused_with_enhance_your_calm(
    processes: Processes,
) -> None:
    """The keepalive policy is enforced: the shipped clients send no pings, so pings on an
    idle connection (none allowed by default) earn strikes, and two close the connection."""
    gateway = processes.gateway()
    relay = Relay(gateway.port)
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    relay_port = server.sockets[0].getsockname()[1]
    pinging = [
        *CHANNEL_OPTIONS,
        ("grpc.keepalive_time_ms", 1000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{relay_port}", options=pinging) as ch:
            stub = liveness_pb2_grpc.LivenessCheckStub(ch)
            await stub.Detect(pb.DetectRequest(liveness_data=b"SANDBOX:score=0.2"), timeout=20)
            for _ in range(100):  # bounded: 10 s for two strikes of 1 s pings
                if any(f.type == GOAWAY for f in relay.connections[0]):
                    break
                await asyncio.sleep(0.1)
    finally:
        server.close()
        await server.wait_closed()
    codes = {goaway(f)[1] for f in relay.connections[0] if f.type == GOAWAY}
    assert codes == {ENHANCE_YOUR_CALM}
