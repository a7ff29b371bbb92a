"""A hostile vendor: an HTTP server on loopback that answers every POST with a fixed body.

It runs in a thread with the standard library's server, not on the test's event loop, so
that what the gateway does to its own loop (the loop the tests measure) is not mixed with
the cost of producing the hostile bytes.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class HostileVendor:
    url: str
    replies: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    """Path -> (HTTP status, body); any other path gets 404."""

    def answer(self, path: str, body: bytes, status: int = 200) -> None:
        self.replies[path] = (status, body)


@contextmanager
def hostile_vendor() -> Iterator[HostileVendor]:
    vendor = HostileVendor("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, body = vendor.replies.get(self.path, (404, b""))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the gateway may stop reading: the point
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    vendor.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval: shutdown() waits for the next poll (0.5 s by default).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="hostile-vendor"
    )
    thread.daemon = True
    thread.start()
    try:
        yield vendor
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def deep_array(size: int, depth: int = 30) -> bytes:
    """A successful-looking reply carrying an array ``depth`` deep of about ``size`` bytes."""
    count = max(1, (size - 2 * depth) // 2)
    inner = b"[" * depth + b"0," * (count - 1) + b"0" + b"]" * depth
    return b'{"status": "OK", "score": "0.1", "x": ' + inner + b"}"


def ends_in_nan(size: int) -> bytes:
    """A large array whose last element is NaN (which orjson refuses and json accepts)."""
    return b'{"status": "OK", "score": "0.1", "x": [' + b"0," * (size // 2) + b"NaN]}"


def many_keys(count: int) -> bytes:
    keys = b",".join(b'"%x":0' % i for i in range(count))
    return b'{"status": "OK", "score": "0.1", ' + keys + b"}"
