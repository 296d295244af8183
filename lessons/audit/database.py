"""The database an audit's servers run on.

By default a fresh database in the lab's PostgreSQL, named from the project (its
directory's name and a hash of its path, so two projects never share one): dropped and
created again on every audit, the project's migrations applied by the project's own
``manage.py migrate`` (run with the wrapper settings, in the project's interpreter), and
``--fixture FILE`` loaded with ``manage.py loaddata``.  It is left in place afterwards, so
a learner can look at what the views read.

``--database URL`` runs the servers on the learner's own PostgreSQL instead: nothing is
migrated or loaded there, and the audit only sends GET requests, but those run the
project's views, which may write (a session, a last-seen stamp, silk's recordings): the
advice to give it a read-only user or a copy is printed first.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lessons import procs
from lessons.audit.wrapper import SETTINGS_MODULE, base_overrides, child_env

if TYPE_CHECKING:
    from lessons.audit.project import Project
    from lessons.lab import Lab

__all__ = ["READ_ONLY_ADVICE", "database_name", "prepare", "last_error", "shown"]

READ_ONLY_ADVICE = (
    "--database: the audit sends only GET requests, but they run your views, which may write "
    "(sessions, counters, a profiler's recordings); give it a read-only user or a copy of "
    "your database, never production. Nothing is migrated or loaded there.")
MANAGE_TIMEOUT_S = 300.0


def database_name(project: Project) -> str:
    """``audit_<directory>_<hash of the path>``: PostgreSQL's 63-byte limit kept."""
    slug = re.sub(r"[^a-z0-9]+", "_", project.root.name.lower()).strip("_")[:40] or "project"
    return f"audit_{slug}_{hashlib.sha256(str(project.root).encode()).hexdigest()[:8]}"


def shown(url: str) -> str:
    """A database URL without its password, for a sentence."""
    u = urlsplit(url)
    where = f"{u.hostname or ''}{f':{u.port}' if u.port else ''}{u.path}"
    return f"{u.username}@{where}" if u.username else where


def prepare(project: Project, lab: Lab, *, database: str | None, fixture: Path | None,
            progress: Callable[[str], None]) -> str:
    """The URL the servers use: ``database`` checked, or a fresh migrated database."""
    from lessons.audit.project import AuditError

    if database is not None:
        if fixture is not None:
            raise AuditError("--fixture loads into the audit's fresh database, and --database uses "
                             "yours as it is: leave one of them out.")
        progress(READ_ONLY_ADVICE)
        _check_reachable(database)
        return database
    name = database_name(project)
    _recreate(_on(lab.services.database_url, "postgres"), name)
    url = _on(lab.services.database_url, name)
    progress(f"database: {name} in the lab's PostgreSQL, fresh (kept afterwards to look at, dropped "
             f"by this project's next audit); migrating")
    env = child_env(project, base_overrides(url, lab.services.redis_url))
    log = lab.home / "logs" / "audit-manage.log"
    _manage(project, ["migrate", "--noinput"], env, log)
    if not _migrated(url):
        raise AuditError(f"manage.py migrate did not write to the audit's database {name}: does "
                         f"{project.root / 'manage.py'} set DJANGO_SETTINGS_MODULE in a way that "
                         f"ignores --settings?")
    if fixture is not None:
        if not Path(fixture).is_file():
            raise AuditError(f"The fixture {fixture} does not exist: give the path of a file "
                             f"`manage.py loaddata` reads.")
        progress(f"database: loading {fixture}")
        _manage(project, ["loaddata", str(Path(fixture).resolve())], env, log)
    return url


def _on(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead."""
    return urlsplit(url)._replace(path="/" + name).geturl()


def _check_reachable(url: str) -> None:
    """One sentence when ``url`` is not a PostgreSQL the audit can connect to."""
    import psycopg

    from lessons.audit.project import AuditError

    scheme = urlsplit(url).scheme
    if scheme not in ("postgresql", "postgres"):
        given = f"a {scheme}:// one" if scheme else f"{shown(url)!r}"
        raise AuditError(f"--database takes a postgresql:// URL (the lab's servers run on PostgreSQL), "
                         f"not {given}.")
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]  # libpq's cause, then hints
        reason = " ".join(first.rsplit("failed: ", 1)[-1].split())
        raise AuditError(f"Cannot connect to the database at {shown(url)} ({reason}): check --database, "
                         f"or leave it out to use a fresh database in the lab's PostgreSQL.") from None


def _recreate(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _migrated(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regclass('django_migrations')").fetchone()[0] is not None


def _manage(project: Project, args: list[str], env: dict[str, str], log: Path) -> None:
    """``manage.py ARGS --settings <wrapper>`` in the project's interpreter and folder
    (``--settings`` wins over a manage.py that sets the variable itself); one sentence
    with the exception when it fails."""
    from lessons.audit.project import AuditError

    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")
    proc = procs.spawn([project.python, "manage.py", *args, "--settings", SETTINGS_MODULE],
                       env=env, cwd=project.root, log=log)
    try:
        code = proc.wait(MANAGE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        procs.stop(proc)
    if code != 0:
        why = "did not finish in time" if code is None else f"failed: {last_error(log.read_text(errors='replace'))}"
        raise AuditError(f"manage.py {args[0]} of {project.root} {why} (its output: {log}).")


def last_error(output: str) -> str:
    """The exception a child's output ends with (its last ``Name: message`` line, or
    its last line)."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Warning)\b.*", line):
            return line
    return lines[-1] if lines else "no output"
