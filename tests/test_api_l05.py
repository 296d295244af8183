"""
Lesson 5's endpoints and middleware: the headers each middleware preset sends, CSRF,
``request.user`` without AuthenticationMiddleware, DRF's default authentication
with and without AuthenticationMiddleware and CsrfViewMiddleware (``/l05/drf-whoami``),
``demo_session()``, and the timing middleware written three ways (the guide's class with
the two flags added, a ``MiddlewareMixin`` subclass, Django's documented pattern) and the
hops each timing middleware adds, against real servers on the lab's PostgreSQL (and one on
its SQLite database, where a test says so), and in-process through the microbench.

Functional only: counts are exact integers from the counters; no timing is asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import counts, fetch, headers
from lessons import microbench, probes
from lessons.counters import per_request
from lessons.profile import Profile
from startproject import DEFAULT_MIDDLEWARE

ROOT = Path(__file__).resolve().parent.parent
MIXIN = "lab.middleware.MixinTimingMiddleware"
FLAGS = "lab.middleware.GuideTimingFlagsMiddleware"
SERVER_TIMING = "lab.middleware.ServerTimingMiddleware"
GUIDE_TIMING = "lab.middleware.GuideTimingMiddleware"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def session(lab) -> str:
    """A logged-in session's key, made by ``demo_session()`` in a child process (this
    test process keeps Django unconfigured)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lab_project"), "DJANGO_SETTINGS_MODULE": "lab.settings",
           "LAB_DATABASE_URL": lab.services.database_url, "LAB_REDIS_URL": lab.services.redis_url,
           "LAB_SECRET_KEY": lab._secret_key(), "LAB_MIDDLEWARE": "none"}
    code = "import django; django.setup(); from api.l05 import demo_session; print(demo_session())"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT / "lab_project",
                         capture_output=True, text=True, check=True, timeout=120)
    key = out.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[a-z0-9]{32}", key)
    return key


@pytest.fixture(scope="module")
def servers(lab) -> Iterator[dict[str, str]]:
    profiles = {
        "default": Profile(middleware="default"),
        "minimal": Profile(server="uvicorn", middleware="minimal"),
        "none": Profile(server="uvicorn", middleware="none", instrument=True),
        "mixin": Profile(server="uvicorn", middleware=MIXIN, instrument=True),
        "server-timing": Profile(server="uvicorn", middleware=SERVER_TIMING, instrument=True),
        "guide-timing": Profile(server="uvicorn", middleware=GUIDE_TIMING, instrument=True),
    }
    with lab.serve_all(profiles) as running:
        yield running.urls


def _drf(url: str, method: str, session: str | None = None) -> probes.Reply:
    sent = {**JSON, **({"Cookie": f"sessionid={session}"} if session else {})}
    return fetch(url, "/l05/drf-whoami", method, sent, b"{}" if method == "POST" else None)


def test_drf_session_authentication_needs_authentication_middleware(servers, session):
    logged_in = _drf(servers["default"], "GET", session)
    assert (logged_in.status, logged_in.json()) == (
        200, {"user": "lab-demo", "authenticated by": "SessionAuthentication"})
    # The guide's minimal stack keeps the session but not AuthenticationMiddleware.
    for stack in ("minimal", "none"):
        reply = _drf(servers[stack], "GET", session)
        assert (reply.status, reply.json()) == (200, {"user": "anonymous", "authenticated by": None})


def test_drf_views_are_csrf_exempt_and_check_csrf_for_session_users(servers, session):
    # No cookie: CsrfViewMiddleware lets the DRF view through; DRF authenticates nobody.
    assert _drf(servers["default"], "POST").status == 200
    # A logged-in session: DRF's SessionAuthentication runs its own CSRF check.
    refused = _drf(servers["default"], "POST", session)
    assert refused.status == 403
    assert refused.json()["detail"].startswith("CSRF Failed")
    # Without AuthenticationMiddleware the user is anonymous, and the check is skipped.
    assert _drf(servers["minimal"], "POST", session).json()["user"] == "anonymous"


def test_demo_session_reuses_its_user(lab, session):
    import psycopg

    with psycopg.connect(lab.services.database_url) as conn:
        users = conn.execute("SELECT count(*) FROM auth_user WHERE username = 'lab-demo'").fetchone()[0]
    assert users == 1


def test_mixin_with_both_flags_still_hops_once_per_hook(servers):
    reply = fetch(servers["mixin"], "/l01/hello-async")
    assert re.fullmatch(r"app;dur=[0-9]+\.[0-9]{3}", headers(reply)["server-timing"])
    base = per_request(servers["none"], "/l01/hello-async", 5)
    mixin = per_request(servers["mixin"], "/l01/hello-async", 5)
    assert mixin["sync_to_async"] == base["sync_to_async"] + 2  # process_request, process_response
    assert mixin["async_to_sync"] == base["async_to_sync"] == 0


def test_the_guides_class_with_the_flags_cannot_serve_under_asgi(lab):
    # Every request fails, /healthz included: the server never gets ready.
    from lessons.server import ServerError

    server = lab.server(Profile(server="uvicorn", middleware=FLAGS))
    server.ready_timeout = 5.0
    with pytest.raises(ServerError, match="did not answer /healthz"):
        server.start()
    assert not server.running


