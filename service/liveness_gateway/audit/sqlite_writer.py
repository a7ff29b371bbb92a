"""The SQLite writer process: commits the batches the gateway sends it, one per frame.

Run as a script (``python sqlite_writer.py PATH SYNCHRONOUS``) by :class:`SqliteStore`: it
imports nothing of the gateway. A frame on stdin is a 4-byte big-endian length and an orjson
array ``[sql, params]``; the answer on stdout is a 4-byte length, 0 once the statement is
committed (durable as ``synchronous`` makes it), else followed by the error text. End of
input (the gateway stopped, or was killed) ends the process after the commit in progress.

Why a process: the gateway's event loop is busy with calls, and a thread committing for it
waits for the GIL before and after every call into SQLite, longer than the commit itself.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import time
from typing import BinaryIO

import orjson

BUSY_TIMEOUT_MS = 5000
OPEN_ATTEMPTS = 50
OPEN_RETRY_S = 0.1


def connect(path: str, synchronous: str) -> sqlite3.Connection:
    for _ in range(OPEN_ATTEMPTS - 1):  # another process may be switching the file to WAL
        try:
            return _connect(path, synchronous)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(OPEN_RETRY_S)
    return _connect(path, synchronous)


def _connect(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    # Checkpoints are the gateway's reader's (PASSIVE, once a second): a commit that
    # checkpoints copies and fsyncs the database file.
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def serve(conn: sqlite3.Connection, stdin: BinaryIO, stdout: BinaryIO) -> int:
    while True:
        header = _read(stdin, 4)
        if header is None:
            return 0
        payload = _read(stdin, int.from_bytes(header, "big"))
        if payload is None:
            return 0
        try:
            sql, params = orjson.loads(payload)
            conn.execute(sql, params)
            answer = b""
        except (sqlite3.Error, ValueError, TypeError) as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            answer = f"{type(exc).__name__}: {exc}".encode()[:1000]
        stdout.write(len(answer).to_bytes(4, "big") + answer)
        stdout.flush()


def main(argv: list[str]) -> int:
    # The gateway decides when this process ends (by closing its input): a Ctrl-C or SIGTERM
    # to the whole process group must not end it before the gateway's last batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    path, synchronous = argv
    try:
        return serve(connect(path, synchronous), sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the gateway is gone; what was committed stays committed
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
