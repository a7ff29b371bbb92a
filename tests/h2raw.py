"""A hand-driven HTTP/2 client (h2 over a plain or TLS socket) for attacks a gRPC library
would never send: gRPC messages announced and left unfinished, streams past the server's
limit, malformed length prefixes. Blocking sockets: it talks to a gateway in another process
or thread, on loopback only."""

from __future__ import annotations

import select
import socket
import ssl
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

DETECT_PATH = "/liveness.v1.LivenessCheck/Detect"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def grpc_prefix(length: int, *, compressed: bool = False) -> bytes:
    """The 5-byte gRPC message header: a compressed flag and a big-endian length."""
    return struct.pack(">BI", int(compressed), length)


@dataclass
class StreamState:
    to_send: int = 0
    sent: int = 0
    reset: bool = False
    ended: bool = False
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class RawConnection:
    """One HTTP/2 connection to a gRPC server, driven frame by frame."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        authority: str = "gateway.test",
    ) -> None:
        if host not in _LOOPBACK:
            raise ValueError("the raw client talks to loopback only")
        raw = socket.create_connection((host, port), timeout=5)
        self.sock: socket.socket = (
            tls.wrap_socket(raw, server_hostname=server_hostname or host) if tls else raw
        )
        self.sock.setblocking(False)
        self._authority = authority
        self._scheme = "https" if tls else "http"
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        self.streams: dict[int, StreamState] = {}
        self.terminated = False
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, ssl.SSLWantWriteError):
                # Not a read here: reading flushes, and would interleave two writes.
                select.select([], [self.sock], [], 0.05)
                continue
            except OSError:
                self.terminated = True
                return
            view = view[sent:]

    def open(self, path: str = DETECT_PATH, metadata: Sequence[tuple[str, str]] = ()) -> int:
        """HEADERS for a gRPC call on a new stream; returns its id."""
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", self._scheme),
            (":path", path),
            (":authority", self._authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            *metadata,
        ]
        self.conn.send_headers(stream_id, headers)
        self.streams[stream_id] = StreamState()
        return stream_id

    def send(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        """Bytes on a stream now (they must fit the flow-control window)."""
        self.conn.send_data(stream_id, data, end_stream=end)

    def queue(self, stream_id: int, count: int) -> None:
        """``count`` zero bytes to send on the stream as the window allows (see :meth:`pump`)."""
        self.streams[stream_id].to_send += count

    def pump(self, timeout_s: float) -> None:
        """Send queued bytes as windows open and read what the server says, until every queue
        is empty (or its stream reset) or the time is up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.terminated:
            progressed = False
            for stream_id, state in self.streams.items():
                left = state.to_send - state.sent
                if left <= 0 or state.reset or state.ended:
                    continue
                try:
                    window = self.conn.local_flow_control_window(stream_id)
                except h2.exceptions.StreamClosedError:
                    state.reset = True
                    continue
                size = min(left, window, self.conn.max_outbound_frame_size)
                if size > 0:
                    try:
                        self.conn.send_data(stream_id, bytes(size))
                    except h2.exceptions.StreamClosedError:
                        state.reset = True
                        continue
                    state.sent += size
                    progressed = True
            self.flush()
            waiting = any(
                s.to_send > s.sent and not (s.reset or s.ended) for s in self.streams.values()
            )
            if not waiting:
                self._read(0.05)
                return
            self._read(0 if progressed else 0.05)

    def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.terminated:
            self._read(min(0.05, max(0.0, deadline - time.monotonic())))

    def _read(self, wait_s: float) -> None:
        readable, _, _ = select.select([self.sock], [], [], wait_s)
        if not readable and not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except OSError:
            self.terminated = True
            return
        if not data:
            self.terminated = True
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.terminated = True
            return
        for event in events:
            self._on(event)
        self.flush()

    def _on(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = True
            return
        stream_id = getattr(event, "stream_id", None)
        state = self.streams.get(stream_id) if stream_id else None
        if state is None:
            return
        if isinstance(event, h2.events.StreamReset):
            state.reset = True
        elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
            state.headers += [(bytes(k), bytes(v)) for k, v in event.headers]
        elif isinstance(event, h2.events.DataReceived):
            state.data += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            state.ended = True

    @property
    def max_concurrent_streams(self) -> int:
        value: int = self.conn.remote_settings.max_concurrent_streams
        return value

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self.flush()
        except h2.exceptions.ProtocolError:
            pass
        self.sock.close()


def unfinished_messages(
    host: str,
    port: int,
    streams: int,
    announced: int,
    *,
    tls: ssl.SSLContext | None = None,
    metadata: Sequence[tuple[str, str]] = (),
    send_timeout_s: float = 5.0,
) -> RawConnection:
    """The memory attack: HEADERS on ``streams`` streams at once (before the server's SETTINGS
    are read, so its stream limit is not known yet), each with a gRPC header announcing
    ``announced`` bytes and all of them but the last; the connection is left open."""
    client = RawConnection(host, port, tls=tls)
    for _ in range(streams):
        stream_id = client.open(metadata=metadata)
        client.send(stream_id, grpc_prefix(announced))
        client.queue(stream_id, announced - 1)
    client.flush()
    client.pump(send_timeout_s)
    return client


def settings_of(client: RawConnection) -> h2.settings.Settings:
    return client.conn.remote_settings


def unary_call(
    port: int,
    body: bytes,
    *,
    path: str = DETECT_PATH,
    metadata: Sequence[tuple[str, str]] = (),
    timeout_s: float = 5.0,
) -> StreamState:
    """One whole unary call, whatever its metadata (gRPC's own clients refuse non-ASCII)."""
    client = RawConnection("127.0.0.1", port)
    try:
        stream_id = client.open(path, metadata)
        client.send(stream_id, grpc_prefix(len(body)) + body, end=True)
        client.flush()
        deadline = time.monotonic() + timeout_s
        state = client.streams[stream_id]
        while not (state.ended or state.reset or client.terminated):
            if time.monotonic() > deadline:
                raise TimeoutError("no answer")
            client.read_for(0.05)
        return state
    finally:
        client.close()
