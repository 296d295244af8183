"""What several test files need: one HTTP request (on ``lessons.probes``, the notebooks'
own client), reply headers by lower-case name, exact counts per request from a server's
counters, a keep-alive ``Client`` that also checks those counts round by round, one query
on the lab's PostgreSQL, run-unique names, and the processes this test process started,
and Django's test client on the project configured in this process (the ``lab_django``
fixture), a PostgreSQL URL for the settings tests, and the audit's static findings on a
project's facts (the sample project's by default).  A burst of simultaneous requests is
``lessons.probes.together``; the servers several lessons' tests share are fixtures in
``conftest.py``."""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid
from pathlib import Path
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
# A LAB_DATABASE_URL the settings tests parse (test_settings*.py; never connected to).
PG_URL = "postgresql://lab:secret@127.0.0.1:5432/lab"
# The audit's sample project, with its planted mistakes (MISTAKES.md).
SAMPLE = Path(__file__).parent / "sample_project"


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


def findings_for(facts: dict, root: Path = SAMPLE, cores: int | None = None):
    """The audit's static findings on ``facts`` read from the project at ``root``."""
    from lessons.audit.findings import context_for, static_findings

    return static_findings(context_for(root.resolve(), facts, cores=cores))


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


COUNTERS = "/__lab__/counters"
COUNTER_NAMES = ("sync_to_async", "async_to_sync", "threads_started", "queries", "requests")


class Client:
    """One keep-alive connection to a server (gunicorn's sync worker closes it after each
    answer and uvicorn after 5 s idle: it is opened again).  ``per_request`` gives exact
    counts per request from a server with counters on: N requests one after another,
    twice, each delta a multiple of N and both rounds the same integers."""

    N = 10

    def __init__(self, url: str) -> None:
        self.url = url
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=15)

    def get(self, path: str) -> tuple[int, Any]:
        """The status and the body, parsed when it is JSON."""
        try:
            self.conn.request("GET", path)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.conn.close()
            self.conn.request("GET", path)
            response = self.conn.getresponse()
        body = response.read()
        ctype = response.getheader("Content-Type", "")
        return response.status, json.loads(body) if ctype == "application/json" else body

    def counters(self) -> dict[str, int]:
        status, body = self.get(COUNTERS)
        assert status == 200
        return body

    def per_request(self, path: str) -> dict[str, int]:
        """Exact counts per request of ``path``: N requests, twice, same integers."""
        self.get(path)  # warm: first-request imports and lazily made objects
        rounds = []
        for _ in range(2):
            before = self.counters()
            for _ in range(self.N):
                status, body = self.get(path)
                assert status == 200, body
            after = self.counters()
            assert after["pid"] == before["pid"]
            deltas = {name: after[name] - before[name] for name in COUNTER_NAMES}
            assert all(d % self.N == 0 for d in deltas.values()), (path, deltas)
            rounds.append({name: d // self.N for name, d in deltas.items()})
        assert rounds[0] == rounds[1], (path, rounds)
        return rounds[0]

    def close(self) -> None:
        self.conn.close()


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
