"""Fuzzing the gRPC framing and message layer of a live gateway over raw HTTP/2.

A real ``liveness-gateway serve --sandbox`` process on loopback gets, for a bounded number of
rounds, calls no gRPC library would send: gRPC length prefixes that lie (truncated messages,
announced sizes past the 6 MiB limit, the compressed flag without an encoding), malformed
protobuf (bad varints, wrong wire types, groups, field 0), random bytes, several messages on
a unary call, DATA with no prefix at all, streams reset half-way, unknown paths and odd
metadata. Each round's input comes from a seeded generator, so a failing round is replayed
with its seed.

After every round the gateway must still answer a health check and a real Detect on a fresh
connection; at the end its log must hold no traceback. Run by ``make fuzz`` (bounded by
``--runs`` and ``--seconds``); a finding exits 1 and prints the seed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liveness.v1 import liveness_pb2 as pb
from liveness.v1 import liveness_pb2_grpc

from tests.h2raw import DETECT_PATH, RawConnection, grpc_prefix

_PATHS = (
    DETECT_PATH,
    "/liveness.v1.LivenessCheck/Upload",
    "/liveness.v1.LivenessCheck/AntiHack",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/liveness.v1.LivenessCheck/Nope",
)
_MAX_MESSAGE = 6 * 1024 * 1024


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _protobufish(rng: random.Random) -> bytes:
    """Bytes near a DetectRequest: right and wrong tags, wire types and lengths."""
    parts = []
    for _ in range(rng.randint(0, 6)):
        field = rng.choice((0, 1, 2, 3, 4, 15, 536870911))
        wire = rng.choice((0, 1, 2, 3, 4, 5, 6, 7))
        parts.append(_varint(field << 3 | wire))
        if wire == 2:
            length = rng.choice((0, 1, 10, 2**31, 2**64 - 1, rng.randint(0, 64)))
            parts.append(_varint(length) + rng.randbytes(rng.randint(0, 32)))
        elif wire in (0, 1, 5):
            parts.append(rng.choice((b"\xff" * 11, b"\x80", _varint(rng.getrandbits(64)))))
    return b"".join(parts)


def _message(rng: random.Random) -> bytes:
    """One gRPC message, its prefix telling the truth or not."""
    body = rng.choice(
        (
            lambda: _protobufish(rng),
            lambda: rng.randbytes(rng.randint(0, 256)),
            lambda: pb.DetectRequest(liveness_data=b"SANDBOX:score=0.5").SerializeToString(),
            lambda: b"\x00\x00\x00\x04\xff\xff\xff\xff",
        )
    )()
    announced = rng.choice(
        (len(body), len(body) + rng.randint(1, 100), max(0, len(body) - 1), _MAX_MESSAGE + 1,
         2**32 - 1)
    )  # fmt: skip
    return grpc_prefix(announced, compressed=rng.random() < 0.1) + body


def _round(port: int, rng: random.Random) -> None:
    """A few streams on one connection, each with hostile framing, then close."""
    client = RawConnection("127.0.0.1", port)
    try:
        for _ in range(rng.randint(1, 4)):
            metadata = rng.choice(
                ((), (("x-request-id", "x" * 500),), (("grpc-encoding", "gzip"),),
                 (("grpc-timeout", "1n"),), (("authorization", "Bearer " + "A" * 64),))
            )  # fmt: skip
            stream_id = client.open(rng.choice(_PATHS), metadata)
            shape = rng.randrange(5)
            if shape == 0:  # messages, each maybe lying about its size
                data = b"".join(_message(rng) for _ in range(rng.randint(1, 3)))
            elif shape == 1:  # a prefix cut short
                data = grpc_prefix(rng.randint(0, 100))[: rng.randint(0, 4)]
            elif shape == 2:  # no prefix at all
                data = rng.randbytes(rng.randint(1, 64))
            elif shape == 3:  # nothing
                data = b""
            else:  # half a message, then the stream is reset
                data = _message(rng)[: rng.randint(1, 20)]
            window = client.conn.local_flow_control_window(stream_id)
            client.send(stream_id, data[:window], end=shape != 4)
            if shape == 4:
                client.conn.reset_stream(stream_id)
        client.flush()
        client.read_for(0.05)
    finally:
        client.close()


def _still_serving(target: str) -> str | None:
    """None when the gateway answers a health check and a Detect; else what went wrong."""
    try:
        with grpc.insecure_channel(target) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            if status.status != health_pb2.HealthCheckResponse.SERVING:
                return f"health says {status.status}"
            reply = liveness_pb2_grpc.LivenessCheckStub(channel).Detect(
                pb.DetectRequest(liveness_data=b"SANDBOX:score=0.25"), timeout=5
            )
            if abs(reply.score - 0.25) > 1e-9:
                return f"Detect answered {reply.score}"
    except grpc.RpcError as err:
        return f"{err.code()}: {err.details()}"
    return None


def _start(workdir: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    ready, log = workdir / "ready.json", workdir / "gateway.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVENESS_", "OTEL_"))}
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own entry point
            [sys.executable, "-m", "liveness_gateway", "serve", "--sandbox", "--host",
             "127.0.0.1", "--port", "0", "--metrics-port", "0", "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL, stderr=out, env=env,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"fuzz_framing: the gateway did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc, int(json.loads(ready.read_text())["port"]), log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="rounds of hostile calls")
    parser.add_argument("--seconds", type=float, default=300, help="stop after this long")
    parser.add_argument("--seed", type=int, default=None, help="replay from this seed")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(32)
    check_every = 25
    with tempfile.TemporaryDirectory(prefix="fuzz-framing-") as tmp:
        proc, port, log = _start(Path(tmp))
        target = f"127.0.0.1:{port}"
        finding: str | None = None
        done = 0
        started = time.monotonic()
        try:
            for run in range(args.runs):
                if time.monotonic() - started > args.seconds:
                    break
                round_seed = seed + run
                # Seeded for replay, not for secrecy.
                rng = random.Random(round_seed)  # noqa: S311
                with contextlib.suppress(Exception):  # the client's own troubles: only what
                    _round(port, rng)  # the server does afterwards is judged
                done += 1
                if run % check_every == check_every - 1 or run == args.runs - 1:
                    finding = _still_serving(target)
                    if finding is None and proc.poll() is not None:
                        finding = f"the gateway exited with {proc.returncode}"
                    if finding is not None:
                        finding = f"after round seed {round_seed} (start seed {seed}): {finding}"
                        break
            text = log.read_text(errors="replace")
            if finding is None and "Traceback" in text:
                finding = f"a traceback in the gateway's log (start seed {seed})"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        elapsed = time.monotonic() - started
        if finding is not None:
            print(f"fuzz_framing: FINDING {finding}\n--- gateway log tail ---\n{text[-4000:]}")
            return 1
        print(f"fuzz_framing: {done} rounds in {elapsed:.0f} s (seed {seed}): no finding")
        return 0


if __name__ == "__main__":
    sys.exit(main())
