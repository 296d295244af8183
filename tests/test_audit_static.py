"""The audit's static part (issue 14) on the sample project: its planted mistakes are
found, each where MISTAKES.md says and nothing else, whatever the cores; the clean variant
has no high finding; the facts child reads routes and middleware; the evidence names the
notebook to run or quotes the learner's records; and the ASGI hop prediction against
Django's own count. The rules, the server-command parser and the settings locator on small
projects written for each test are in test_audit_static_synthetic.py.

Nothing here starts a server (the settings child and the hop-counting child are
short-lived Python processes), so no machine lock is needed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from helpers import SAMPLE, findings_for
from lessons.audit import evidence
from lessons.audit.findings import Audit
from lessons.audit.project import locate, read_facts
from lessons.audit.rules_settings import asgi_hops


def planted() -> set[tuple[str, str, str]]:
    """(id, severity, where) of every row between MISTAKES.md's two markers."""
    text = (SAMPLE / "MISTAKES.md").read_text()
    table = text.split("<!-- findings -->")[1]
    rows = set()
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[a-z][a-z0-9-]+", cells[0]) and cells[0] != "id":
            rows.add((cells[0], cells[1], cells[2]))
    return rows


@pytest.fixture(scope="module")
def sample_facts() -> dict:
    return read_facts(locate(SAMPLE))


@pytest.fixture(scope="module")
def clean_facts() -> dict:
    return read_facts(locate(SAMPLE, settings="shop.settings_clean"))


def test_every_planted_mistake_is_found_where_it_is_and_nothing_else(sample_facts):
    rows = planted()
    assert len(rows) >= 14
    found = {(f.id, f.severity, f.where) for f in findings_for(sample_facts)}
    assert found == rows


@pytest.mark.parametrize("cores", [1, 2, 8, 64])
def test_the_planted_set_does_not_depend_on_the_cores(sample_facts, cores):
    assert {f.id for f in findings_for(sample_facts, cores=cores)} == {r[0] for r in planted()}


def test_clean_variant_has_no_high_finding_and_exits_0(clean_facts):
    found = findings_for(clean_facts)
    assert not [f for f in found if f.severity == "high"]
    ids = {f.id for f in found}
    assert not ids & {"debug-on", "profiler-installed", "conn-max-age-under-asgi", "redis-parser-class",
                      "db-no-connect-timeout", "db-no-statement-timeout", "locmem-several-workers",
                      "sync-only-middleware", "middleware-not-for-api", "pool-size"}
    assert Audit("p", "s", found).exit_status() == 0


def test_the_facts_child_reads_routes_and_middleware(sample_facts):
    own = {r["path"]: r for r in sample_facts["routes"] if r["in_project"]}
    assert set(own) == {"/api/products/", "/api/products/count/", "/api/products/<int:pk>/",
                        "/api/drf/products/"}
    assert own["/api/products/count/"]["is_async"] and not own["/api/products/"]["is_async"]
    assert own["/api/products/<int:pk>/"]["has_params"]
    assert own["/api/drf/products/"]["view"] == "catalog.views.ProductListAPI"
    assert (own["/api/products/"]["file"], own["/api/products/"]["line"]) == ("catalog/views.py", 8)
    assert sample_facts["DATABASES"]["default"]["PASSWORD"] == "(removed)"
    mw = {m["path"]: m for m in sample_facts["middleware"]}
    assert not mw["silk.middleware.SilkyMiddleware"]["async_capable"]
    assert mw["django.middleware.csrf.CsrfViewMiddleware"]["hooks"] == [
        "process_request", "process_view", "process_response"]


def test_evidence_without_records_names_the_notebook_to_run(sample_facts, no_records):
    notebook = {"debug-on": "10", "profiler-installed": "10", "conn-max-age-under-asgi": "08",
                "db-no-connect-timeout": "08", "db-no-statement-timeout": "08", "redis-parser-class": "07",
                "locmem-several-workers": "07", "sync-only-middleware": "05",
                "middleware-not-for-api": "05", "sync-views-under-asgi": "01",
                "uvicorn-worker-deprecated": "02", "workers-over-cores": "02",
                "max-requests-without-preload": "02"}
    for f in findings_for(sample_facts):
        assert f.evidence == f"run notebook {notebook[f.id]} to measure it here", f.id


def test_evidence_quotes_the_learners_records(sample_facts, no_records):
    (no_records / "notebooks").mkdir()
    record = {"quick": False, "measurements": {
        "connections opened": {"uvicorn": {"CONN_MAX_AGE=60": 29}, "gunicorn-sync": {"CONN_MAX_AGE=60": 1}},
        "requests one at a time": 29,
        "connections held": {"uvicorn": {"CONN_MAX_AGE=60": {"15": 4, "1234": 77}}},
        "statement timeout": {"limit ms": 400, "query ms": 1500, "status": 504, "elapsed ms": 401.5,
                              "next status": 200}}}
    (no_records / "notebooks" / "08_db_connections.json").write_text(json.dumps(record))
    evidence.set_results_dir(no_records)
    by_id = {f.id: f for f in findings_for(sample_facts)}
    leak = by_id["conn-max-age-under-asgi"].evidence
    assert leak.startswith("Notebook 08 measured 29 connections opened for 29 requests")
    assert "77 still open after 1,234 requests" in leak
    assert "answered HTTP 504 after 402 ms with statement_timeout = 400 ms" in by_id["db-no-statement-timeout"].evidence
    # a record without the key a rule reads still sends the learner to the notebook
    assert by_id["db-no-connect-timeout"].evidence == "run notebook 08 to measure it here"


