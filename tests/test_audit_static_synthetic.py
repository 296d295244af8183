"""The audit's static part (issue 14) on small projects each test writes into its tmp_path:
the rules on synthetic facts, the server-command parser (Dockerfile, Procfile, scripts,
gunicorn.conf.py), the settings locator, and the review fixes, each a logic bug found
against real project layouts. The sample project's planted mistakes and the ASGI hop
prediction are in test_audit_static.py.

Nothing here starts a server (the Ninja test's settings child is a short-lived Python
process), so no machine lock is needed.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from helpers import findings_for
from lessons.audit import evidence
from lessons.audit.project import locate, read_facts
from lessons.audit.settings_source import SettingsSource
from lessons.audit.sources import find_commands


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
