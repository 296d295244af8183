"""Shared fixtures: a lab per test module, throw-away LAB_HOMEs, the servers several
lessons' tests share, and the promise that no process the tests started outlives the
session."""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from helpers import IN_PROCESS_SEED, STATEMENT_TIMEOUT_MS, descendants, unique
from lessons import config
from lessons.profile import Profile
from lessons.services import SeedSizes

SMALL_SEED = SeedSizes(items=300, customers=30, orders=600)

# The suite's labs (and the kernels, servers and JupyterLab it starts) use a LAB_HOME of
# their own, so `make test` runs beside an open notebook, which holds the default one.
# A LAB_HOME set by the caller wins.  Under pytest-xdist each worker adds its name to it
# (the workers inherit the LAB_HOME set here), so two workers' labs never share a
# PostgreSQL or a port file.
os.environ.setdefault("LAB_HOME", f"{config.lab_home()}-tests")
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["LAB_HOME"] += "-" + os.environ["PYTEST_XDIST_WORKER"]


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    yield
    left = psutil.wait_procs(descendants(), timeout=10)[1]
    assert not left, "processes the tests started are still running: " + ", ".join(
        f"{p.pid} {' '.join(p.cmdline())[:80]}" for p in left if p.is_running()
    )


@pytest.fixture(scope="module")
def lab() -> Iterator[object]:
    """The lab on the default LAB_HOME (warm after the first run), one per test module."""
    from lessons import Lab

    with Lab(quiet=True) as the_lab:
        yield the_lab


@pytest.fixture
def fresh_home() -> Iterator[Path]:
    """An empty LAB_HOME.  As root it must be traversable by the user PostgreSQL runs
    as, so it lives in /var/tmp with mode 755 (pytest's tmp_path is private)."""
    base = "/var/tmp" if config.is_root() else None
    home = Path(tempfile.mkdtemp(prefix="lab-test-", dir=base))
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def no_external(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that start their own services must not pick up a learner's external URLs."""
    monkeypatch.delenv("LAB_DATABASE_URL", raising=False)
    monkeypatch.delenv("LAB_REDIS_URL", raising=False)


@pytest.fixture
def load_settings(monkeypatch: pytest.MonkeyPatch):
    """Execute lab/settings.py with exactly the given LAB_* variables; return its globals."""
    import runpy

    monkeypatch.syspath_prepend(str(config.LAB_PROJECT))  # as a server has it: lab.knobs

    def load(**env: str) -> dict:
        for name in list(os.environ):
            if name.startswith("LAB_"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(config.LAB_PROJECT / "lab" / "settings.py"))

    return load


@pytest.fixture
def load(load_settings):
    """``load_settings`` under the short name the settings tests (test_settings*.py) use."""
    return load_settings


@pytest.fixture
def error(load):
    """The ImproperlyConfigured message the given LAB_* variables produce."""
    from django.core.exceptions import ImproperlyConfigured

    def error(**env: str) -> str:
        with pytest.raises(ImproperlyConfigured) as info:
            load(**env)
        return str(info.value)

    return error


@pytest.fixture
def no_records(tmp_path: Path) -> Iterator[Path]:
    """The audit's results directory an empty tmp_path (yielded), so its evidence quotes no
    learner's records until a test writes some there."""
    from lessons.audit import evidence

    evidence.set_results_dir(tmp_path)
    yield tmp_path
    evidence.set_results_dir(None)


@pytest.fixture(scope="module")
def lab_django(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Django configured with lab.settings on a migrated, seeded temporary SQLite file."""
    import django
    from django.conf import settings

    if settings.configured:
        if settings.SETTINGS_MODULE != "lab.settings":
            pytest.fail(f"Django is already configured with {settings.SETTINGS_MODULE}")
    else:
        database = tmp_path_factory.mktemp("lab") / "lab.sqlite3"
        with pytest.MonkeyPatch.context() as mp:
            for name in list(os.environ):
                if name.startswith("LAB_"):
                    mp.delenv(name)
            mp.setenv("LAB_DATABASE_URL", f"sqlite://{database}")
            mp.setenv("LAB_SECRET_KEY", "lab-project-tests")
            mp.setenv("DJANGO_SETTINGS_MODULE", "lab.settings")
            sys.path.insert(0, str(config.LAB_PROJECT))
            django.setup()  # Reads the settings now, so the environment can go back.

    from django.core.management import call_command
    from django.db import connections
    from django.test.utils import setup_test_environment, teardown_test_environment

    call_command("migrate", verbosity=0)
    call_command("seed_lab", stdout=io.StringIO(), **IN_PROCESS_SEED)
    setup_test_environment()  # Lets the test client's "testserver" host through.
    yield
    teardown_test_environment()
    connections.close_all()


# Servers several lessons' tests share (one of each per test module that asks) ##########


@pytest.fixture(scope="module")
def counted_asgi(lab) -> Iterator[str]:
    """uvicorn, no middleware, counters on: the reference server of lessons 4 to 6."""
    with lab.serve(Profile(server="uvicorn", middleware="none", instrument=True)) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def counted_wsgi(lab) -> Iterator[str]:
    """gunicorn (sync workers) with the default middleware, counters on."""
    with lab.serve(Profile(server="gunicorn-sync", middleware="default", instrument=True)) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def minimal_sqlite(lab) -> Iterator[str]:
    """uvicorn with the guide's minimal middleware, on the lab's SQLite database."""
    with lab.serve(Profile(server="uvicorn", middleware="minimal", database="sqlite")) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def redis_asgi(lab) -> Iterator[Any]:
    """uvicorn, django-redis, no middleware, a statement timeout: lessons 7 to 9."""
    profile = Profile(server="uvicorn", cache="django-redis", middleware="none",
                      statement_timeout_ms=STATEMENT_TIMEOUT_MS)
    with lab.serve(profile) as srv:
        yield srv


@pytest.fixture(scope="module")
def locmem_wsgi(lab) -> Iterator[Any]:
    """gunicorn (sync), LocMem, the default middleware (CSRF included)."""
    with lab.serve(Profile(server="gunicorn-sync", cache="locmem")) as srv:
        yield srv


@pytest.fixture(scope="module")
def profile_dir(lab) -> Iterator[Path]:
    """A directory of this test module inside the lab's own directory, removed afterwards."""
    path = lab.home / "profiles" / f"test-{unique()}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_counted_wsgi(lab) -> Iterator[str]:
    """gunicorn (sync), django-redis, the default middleware, counters on: lessons 10, 11."""
    with lab.serve(Profile(cache="django-redis", instrument=True)) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def redis_counted_asgi(lab) -> Iterator[str]:
    """uvicorn, django-redis, no middleware, counters on."""
    profile = Profile(server="uvicorn", cache="django-redis", middleware="none", instrument=True)
    with lab.serve(profile) as srv:
        yield srv.url
