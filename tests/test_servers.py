"""Every server kind serves the lab project identically, pinned, and stops cleanly;
bad input gets one clear sentence and leaves nothing running."""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from helpers import descendants, fetch, headers, still_running
from lessons.profile import SERVER_KINDS, Profile
from lessons.server import ServerError

PATHS = ("/healthz", "/l01/hello", "/l01/hello-async", "/l01/items?limit=5", "/l01/items-async?limit=5")


def get(url: str, path: str) -> tuple[int, bytes, str]:
    reply = fetch(url, path, timeout=10)
    return reply.status, reply.body, headers(reply).get("content-type", "")


@pytest.fixture(scope="module")
def reference(lab) -> dict[str, bytes]:
    """The bodies under gunicorn's sync worker, which every other kind must match."""
    with lab.serve(Profile(server="gunicorn-sync")) as srv:
        return {path: get(srv.url, path)[1] for path in PATHS}


def test_reference_payloads(reference: dict[str, bytes]) -> None:
    import json

    assert json.loads(reference["/healthz"]) == {"status": "ok"}
    assert json.loads(reference["/l01/hello"]) == json.loads(reference["/l01/hello-async"])
    items = json.loads(reference["/l01/items?limit=5"])
    assert [row["id"] for row in items] == [1, 2, 3, 4, 5]
    assert set(items[0]) == {"id", "name", "category", "price", "quantity"}
    assert reference["/l01/items?limit=5"] == reference["/l01/items-async?limit=5"]


@pytest.mark.parametrize("kind", list(SERVER_KINDS))
def test_every_kind_serves_identical_bytes(lab, reference: dict[str, bytes], kind: str) -> None:
    with lab.serve(Profile(server=kind)) as srv:
        pids = [p.pid for p in srv.processes()]
        for path in PATHS:
            status, body, ctype = get(srv.url, path)
            assert (status, ctype) == (200, "application/json"), (path, status, body[:200])
            assert body == reference[path], path
        plan = lab.cpu_plan
        if plan.pinned:
            for p in srv.processes():
                assert set(p.cpu_affinity()) == set(plan.server), p.cmdline()
    # Stopping takes the whole process group: master and workers.
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_two_workers_are_both_up_when_ready(lab) -> None:
    with lab.serve(Profile(server="gunicorn-sync", workers=2)) as srv:
        assert len(srv.processes()) == 3  # master + 2 workers
        assert srv.startup_s is not None and srv.startup_s > 0


def test_port_in_use_is_refused_before_anything_starts(lab) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = lab.server(Profile(), port=port)
        with pytest.raises(ServerError, match=f"Port {port} on 127.0.0.1 is already in use: pick another port"):
            server.start()
        assert server.pid is None


def test_missing_server_package_is_named(lab, monkeypatch: pytest.MonkeyPatch) -> None:
    kind = SERVER_KINDS["granian-wsgi"]
    monkeypatch.setitem(SERVER_KINDS, "granian-wsgi", dataclasses.replace(kind, module="granian_not_installed"))
    server = lab.server(Profile(server="granian-wsgi"))
    with pytest.raises(ServerError, match="needs the Python package 'granian_not_installed'.*run `make lab`"):
        server.start()
    assert server.pid is None


def _alive_and_named(p: psutil.Process) -> str | None:
    """The process's name, or None when it is gone or a zombie."""
    try:
        return None if p.status() == psutil.STATUS_ZOMBIE else p.name()
    except psutil.Error:
        return None


@pytest.mark.parametrize("kind", ["gunicorn-sync", "uvicorn", "granian-asgi"])
def test_crash_at_startup_shows_the_log_and_leaves_nothing(lab, kind: str) -> None:
    before = {p.pid for p in descendants()}
    server = lab.server(Profile(server=kind), env={"LAB_CACHE": "memcached"})
    with pytest.raises(ServerError) as caught:
        server.start()
    text = str(caught.value)
    assert kind in text and "LAB_CACHE" in text  # the settings' own sentence, from the log
    assert not server.running
    time.sleep(0.2)
    # PostgreSQL (the lab's, a descendant too) forks backends and autovacuum workers of
    # its own at any time: those are not the server's.
    after = {p.pid for p in descendants() if _alive_and_named(p) not in (None, "postgres")}
    assert after <= before


def test_start_each_reports_each_failure_and_start_together_stops_all(lab) -> None:
    """Servers start at once: ``start_each`` returns the error of the one that could not
    start and keeps the other running, pinned; ``start_together`` stops both and raises."""
    from lessons.server import start_each, start_together

    cpus = lab.cpu_plan.server
    good = lab.server(Profile(server="uvicorn"))
    bad = lab.server(Profile(server="uvicorn"), env={"LAB_CACHE": "memcached"})
    try:
        failed = start_each([bad, good], cpus)
        assert list(failed) == [0] and isinstance(failed[0], ServerError) and "LAB_CACHE" in str(failed[0])
        assert not bad.running and good.running and get(good.url, "/healthz")[0] == 200
        assert good.cpus == cpus
    finally:
        good.stop()
    again = lab.server(Profile(server="uvicorn"))
    with pytest.raises(ServerError, match="LAB_CACHE"):
        start_together([again, bad], cpus)
    assert not again.running and not bad.running


def test_a_killed_parent_leaves_no_server(fresh_home, no_external) -> None:
    """The kernel dies (SIGKILL): the reaper stops the servers and the services."""
    code = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from lessons import Lab
        from lessons.services import SeedSizes
        lab = Lab(home=Path({str(fresh_home)!r}), seed=SeedSizes(50, 5, 50), quiet=True)
        srv = lab.serve("tuned", workers=2, cache="none")
        pids = [p.pid for p in srv.processes()] + lab.services.pids
        print(" ".join(map(str, pids)), flush=True)
        time.sleep(120)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        pids = [int(x) for x in line.split()]
        assert len(pids) == 5, line  # master, 2 workers, PostgreSQL, Valkey
        procs_ = [psutil.Process(p) for p in pids]
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert not still_running(procs_, timeout=15)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
