"""A real PostgreSQL for the audit trail's tests: a fresh cluster per test.

``initdb`` in a temporary directory, ``pg_ctl start`` with no TCP listener
(``listen_addresses=''``), reached on its Unix socket in that directory; trust authentication
for the local socket only. PostgreSQL refuses to run as root: as root the programs run as
the unprivileged ``nobody`` (``runuser``), in a directory it owns.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests import tools

_TIMEOUT_S = 60
SUPERUSER = "postgres"


def _as_server_user() -> tuple[list[str], int | None]:
    """The command prefix that runs a program as a user PostgreSQL accepts, and its uid."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser") or tools.find("runuser")
    return [runuser, "-u", "nobody", "--"], pwd.getpwnam("nobody").pw_uid


@dataclass
class Postgres:
    directory: Path
    """Holds the data directory, the socket and the server log."""
    prefix: list[str]

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def url(self, database: str = SUPERUSER) -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.directory}"

    def _run(self, *argv: str) -> str:
        done = subprocess.run(  # noqa: S603  (the PostgreSQL programs, fixed arguments)
            [*self.prefix, *argv],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise AssertionError(f"{argv[0]} failed: {done.stderr}\n{log}")
        return done.stdout

    def start(self) -> None:
        options = f"-c listen_addresses='' -k {self.directory} -c fsync=on"
        self._run(tools.find("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o",
                  options, "-w", "-t", str(_TIMEOUT_S), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast``: disconnect everyone and shut down; ``immediate``: as after a crash."""
        self._run(tools.find("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def dump(self) -> bytes:
        """Everything in the database, as pg_dump writes it (plain SQL)."""
        done = subprocess.run(  # noqa: S603
            [
                *self.prefix,
                tools.find("pg_dump"),
                "-h",
                str(self.directory),
                "-U",
                SUPERUSER,
                "--data-only",
                SUPERUSER,
            ],
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=True,
        )
        return done.stdout


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    prefix, uid = _as_server_user()
    directory = Path(tempfile.mkdtemp(prefix="audit-pg-"))
    if uid is not None:
        os.chown(directory, uid, -1)
    server = Postgres(directory, prefix)
    try:
        server._run(tools.find("initdb"), "-D", str(server.data), "-U", SUPERUSER,
                    "-A", "trust", "--no-sync", "-E", "UTF8")  # fmt: skip
        server.start()
        yield server
    finally:
        with contextlib.suppress(AssertionError, subprocess.SubprocessError, OSError):
            server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
