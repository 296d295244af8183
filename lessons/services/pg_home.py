"""Where PostgreSQL's data and (as root) the copy of its binaries live.

PostgreSQL refuses to run as root, so when the lab runs as root (containers, this
workbook's CI) the cluster belongs to an unprivileged user (``nobody``) and runs as it,
from a copy of the binaries it can reach.  When that user cannot enter ``LAB_HOME`` (a
``mktemp -d`` folder, a home directory of mode 700), PostgreSQL's data and that copy go
to a directory of their own, ``/var/tmp/django-p99-lab-pg-<user>-<hash of LAB_HOME>``
(one per LAB_HOME, so two labs never share a cluster); everything else stays in LAB_HOME.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import stat
import tempfile
from pathlib import Path

from lessons import config
from lessons.services.base import Progress, ServiceError

__all__ = ["PG_USER_WHEN_ROOT", "PG_STATE_BASES", "postgres_home", "postgres_home_name",
           "check_reachable"]

PG_USER_WHEN_ROOT = "nobody"
# Where PostgreSQL's own directory goes when its user cannot enter LAB_HOME (first that works).
PG_STATE_BASES: tuple[Path, ...] = (Path("/var/tmp"), Path(tempfile.gettempdir()))


def _blocking_dir(path: Path) -> Path | None:
    """The first directory on the way to ``path`` (``path`` itself included) that others
    cannot enter (no execute bit for others, such as /root or a ``mktemp -d`` folder)."""
    for d in [*reversed(path.parents), path]:
        if d.exists() and not (d.stat().st_mode & 0o001):
            return d
    return None


def check_reachable(path: Path, user: str) -> None:
    """Fail clearly when ``user`` cannot reach ``path`` (a parent directory without the
    execute bit for others, such as /root)."""
    blocked = _blocking_dir(path.parent)
    if blocked is not None:
        raise ServiceError(
            f"PostgreSQL must run as '{user}' because you are root, and '{user}' cannot "
            f"enter {blocked}: set LAB_HOME to a directory everyone can traverse, "
            f"e.g. /var/tmp/django-p99-lab."
        )


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
    problems: list[str] = []
    for base in PG_STATE_BASES:
        d = base / name
        problem = _unusable(base, d, user, create=create)
        if problem:
            problems.append(problem)
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


def _unusable(base: Path, d: Path, user: str, *, create: bool) -> str:
    """Why ``d`` (in ``base``) cannot hold PostgreSQL's directory, or "" when it can (made
    with mode 755 when ``create``)."""
    if (bad := _blocking_dir(base)) is not None:
        return f"'{user}' cannot enter {bad}"
    try:
        if create:
            d.mkdir(mode=0o755, exist_ok=True)
        if d.is_symlink() or d.exists():
            # Made by us before, or by someone else to catch our files: only ours is used.
            st = d.lstat()
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                return f"{d} exists and is not a directory of yours"
            if create and stat.S_IMODE(st.st_mode) != 0o755:
                d.chmod(0o755)  # mkdir's mode is filtered by the umask
        elif not os.access(base, os.W_OK):
            return f"{base} is not writable"
    except OSError as exc:
        return f"{d}: {exc.strerror or exc}"
    return ""