# ---------------------------------------------------------------------------------------
# the ASGI hop prediction against Django itself
# ---------------------------------------------------------------------------------------

_HOPS_CHILD = r'''
import asyncio, json, sys
from django.conf import settings
settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF="hopurls", MIDDLEWARE=[], SECRET_KEY="x",
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
                    "django.contrib.messages"],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies", DATABASES={})
import django; django.setup()
from asgiref.sync import AsyncToSync, SyncToAsync
from django.core.handlers.asgi import ASGIHandler
n = [0]
s2a, a2s = SyncToAsync.__call__, AsyncToSync.__call__
async def c1(self, *a, **k):
    n[0] += 1; return await s2a(self, *a, **k)
def c2(self, *a, **k):
    n[0] += 1; return a2s(self, *a, **k)
SyncToAsync.__call__, AsyncToSync.__call__ = c1, c2
async def one(app, path):
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"host", b"x")], "server": ("x", 80), "client": ("127.0.0.1", 1), "scheme": "http",
             "asgi": {"version": "3.0"}, "http_version": "1.1", "root_path": ""}
    body = [{"type": "http.request", "body": b"", "more_body": False}]
    async def receive():
        if body: return body.pop(0)
        await asyncio.sleep(30)
    sent = []
    async def send(m): sent.append(m)
    await app(scope, receive, send)
    return sent[0]["status"]
async def main():
    out = {}
    for name, stack in json.loads(sys.argv[1]).items():
        settings.MIDDLEWARE = stack
        app = ASGIHandler()
        for path in ("/sync", "/async"):
            await one(app, path)
            n[0] = 0
            assert await one(app, path) == 200
            out[name + path] = n[0]
    print(json.dumps(out))
asyncio.run(main())
'''


def test_asgi_hops_prediction_equals_djangos_own_count(tmp_path):
    """asgi_hops reproduces, for several stacks, the sync_to_async + async_to_sync calls a
    request makes through Django's ASGIHandler (the lab's hop definition)."""
    (tmp_path / "hopurls.py").write_text(textwrap.dedent('''
        from django.http import JsonResponse
        from django.urls import path
        def s(request): return JsonResponse({})
        async def a(request): return JsonResponse({})
        urlpatterns = [path("sync", s), path("async", a)]
    '''))
    (tmp_path / "hopmw.py").write_text(textwrap.dedent('''
        from asgiref.sync import markcoroutinefunction
        def timing(get_response):
            def middleware(request):
                return get_response(request)
            return middleware
        class AsyncOnly:
            sync_capable, async_capable = False, True
            def __init__(self, get_response):
                self.get_response = get_response
                markcoroutinefunction(self)
            async def __call__(self, request):
                return await self.get_response(request)
    '''))
    default = ["django.middleware.security.SecurityMiddleware",
               "django.contrib.sessions.middleware.SessionMiddleware",
               "django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware",
               "django.contrib.auth.middleware.AuthenticationMiddleware",
               "django.contrib.messages.middleware.MessageMiddleware",
               "django.middleware.clickjacking.XFrameOptionsMiddleware"]
    stacks = {"none": [], "default": default, "sync inner": default + ["hopmw.timing"],
              "sync outer": ["hopmw.timing"] + default,
              "async-only between": default[:2] + ["hopmw.AsyncOnly", "hopmw.timing"] + default[2:]}
    done = subprocess.run([sys.executable, "-c", _HOPS_CHILD, json.dumps(stacks)], cwd=tmp_path,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    counted = json.loads(done.stdout.splitlines()[-1])
    mix = lambda *hooks: {"sync_capable": True, "async_capable": True, "mixin": True, "hooks": list(hooks)}  # noqa: E731
    rq = ("process_request", "process_response")
    facts = [mix(*rq), mix(*rq), mix(*rq), mix("process_request", "process_view", "process_response"),
             mix("process_request"), mix(*rq), mix("process_response")]
    sync_only = {"sync_capable": True, "async_capable": False, "mixin": False, "hooks": []}
    async_only = {"sync_capable": False, "async_capable": True, "mixin": False, "hooks": []}
    predicted_stacks = {"none": [], "default": facts, "sync inner": facts + [sync_only],
                        "sync outer": [sync_only] + facts,
                        "async-only between": facts[:2] + [async_only, sync_only] + facts[2:]}
    predicted = {f"{name}/{kind}": asgi_hops(stack, view_is_async=kind == "async")
                 for name, stack in predicted_stacks.items() for kind in ("sync", "async")}
    assert predicted == counted
    assert counted["default/sync"] == 16 and counted["none/async"] == 2  # notebook 01's counts
