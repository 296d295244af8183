"""The lab database's schema and data: migrate and seed once, and a fingerprint stored in
the database itself that says when they must run again."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lessons import config
from lessons.services.base import Progress, ServiceError

__all__ = ["SeedSizes", "MIGRATED_PACKAGES", "manage_py", "schema_fingerprint", "ensure_schema"]


@dataclass(frozen=True)
class SeedSizes:
    items: int = 10_000
    customers: int = 1_000
    orders: int = 20_000

    def args(self) -> list[str]:
        return ["--items", str(self.items), "--customers", str(self.customers),
                "--orders", str(self.orders)]


# silk (Profile(profiler="silk")) records into tables of its own, but the lab's servers
# install it only on request. So migrate runs once with it installed (LAB_PROFILER=silk)
# and every other server stays free of it; its version is in the fingerprint, so an
# upgrade (which may bring migrations) migrates again.
MIGRATED_PACKAGES = ("django-silk",)


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


def ensure_schema(url: str, seed: SeedSizes, say: Progress) -> None:
    """Migrate and seed the database at ``url`` once; afterwards the fingerprint stored
    in it says both are done (a wiped database is simply set up again)."""
    want = schema_fingerprint(seed)
    if _read_marker(url) == want:
        return
    say("Setting up the lab database: migrate and seed (once, a few seconds)...")
    t0 = time.monotonic()
    env = {"LAB_DATABASE_URL": url}
    manage_py(["migrate", "--noinput", "-v", "0"], env | _migrate_env())
    manage_py(["seed_lab", *seed.args()], env)
    _write_marker(url, want)
    say(f"Lab database ready ({time.monotonic() - t0:.1f} s).")


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
