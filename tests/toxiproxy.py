"""A real fault-injecting TCP proxy (Shopify's toxiproxy) between gateway and sandbox."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from tests import tools

_START_TIMEOUT_S = 15.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ToxiproxyServer:
    """A toxiproxy-server process on loopback and its HTTP API."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(  # noqa: S603  (our own built binary)
            [tools.find("toxiproxy"), "-host", "127.0.0.1", "-port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                self.api("GET", "/version")
                break
            except OSError:
                assert time.monotonic() < deadline, "toxiproxy did not start"
                assert self.proc.poll() is None, "toxiproxy exited"
                time.sleep(0.05)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            raw = resp.read()
        if resp.headers.get_content_type() != "application/json":
            return raw.decode()
        return json.loads(raw)

    def proxy(self, name: str, upstream: str) -> Proxy:
        created = self.api(
            "POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": upstream}
        )
        return Proxy(self, name, f"http://{created['listen']}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Proxy:
    server: ToxiproxyServer
    name: str
    url: str

    def toxic(self, kind: str, stream: str = "downstream", **attributes: Any) -> None:
        self.server.api(
            "POST",
            f"/proxies/{self.name}/toxics",
            {"type": kind, "stream": stream, "attributes": attributes, "name": f"{kind}_{stream}"},
        )

    def clear(self) -> None:
        for toxic in self.server.api("GET", f"/proxies/{self.name}/toxics"):
            self.server.api("DELETE", f"/proxies/{self.name}/toxics/{toxic['name']}")

    def set_enabled(self, enabled: bool) -> None:
        self.server.api("POST", f"/proxies/{self.name}", {"enabled": enabled})

    def delete(self) -> None:
        self.server.api("DELETE", f"/proxies/{self.name}")
