"""What several test files need: one HTTP request (on ``lessons.probes``, the notebooks'
own client), reply headers by lower-case name, exact counts per request from a server's
counters, one query on the lab's PostgreSQL, run-unique names, and the processes this test
process started, and Django's test client on the project configured in this process
(the ``lab_django`` fixture).  A burst of simultaneous requests is ``lessons.probes.together``; the
servers several lessons' tests share are fixtures in ``conftest.py``."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psutil
import psycopg
import pytest

from lessons import probes
from lessons.counters import per_request
from lessons.probes import Reply

STATEMENT_TIMEOUT_MS = 500  # the redis_asgi server's (conftest.py)
# The seed of the project configured in this process (the lab_django fixture, conftest.py).
IN_PROCESS_SEED = {"items": 40, "customers": 5, "orders": 60, "seed": 42}


def unique() -> str:
    """A name no earlier run used (the lab's Valkey and profile folders keep theirs)."""
    return uuid.uuid4().hex[:12]


def fetch(url: str, path: str, method: str = "GET", headers: dict[str, str] | None = None,
          body: bytes | str | None = None, *, timeout: float = 30.0) -> Reply:
    """One request on a fresh connection; fails the test when no HTTP answer came."""
    if isinstance(body, str):
        body = body.encode()
    reply = probes.request(method, url, path, body, headers, timeout=timeout)
    assert reply.status is not None, f"{method} {url}{path}: no answer ({reply.error})"
    return reply


def ok(url: str, path: str) -> bytes:
    """The body of a GET that must answer 200."""
    reply = fetch(url, path)
    assert reply.status == 200, (url, path, reply.status, reply.body[:300])
    return reply.body


def sql(lab: Any, query: str, params: tuple = ()) -> list[tuple]:
    """The rows of one query on the lab's PostgreSQL."""
    with psycopg.connect(lab.services.database_url) as conn:
        return conn.execute(query, params).fetchall()


def django_get(path: str, *, use_async: bool = False, **extra: Any):
    """A GET through Django's test client (``AsyncClient`` when ``use_async``) on the
    project the ``lab_django`` fixture configured in this process."""
    from django.test import AsyncClient, Client

    if use_async:
        return asyncio.run(AsyncClient().get(path, **extra))
    return Client().get(path, **extra)


BOTH = pytest.mark.parametrize("use_async", [False, True], ids=["wsgi-client", "asgi-client"])


def headers(reply: Reply) -> dict[str, str]:
    """The reply's headers with lower-case names (servers differ in case)."""
    return {name.lower(): value for name, value in reply.headers.items()}


def counts(url: str, path: str, n: int = 5, loose: tuple[str, ...] = ()) -> dict[str, Any]:
    """Exact counts per request of ``path`` (a server with ``instrument=True``), after one
    warm-up request; the counters named in ``loose`` may vary from request to request."""
    assert fetch(url, path).status == 200
    result = per_request(url, path, n)
    assert result["requests"] == n
    exact = {name: value for name, value in result.items() if name not in loose}
    assert all(isinstance(v, int) for v in exact.values()), (path, result)
    return result


# Processes ##############################################################################


def alive(process: psutil.Process | int) -> bool:
    """Running and not a zombie (a zombie has exited; only its exit status is left)."""
    try:
        p = process if isinstance(process, psutil.Process) else psutil.Process(process)
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def descendants(of: int | None = None, *, reaper: bool = False) -> list[psutil.Process]:
    """The live descendants of process ``of`` (default: this one), without the reaper
    (``lessons.procs``: it lives exactly as long as its parent) unless ``reaper``."""
    found = []
    for p in psutil.Process(of).children(recursive=True):
        try:
            if not alive(p) or (not reaper and "lessons.procs" in " ".join(p.cmdline())):
                continue
        except psutil.Error:
            continue
        found.append(p)
    return found


def children_pids() -> set[int]:
    return {p.pid for p in descendants()}


def still_running(processes: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    """Those of ``processes`` still running after waiting up to ``timeout`` seconds."""
    return [p for p in psutil.wait_procs(processes, timeout=timeout)[1] if alive(p)]
