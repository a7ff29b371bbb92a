"""The local journal: where records wait, fsynced, while the database cannot be reached.

Each process appends to its own file (``journal-<pid>-<id>.jsonl``, one JSON array per
record, one line each) and holds an exclusive ``flock`` on it for its lifetime. A batch is
acknowledged only after ``fsync``, so a record a caller's answer depended on survives a
crash. Replay reads every journal file it can lock (its own, and those of processes that
died), writes the records with ``ON CONFLICT DO NOTHING`` and only then empties the file:
replaying twice, or after a crash mid-replay, keeps each record once. A torn last line (a
crash during an append that was never acknowledged) is skipped.

The journal is bounded: an append that would pass ``max_bytes`` is refused, and the calls
whose records cannot be kept anywhere fail with AUDIT_UNAVAILABLE.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import orjson

from liveness_gateway.audit.record import COLUMNS, Decision, new_id

log = logging.getLogger(__name__)

_PREFIX = "journal-"
_SUFFIX = ".jsonl"


class JournalFullError(Exception):
    """The append would pass the journal's size limit."""


def encode(records: Sequence[Decision]) -> bytes:
    return b"".join(orjson.dumps(r.as_row()) + b"\n" for r in records)


def decode(data: bytes) -> list[Decision]:
    """The records of a journal file; lines that do not parse (a torn tail) are skipped."""
    records = []
    for line in data.splitlines():
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(row, list) and len(row) == len(COLUMNS):
            records.append(Decision(*row))
    return records


class Journal:
    """This process' journal file in ``directory``, at most ``max_bytes`` long."""

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.path = self.directory / f"{_PREFIX}{os.getpid()}-{new_id()}{_SUFFIX}"
        self._file: IO[bytes] | None = None
        self.size = 0
        """Bytes in this process' file."""
        self.records = 0
        """Records in this process' file."""

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        file = self.path.open("ab")
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file = file
        _fsync_dir(self.directory)

    def close(self) -> None:
        """Close the file; an empty one is removed (a non-empty one waits for a replay)."""
        if self._file is None:
            return
        file, self._file = self._file, None
        if self.size == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()
        file.close()

    def free_bytes(self) -> int:
        return self.max_bytes - self.size

    def append(self, records: Sequence[Decision]) -> None:
        """Write and fsync ``records``; raises :class:`JournalFullError` (nothing written) when
        they do not fit, OSError when the disk refuses."""
        if self._file is None:
            raise OSError("journal is not open")
        data = encode(records)
        if self.size + len(data) > self.max_bytes:
            raise JournalFullError(f"{len(data)} bytes do not fit ({self.size}/{self.max_bytes})")
        try:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError:
            # What reached the file may be a torn line: cut it off, so that a later
            # append starts on a fresh line.
            with contextlib.suppress(OSError):
                self._file.truncate(self.size)
            raise
        self.size += len(data)
        self.records += len(records)

    @contextlib.contextmanager
    def pending(self) -> Iterator[list[tuple[Path, list[Decision]]]]:
        """Every journal file this process can replay, with its records: its own and those
        of processes that are gone (locked for the duration)."""
        held: list[tuple[Path, IO[bytes]]] = []
        found: list[tuple[Path, list[Decision]]] = []
        try:
            if self._file is not None and self.size:
                with self.path.open("rb") as own:
                    found.append((self.path, decode(own.read())))
            for path in sorted(self.directory.glob(f"{_PREFIX}*{_SUFFIX}")):
                if path == self.path:
                    continue
                try:
                    other: IO[bytes] = path.open("rb")
                except OSError:
                    continue
                try:
                    fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # a live process' journal: it replays its own
                    other.close()
                    continue
                held.append((path, other))
                found.append((path, decode(other.read())))
            yield found
        finally:
            for _, other in held:
                other.close()

    def clear(self, path: Path) -> None:
        """Forget a replayed file: this process' own is emptied, another's removed."""
        if path == self.path:
            if self._file is not None:
                self._file.truncate(0)
                self._file.flush()
                os.fsync(self._file.fileno())
            self.size = 0
            self.records = 0
        else:
            path.unlink()
            _fsync_dir(self.directory)

    def depth(self) -> int:
        """Records waiting in this process' file."""
        return self.records


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
