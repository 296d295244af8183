"""Shared fixtures: a lab per test module, throw-away LAB_HOMEs, and the promise that
no process the tests started outlives the session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lessons import config
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


def _descendants() -> list[psutil.Process]:
    """Our live descendants, except the reaper (it lives exactly as long as we do)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE or "lessons.procs" in " ".join(p.cmdline()):
                continue
        except psutil.Error:
            continue
        found.append(p)
    return found


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    yield
    left = psutil.wait_procs(_descendants(), timeout=10)[1]
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


def children_pids() -> set[int]:
    return {p.pid for p in _descendants()}


