"""The audit's static part (issue 14): the sample project's planted mistakes are found, each
where MISTAKES.md says and nothing else; the clean variant has no high finding; the rules,
the server-command parser, the settings locator and the ASGI hop prediction on their own.

Nothing here starts a server (the settings child is a short-lived Python process), so no
machine lock is needed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lessons.audit import evidence
from lessons.audit.findings import Audit, context_for, static_findings
from lessons.audit.project import locate, read_facts
from lessons.audit.rules_settings import asgi_hops
from lessons.audit.settings_source import SettingsSource
from lessons.audit.sources import find_commands

SAMPLE = Path(__file__).parent / "sample_project"


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


@pytest.fixture()
def no_records(tmp_path: Path):
    evidence.set_results_dir(tmp_path)
    yield tmp_path
    evidence.set_results_dir(None)


def findings_for(facts: dict, root: Path = SAMPLE, cores: int | None = None):
    return static_findings(context_for(root.resolve(), facts, cores=cores))


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


# ---------------------------------------------------------------------------------------
# rules on synthetic facts
# ---------------------------------------------------------------------------------------

def write_project(root: Path, settings: str, files: dict[str, str] | None = None) -> Path:
    (root / "proj").mkdir(parents=True)
    (root / "manage.py").write_text("import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n")
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "settings.py").write_text(textwrap.dedent(settings))
    for name, text in (files or {}).items():
        (root / name).write_text(textwrap.dedent(text))
    return root


def facts(**over) -> dict:
    base = {"settings_module": "proj.settings", "settings_file": "proj/settings.py", "DEBUG": False,
            "INSTALLED_APPS": [], "MIDDLEWARE": [], "middleware": [], "DATABASES": {}, "CACHES": {},
            "routes": [], "versions": {"redis": "8.1.0", "uvicorn": "0.54.0"}}
    return {**base, **over}


def ids(root: Path, f: dict, cores: int = 2) -> dict[str, list]:
    out: dict[str, list] = {}
    for finding in findings_for(f, root, cores=cores):
        out.setdefault(finding.id, []).append(finding)
    return out


def test_a_profiler_under_if_debug_is_not_reported(tmp_path, no_records):
    root = write_project(tmp_path, '''
        DEBUG = False
        MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
        if DEBUG:
            MIDDLEWARE.insert(0, "silk.middleware.SilkyMiddleware")
        MIDDLEWARE += ["debug_toolbar.middleware.DebugToolbarMiddleware"]
    ''')
    mws = ["silk.middleware.SilkyMiddleware", "django.middleware.common.CommonMiddleware",
           "debug_toolbar.middleware.DebugToolbarMiddleware"]
    found = ids(root, facts(MIDDLEWARE=mws))["profiler-installed"]
    assert [(f.severity, f.where, "toolbar" in f.message) for f in found] == [("low", "proj/settings.py:6", True)]


def test_pool_size_async_views_and_an_importable_parser(tmp_path, no_records):
    root = write_project(tmp_path, '''
        DATABASES = {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "OPTIONS": {"pool": True, "connect_timeout": 3, "options": "-c statement_timeout=1000"},
            }
        }
        CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "OPTIONS": {"PARSER_CLASS": "x.Y"}}}
    ''', {"Procfile": "web: gunicorn proj.wsgi:application --workers 30 --threads 8\n"})
    db = {"default": {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 60,
                      "OPTIONS": {"pool": True, "connect_timeout": 3, "options": "-c statement_timeout=1000"}}}
    caches = {"default": {"BACKEND": "django_redis.cache.RedisCache", "OPTIONS": {"PARSER_CLASS": "x.Y"},
                          "parser_error": None}}
    routes = [{"path": "/a/", "view": "proj.views.a", "is_async": True, "has_params": False,
               "in_project": True, "file": "proj/views.py", "line": 3}]
    found = ids(root, facts(DATABASES=db, CACHES=caches, routes=routes))
    (pool,) = found["pool-size"]
    assert pool.where == "proj/settings.py:5"
    assert "min_size 4" in pool.message and "runs 8 threads but pools 4" in pool.message
    assert "30 workers x 4 = 120 connections" in pool.message
    assert [f.severity for f in found["redis-parser-class"]] == ["low"]
    assert found["async-views-under-wsgi"][0].where == "proj/views.py:3"
    # WSGI: persistent connections are fine, nothing ASGI-only is reported
    assert not set(found) & {"conn-max-age-under-asgi", "sync-views-under-asgi", "workers-over-cores",
                             "db-no-connect-timeout", "db-no-statement-timeout"}


def test_no_server_command_is_said_and_asgi_rules_stay_silent(tmp_path, no_records):
    root = write_project(tmp_path, "CONN_MAX_AGE_UNUSED = 1\n")
    routes = [{"path": "/a/", "view": "proj.views.a", "is_async": False, "has_params": False,
               "in_project": True, "file": "proj/views.py", "line": 3}]
    db = {"default": {"ENGINE": "django.db.backends.sqlite3", "CONN_MAX_AGE": 60, "OPTIONS": {}}}
    found = ids(root, facts(routes=routes, DATABASES=db))
    assert set(found) == {"server-command-not-found"}


# ---------------------------------------------------------------------------------------
# server commands and the settings locator
# ---------------------------------------------------------------------------------------

def test_dockerfile_procfile_and_script_commands(tmp_path):
    (tmp_path / "Dockerfile").write_text(
        'FROM python:3.12\nCMD ["gunicorn", "proj.asgi:application", "-k", "uvicorn_worker.UvicornWorker", \\\n'
        '     "-w", "${WEB_CONCURRENCY:-6}", "--max-requests", "500", "--preload"]\n')
    (tmp_path / "Procfile").write_text("release: python manage.py migrate\n"
                                       "web: sh -c 'cd /app && uvicorn proj.asgi:application --workers=3'\n")
    (tmp_path / "start.sh").write_text("#!/bin/sh\nexec python -m gunicorn proj.wsgi:application --threads 4\n")
    cmds = {c.where: c for c in find_commands(tmp_path)}
    assert set(cmds) == {"Dockerfile:2", "Procfile:2", "start.sh:2"}
    docker = cmds["Dockerfile:2"]
    assert (docker.app, docker.interface, docker.workers(2), docker.setting("max_requests", 2)) == \
        ("proj.asgi:application", "asgi", 6, 500)
    assert docker.setting("preload_app", 2) is True
    assert (cmds["Procfile:2"].program, cmds["Procfile:2"].workers(2)) == ("uvicorn", 3)
    script = cmds["start.sh:2"]
    assert (script.interface, script.worker_class, script.workers(2)) == ("wsgi", "gthread", 1)


def test_gunicorn_config_values_follow_the_cores(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text(
        "import os, multiprocessing\ncores = multiprocessing.cpu_count()\n"
        "workers = int(os.environ.get('WORKERS', cores * 2 + 1))\nworker_class = 'sync'\n")
    (cmd,) = find_commands(tmp_path)
    assert (cmd.where, cmd.interface, cmd.workers(4), cmd.workers_formula()) == \
        ("gunicorn.conf.py:1", "wsgi", 9, "2 x cores + 1")


def test_settings_locator_follows_star_imports(tmp_path):
    root = write_project(tmp_path, '''
        DEBUG = True
        DATABASES = {"default": {"ENGINE": "x",
                                 "CONN_MAX_AGE": 60}}
    ''', {"proj/prod.py": '''
        from .settings import *
        DEBUG = False
        DATABASES["default"]["OPTIONS"] = {"pool": {"max_size": 8}}
    '''})
    src = SettingsSource.load(root, "proj.prod", None)
    assert src.where("DEBUG") == "proj/prod.py:3"
    assert src.where_key("DATABASES", "default", "CONN_MAX_AGE") == "proj/settings.py:4"
    assert src.where_key("DATABASES", "default", "OPTIONS", "pool") == "proj/prod.py:4"
    assert src.where("SECRET_KEY") == "setting SECRET_KEY"


# ---------------------------------------------------------------------------------------
# review fixes (each a logic bug found against real project layouts and the pinned sources)
# ---------------------------------------------------------------------------------------

def test_settings_package_star_imports_resolve_from_the_package_itself(tmp_path):
    """``proj/settings/__init__.py`` with ``from .base import *`` means proj.settings.base
    (not proj.base); a ``try: from .local import *`` is followed too."""
    (tmp_path / "proj" / "settings").mkdir(parents=True)
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "proj" / "settings" / "__init__.py").write_text(
        "from .base import *\ntry:\n    from .local import *\nexcept ImportError:\n    pass\n")
    (tmp_path / "proj" / "settings" / "base.py").write_text("SECRET_KEY = 'x'\nDEBUG = False\n")
    (tmp_path / "proj" / "settings" / "local.py").write_text("LOCAL_ONLY = 1\n")
    src = SettingsSource.load(tmp_path, "proj.settings", None)
    assert src.where("DEBUG") == "proj/settings/base.py:2"
    assert src.where("LOCAL_ONLY") == "proj/settings/local.py:1"


def test_debug_read_from_the_environment_is_said_so(tmp_path, no_records):
    root = write_project(tmp_path, '''
        import os
        DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
    ''')
    (found,) = ids(root, facts(DEBUG=True))["debug-on"]
    assert found.where == "proj/settings.py:3"
    assert found.message.startswith("DEBUG is True in the environment the audit ran in")
    assert found.fix.startswith("Make DEBUG's default False")
    literal = write_project(tmp_path / "lit", "DEBUG = True\n")
    (found,) = ids(literal, facts(DEBUG=True))["debug-on"]
    assert found.message.startswith("DEBUG is True: ") and found.fix.startswith("Set DEBUG = False")


def test_uvicorn_interface_flag_and_continued_script_lines(tmp_path):
    (tmp_path / "start.sh").write_text("#!/bin/sh\nexec uvicorn proj.wsgi:application \\\n"
                                       "    --interface wsgi \\\n    --workers 4\n")
    (cmd,) = find_commands(tmp_path)
    assert (cmd.where, cmd.program, cmd.interface, cmd.workers(2)) == ("start.sh:2", "uvicorn", "wsgi", 4)


def test_dockerfile_entrypoint_takes_the_cmd_as_its_arguments(tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.12 AS build\nCMD [\"python\", \"-m\", \"pytest\"]\n"
        "FROM python:3.12\nENTRYPOINT [\"gunicorn\"]\nCMD [\"proj.wsgi:application\", \"-w\", \"2\"]\n"
        "CMD [\"proj.asgi:application\", \"-k\", \"uvicorn.workers.UvicornWorker\", \"-w\", \"8\"]\n")
    (cmd,) = find_commands(tmp_path)  # the stage's last CMD wins
    assert (cmd.where, cmd.app, cmd.interface, cmd.workers(2)) == \
        ("Dockerfile:6", "proj.asgi:application", "asgi", 8)
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.12\nENTRYPOINT [\"/docker-entrypoint.sh\"]\n"
        "CMD [\"gunicorn\", \"proj.wsgi:application\", \"--threads\", \"4\"]\n")
    (cmd,) = find_commands(tmp_path)
    assert (cmd.where, cmd.app, cmd.worker_class) == ("Dockerfile:3", "proj.wsgi:application", "gthread")


def test_workers_over_cores_tells_a_fixed_count_from_a_per_core_formula(tmp_path, no_records):
    root = write_project(tmp_path, "DEBUG = False\n", {
        "Procfile": "web: uvicorn proj.asgi:application --workers ${WEB_CONCURRENCY:-4}\n"})
    (fixed,) = ids(root, facts(), cores=2)["workers-over-cores"]
    assert fixed.severity == "low" and fixed.where == "Procfile:1"
    assert "fewer than 4 cores, as this one with 2, while WEB_CONCURRENCY is unset" in fixed.message
    assert "workers-over-cores" not in ids(root, facts(), cores=8)
    (root / "Procfile").unlink()
    (root / "gunicorn.conf.py").write_text("import multiprocessing\nworker_class = 'uvicorn_worker.UvicornWorker'\n"
                                           "workers = multiprocessing.cpu_count() * 2 + 1\n")
    (formula,) = ids(root, facts(), cores=8)["workers-over-cores"]
    assert formula.severity == "medium" and "(17 on this machine's 8 cores)" in formula.message


def test_the_toolbar_is_compared_with_debug_alone_and_debug_quotes_p50_and_p99(tmp_path, no_records):
    (no_records / "notebooks").mkdir()
    cost = {"no profiler": {"p50_ms": 3.0, "p99_ms": 7.0, "runs": 5},
            "DEBUG=True": {"p50_ms": 2.5, "p99_ms": 9.0, "runs": 5},
            "debug toolbar": {"p50_ms": 26.0, "p99_ms": 60.0, "runs": 5}}
    (no_records / "notebooks" / "10_profiling.json").write_text(
        json.dumps({"quick": False, "measurements": {"cost": cost}}))
    evidence.set_results_dir(no_records)
    root = write_project(tmp_path, 'DEBUG = True\nMIDDLEWARE = ["debug_toolbar.middleware.DebugToolbarMiddleware"]\n')
    found = ids(root, facts(DEBUG=True, MIDDLEWARE=["debug_toolbar.middleware.DebugToolbarMiddleware"]))
    toolbar = found["profiler-installed"][0].evidence
    assert "p50 26 ms and p99 60 ms with the toolbar and DEBUG on against 2.5 ms and 9 ms with DEBUG on alone" in toolbar
    assert "p50 2.5 ms and p99 9 ms with DEBUG=True against 3 ms and 7 ms without" in found["debug-on"][0].evidence


def test_database_wording_follows_the_driver_and_the_backend(tmp_path, no_records):
    root = write_project(tmp_path, "DEBUG = False\n", {"Procfile": "web: uvicorn proj.asgi:application\n"})
    pg = {"default": {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 0, "OPTIONS": {}}}
    three = ids(root, facts(DATABASES=pg, versions={"psycopg": "3.3.9"}))["db-no-connect-timeout"][0]
    assert "psycopg 3.3.9 gives up each connection attempt only after its default of 130 s" in three.message
    two = ids(root, facts(DATABASES=pg, versions={"psycopg": None, "psycopg2": "2.9.10"}))["db-no-connect-timeout"][0]
    assert "unset means wait indefinitely" in two.message
    lite = {"default": {"ENGINE": "django.db.backends.sqlite3", "CONN_MAX_AGE": 60, "OPTIONS": {}}}
    (leak,) = ids(root, facts(DATABASES=lite))["conn-max-age-under-asgi"]
    assert "psycopg" not in leak.fix and leak.fix.startswith("Set CONN_MAX_AGE = 0 on 'default'")


def test_third_party_sync_only_middleware_is_not_asked_to_be_rewritten(tmp_path, no_records):
    root = write_project(tmp_path, "DEBUG = False\n", {"Procfile": "web: uvicorn proj.asgi:application\n"})
    mw = [{"path": "vendor.Mw", "sync_capable": True, "async_capable": False, "mixin": False, "hooks": [],
           "file": "/site-packages/vendor.py", "line": 1},
          {"path": "proj.mw.timing", "sync_capable": True, "async_capable": False, "mixin": False, "hooks": [],
           "file": "proj/mw.py", "line": 1}]
    found = ids(root, facts(MIDDLEWARE=["vendor.Mw", "proj.mw.timing"], middleware=mw))["sync-only-middleware"]
    assert [f.fix.split(":")[0].split(" ")[0] for f in found] == ["It", "Rewrite"]
    assert "makes 5 thread hops per request: 3 if all were async-native, 5 with only this one removed" \
        in found[0].message


def test_ninja_endpoints_count_as_the_projects_own_views(tmp_path):
    """django-ninja routes to its own wrapper (in site-packages); the facts child reports
    the project's function behind it, so sync-views-under-asgi sees Ninja endpoints."""
    root = write_project(tmp_path, '''
        SECRET_KEY = "x"
        INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
        ROOT_URLCONF = "proj.urls"
        DATABASES = {}
    ''', {"proj/urls.py": '''
        from django.urls import path
        from ninja import NinjaAPI
        api = NinjaAPI()

        @api.get("/items")
        def items(request):
            return []

        @api.get("/count")
        async def count(request):
            return 0

        urlpatterns = [path("api/", api.urls)]
    '''})
    own = {r["path"]: r for r in read_facts(locate(root))["routes"] if r["in_project"]}
    assert {p: (r["view"], r["is_async"], r["file"]) for p, r in own.items()} == {
        "/api/items": ("proj.urls.items", False, "proj/urls.py"),
        "/api/count": ("proj.urls.count", True, "proj/urls.py")}