def test_middleware_microbench_counts_one_hop_per_hook(lab):
    result = microbench.run(lab, "middleware", stack=DEFAULT_MIDDLEWARE, rounds=2, n_wsgi=2, n_asgi=2,
                            count={"flags": [FLAGS], "mixin": [MIXIN]})
    assert result["configs"][0] == "none" and len(result["configs"]) == len(DEFAULT_MIDDLEWARE) + 1
    assert all(len(row) == len(result["configs"]) for row in result["wsgi"] + result["asgi"])
    steps = microbench.middleware_steps(result)
    hooks = {"SecurityMiddleware": 2, "SessionMiddleware": 2, "CommonMiddleware": 2, "CsrfViewMiddleware": 3,
             "AuthenticationMiddleware": 1, "MessageMiddleware": 2, "XFrameOptionsMiddleware": 1}
    assert steps["ASGI hops"].to_dict() == hooks
    assert all(h == {"sync_to_async": 0, "async_to_sync": 0} for h in result["hops"]["wsgi"].values())
    asgi = result["hops"]["asgi"]
    assert asgi["mixin"]["sync_to_async"] == asgi["none"]["sync_to_async"] + 2
    assert result["errors"]["asgi"]["flags"].startswith("TypeError")
    assert "flags" not in result["errors"]["wsgi"] and "flags" in result["hops"]["wsgi"]
    median, q1, q3 = microbench.paired(result, "wsgi", "none", "+ XFrameOptionsMiddleware")
    assert q1 <= median <= q3
    json.dumps(result)  # plain JSON all the way


# Middleware presets and timing middleware ###############################################

# Headers the HTTP server adds itself, whatever the Django stack does.
SERVER_HEADERS = {"date", "server", "connection", "transfer-encoding"}
SECURITY_HEADERS = {"x-content-type-options", "referrer-policy", "cross-origin-opener-policy"}


def django_headers(reply: probes.Reply) -> set[str]:
    return set(headers(reply)) - SERVER_HEADERS


def test_headers_per_middleware_preset(servers, counted_wsgi, minimal_sqlite):
    default = fetch(counted_wsgi, "/l01/hello")
    minimal = fetch(minimal_sqlite, "/l01/hello")
    none = fetch(servers["none"], "/l01/hello")
    # CommonMiddleware sets Content-Length; without it the servers send chunked bodies.
    assert django_headers(default) == {"content-type", "content-length", "x-frame-options",
                                       *SECURITY_HEADERS}
    assert django_headers(minimal) == {"content-type", "content-length", *SECURITY_HEADERS}
    assert django_headers(none) == {"content-type"}
    assert headers(none)["transfer-encoding"] == "chunked"
    assert headers(default)["x-frame-options"] == "DENY"
    for response in (default, minimal):
        assert headers(response)["x-content-type-options"] == "nosniff"
        assert headers(response)["referrer-policy"] == "same-origin"
        assert headers(response)["cross-origin-opener-policy"] == "same-origin"
    assert default.body == minimal.body == none.body == b'{"message": "hello"}'


CROSS_SITE = {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"}


def test_csrf(counted_wsgi, minimal_sqlite, servers):
    for sent in ({}, CROSS_SITE):
        assert fetch(counted_wsgi, "/l05/echo", "POST", sent, "a=1").status == 403
        for url in (minimal_sqlite, servers["none"]):
            response = fetch(url, "/l05/echo", "POST", sent, "a=1")
            assert (response.status, response.json()) == (200, {"ok": True, "method": "POST"})
    assert fetch(servers["none"], "/l05/echo").status == 405


def test_whoami(counted_wsgi, minimal_sqlite):
    assert fetch(counted_wsgi, "/l05/whoami").json() == {"user": "anonymous"}
    assert fetch(minimal_sqlite, "/l05/whoami").json() == {
        "user": None,
        "note": "request.user is not set: AuthenticationMiddleware is not installed.",
    }


def test_server_timing_middleware_adds_no_hop_under_asgi(servers):
    response = fetch(servers["server-timing"], "/l01/hello-async")
    assert re.fullmatch(r"app;dur=[0-9]+\.[0-9]{3}", headers(response)["server-timing"])
    assert "server-timing" not in headers(fetch(servers["none"], "/l01/hello-async"))
    for path in ("/l01/hello-async", "/l01/hello"):
        assert counts(servers["server-timing"], path) == counts(servers["none"], path)


def test_guide_timing_middleware_adds_hops_under_asgi(servers):
    response = fetch(servers["guide-timing"], "/l01/hello-async")
    assert re.fullmatch(r"[0-9]+\.[0-9]{3}", headers(response)["x-request-duration"])
    base = counts(servers["none"], "/l01/hello-async")
    guide = counts(servers["guide-timing"], "/l01/hello-async")
    # Into a thread for the middleware, back onto the loop for the async view.
    assert guide["sync_to_async"] == base["sync_to_async"] + 1
    assert (base["async_to_sync"], guide["async_to_sync"]) == (0, 1)
