"""Everything the lab reads from the environment, read in one place.

``LAB_QUICK``         1: every notebook and run is shortened (CI); the default of the one
                    switch ``quick()`` reads, which a notebook's ``set_quick(QUICK)`` sets.
``LAB_HOME``          where the lab keeps PostgreSQL's data, logs and run files.
``LAB_DATABASE_URL``  use this PostgreSQL instead of starting one.
``LAB_REDIS_URL``     use this Redis/Valkey instead of starting one.
``LAB_RESULTS``       where measured runs are saved (default: ``results/`` in the repo).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# The checkout.  `lessons` is installed editable (`pip install -r requirements.txt -e .`,
# what `make` and environment.yml run), so this file stays in the clone wherever the
# kernel runs, and lab_project/, notebooks/ and requirements.txt are found beside it.
# The servers run the lab project with cwd=LAB_PROJECT and PYTHONPATH=LAB_PROJECT.
REPO = Path(__file__).resolve().parent.parent
LAB_PROJECT = REPO / "lab_project"


def is_checkout() -> bool:
    """True when ``lessons`` runs from a clone of the workbook (an editable install or the
    clone itself), not from a copy without the notebooks and the lab project."""
    return (LAB_PROJECT / "manage.py").is_file() and (REPO / "notebooks").is_dir()


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


# The one quick switch, set by set_quick; while it is None, LAB_QUICK decides.
_quick: bool | None = None


def quick() -> bool:
    """True when experiments run short (CI, a first look): what ``set_quick`` set in this
    process, else ``LAB_QUICK=1``.  Every size follows it: ``by_speed`` and the defaults
    inside ``lessons`` (load-run durations) read it, and a notebook's record keeps it."""
    return _flag("LAB_QUICK") if _quick is None else _quick


_is_quick = quick  # by_speed's argument ``quick`` hides the function inside by_speed


def set_quick(on: bool | None) -> bool:
    """Make this process's runs short (True) or full length (False), whatever LAB_QUICK
    says; None goes back to LAB_QUICK.  A notebook calls ``lessons.set_quick(QUICK)``
    right after its parameters cell, so changing ``QUICK`` there changes every size.
    Returns the setting now in force."""
    global _quick
    if on is not None and not isinstance(on, bool):
        raise TypeError(f"QUICK is True or False, not {on!r}: write QUICK = True for short runs.")
    _quick = on
    return quick()


def by_speed(full: T, quick: T) -> T:
    """``quick`` when runs are short (``quick()``: ``set_quick``, else ``LAB_QUICK=1``),
    else ``full``: ``REPEATS = by_speed(3, quick=1)``."""
    return quick if _is_quick() else full


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_home() -> Path:
    """The lab's own directory (the lock, ports, logs, run files and, usually,
    PostgreSQL's data): one lab at a time per LAB_HOME, and labs with different LAB_HOMEs
    share nothing.  As root it defaults to /var/tmp rather than root's home, so the
    unprivileged user PostgreSQL runs as can reach it; a LAB_HOME that user cannot enter
    still works (``services.postgres_home`` puts PostgreSQL's data elsewhere)."""
    if os.environ.get("LAB_HOME"):
        return Path(os.environ["LAB_HOME"]).expanduser().resolve()
    if is_root():
        return Path("/var/tmp/django-p99-lab-root")
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "django-p99-lab"


def external_database_url() -> str | None:
    return os.environ.get("LAB_DATABASE_URL") or None


def external_redis_url() -> str | None:
    return os.environ.get("LAB_REDIS_URL") or None


def results_dir() -> Path:
    return Path(os.environ.get("LAB_RESULTS") or REPO / "results")
