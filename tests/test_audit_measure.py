"""The measured part of ``lessons audit`` (``lessons/audit/measure.py`` and the modules it
uses) on the sample project (``tests/sample_project``): the wrapper settings, exact counts
per request compared with what the views do, the bad-input sentences, ``--apply`` leaving
the project's files as they were, and nothing left running.  Tests that start servers or
PostgreSQL run under the machine lock; only those that time something are ``measures``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from helpers import descendants, fetch
from lessons import config
from lessons.audit.project import AuditError, locate, read_facts

SAMPLE = Path(__file__).resolve().parent / "sample_project"
FIXTURE = SAMPLE / "catalog" / "fixtures" / "products.json"
CLEAN = "shop.settings_clean"   # SecurityMiddleware + CommonMiddleware, no profiler
LIST, COUNT, DRF = "/api/products/", "/api/products/count/", "/api/drf/products/"


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def clean() -> object:
    return locate(SAMPLE, settings=CLEAN)


@pytest.fixture(scope="module")
def facts(clean) -> dict:
    return read_facts(clean)


def tree_hash(root: Path) -> str:
    """Every file under ``root`` (names and bytes), __pycache__ included."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


# The wrapper settings, read in a child (no server) #####################################


def wrapped(project, overrides, code: str) -> dict:
    """Run ``code`` (which prints one JSON line) with the wrapper settings, as a server would."""
    from lessons.audit.wrapper import child_env

    done = subprocess.run([project.python, "-c", "import django; django.setup()\n" + code],
                          env=child_env(project, overrides), cwd=project.root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_wrapper_points_every_alias_at_the_audit_services_and_keeps_the_rest():
    from lessons.audit.wrapper import base_overrides

    project = locate(SAMPLE)
    overrides = base_overrides("postgresql://u:secret@127.0.0.1:5999/audit_x", "redis://127.0.0.1:6999/0")
    got = wrapped(project, overrides.with_settings(MIDDLEWARE=["django.middleware.common.CommonMiddleware"]), (
        "import json; from django.conf import settings as s\n"
        "print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'mw': s.MIDDLEWARE,"
        " 'db': s.DATABASES['default'], 'caches': s.CACHES, 'apps': s.INSTALLED_APPS,"
        " 'module': s.SETTINGS_MODULE}, default=str))"))
    assert got["module"] == "p99lab_audit_settings"
    assert got["debug"] is False and got["hosts"] == ["127.0.0.1", "localhost"]
    assert got["mw"] == ["django.middleware.common.CommonMiddleware"]
    db = got["db"]
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == \
        ("audit_x", "u", "secret", "127.0.0.1", "5999")
    assert db["CONN_MAX_AGE"] == 60 and db["CONN_HEALTH_CHECKS"] is True   # the project's own
    # The Redis cache goes to the lab's Valkey, database 1 as the project's; its OPTIONS stay.
    assert got["caches"]["default"]["LOCATION"] == "redis://127.0.0.1:6999/1"
    assert got["caches"]["default"]["OPTIONS"]["PARSER_CLASS"] == "redis.connection.HiredisParser"
    assert got["caches"]["local"]["BACKEND"].endswith("LocMemCache")
    assert "silk" in got["apps"]


def test_wrapper_drops_server_options_and_merges_the_rest():
    from lessons.audit.wrapper import base_overrides

    project = locate(SAMPLE, settings=CLEAN)
    overrides = base_overrides("postgresql://lab@127.0.0.1:5999/audit_x", "").with_database(
        CONN_MAX_AGE=0, OPTIONS={"sslmode": "disable"})
    db = wrapped(project, overrides, (
        "import json; from django.conf import settings as s\n"
        "print(json.dumps(s.DATABASES['default'], default=str))"))
    assert db["OPTIONS"] == {"pool": {"min_size": 2, "max_size": 4, "timeout": 2}, "connect_timeout": 5,
                             "options": "-c statement_timeout=5000", "sslmode": "disable"}


def test_default_paths_are_the_projects_own_parameterless_routes(facts):
    from lessons.audit.measure import default_paths

    assert default_paths(facts) == [LIST, COUNT, DRF]


def test_a_missing_server_package_is_one_sentence(monkeypatch):
    import dataclasses

    from lessons.audit.serve import check_kinds
    from lessons.server_kinds import SERVER_KINDS

    kind = SERVER_KINDS["uvicorn"]
    monkeypatch.setitem(SERVER_KINDS, "uvicorn", dataclasses.replace(kind, needs=("p99lab_not_installed",)))
    with pytest.raises(AuditError) as e:
        check_kinds(locate(SAMPLE), ["gunicorn-sync", "uvicorn"])
    message = str(e.value)
    assert "\n" not in message and "p99lab_not_installed (for uvicorn)" in message
    with pytest.raises(AuditError, match="Unknown server kind 'nginx'"):
        check_kinds(locate(SAMPLE), ["nginx"])


# Servers on the sample project (machine lock) ##########################################


@pytest.fixture(scope="module")
def counted(lab, clean):
    """The clean sample under gunicorn sync and uvicorn with the lab's counters, on a fresh
    database with the sample's fixture."""
    from lessons.audit.database import prepare
    from lessons.audit.serve import serving
    from lessons.audit.wrapper import base_overrides

    url = prepare(clean, lab, database=None, fixture=FIXTURE, progress=quiet)
    overrides = base_overrides(url, lab.services.redis_url)
    with serving(clean, [("gunicorn-sync", overrides, True), ("uvicorn", overrides, True)],
                 home=lab.home, cpus=lab.cpu_plan.server) as (wsgi, asgi):
        yield {"gunicorn-sync": wsgi, "uvicorn": asgi}


def per_request(server, path: str) -> dict:
    from helpers import counts

    return counts(server.url, path, n=10)


@pytest.mark.parametrize("kind", ["gunicorn-sync", "uvicorn"])
@pytest.mark.parametrize("path", [LIST, COUNT, DRF])
def test_each_view_runs_exactly_its_one_query(counted, kind, path):
    # product_list: one SELECT (values()[:10]); product_count: one acount(); ProductListAPI:
    # one SELECT of its sliced queryset (no pagination, no authentication query).
    assert per_request(counted[kind], path)["queries"] == 1


def test_hops_under_wsgi_are_the_views_own(counted):
    sync = per_request(counted["gunicorn-sync"], LIST)
    assert (sync["sync_to_async"], sync["async_to_sync"], sync["threads_started"]) == (0, 0, 0)
    # An async view under WSGI: one async_to_sync onto a new loop in a new thread, and its
    # acount() is one sync_to_async (Django's QuerySet.acount).
    asynchronous = per_request(counted["gunicorn-sync"], COUNT)
    assert (asynchronous["async_to_sync"], asynchronous["threads_started"], asynchronous["sync_to_async"]) == (1, 1, 1)


def test_under_asgi_a_sync_view_costs_the_hops_the_lab_counts(lab, counted):
    from lessons.counters import per_request as lab_count
    from lessons.profile import Profile

    same_middleware = ",".join(("django.middleware.security.SecurityMiddleware",
                                "django.middleware.common.CommonMiddleware"))
    with lab.serve(Profile(server="uvicorn", middleware=same_middleware, instrument=True)) as srv:
        fetch(srv.url, "/l01/hello")
        lab_sync = lab_count(srv.url, "/l01/hello", 10)["sync_to_async"]
        lab_async = lab_count(srv.url, "/l01/hello-async", 10)["sync_to_async"]
    project_sync = per_request(counted["uvicorn"], LIST)["sync_to_async"]
    project_async = per_request(counted["uvicorn"], COUNT)["sync_to_async"]
    assert project_sync == lab_sync
    # Notebook 01: a def view makes one more hop than an async def view (the project's
    # async view makes one more of its own: acount()).
    assert lab_sync - lab_async == 1
    assert project_sync - (project_async - 1) == 1


def test_the_servers_never_see_the_labs_own_project(counted):
    import psutil

    for server in counted.values():
        for proc in server.processes():
            env = psutil.Process(proc.pid).environ()
            assert str(config.LAB_PROJECT) not in env["PYTHONPATH"]
            assert Path(proc.cwd()) != config.LAB_PROJECT
        assert server.app in ("shop.wsgi.application", "shop.asgi.application")


# Bad input: one sentence, nothing left running (machine lock) ##########################


def audit_error(lab, project, facts, **kwargs) -> str:
    from lessons.audit.measure import measure_endpoints

    before = {p.pid for p in descendants()}
    options = dict(paths=None, servers=["gunicorn-sync"], database=None, fixture=None, slo_ms=10,
                   quick=True, progress=quiet, lab=lab) | kwargs
    with pytest.raises(AuditError) as e:
        measure_endpoints(project, facts, **options)
    left = [p for p in descendants() if p.pid not in before]
    assert not left, [" ".join(p.cmdline())[:80] for p in left]
    message = str(e.value)
    assert "\n" not in message and message.endswith(".")
    return message


def test_a_redirect_is_one_sentence(lab, clean, facts):
    message = audit_error(lab, clean, facts, paths=["/api/products"])
    assert message.startswith("GET /api/products under gunicorn-sync answers 301, a redirect to /api/products/")


def test_a_500_is_one_sentence_naming_the_exception(lab, clean, facts):
    # A database without the project's tables: the view's query raises.
    url = lab.services.database_url.rsplit("/", 1)[0] + "/postgres"
    message = audit_error(lab, clean, facts, paths=[LIST], database=url)
    assert message.startswith(f"GET {LIST} under gunicorn-sync answers 500: the view raised ")
    assert 'relation "catalog_product" does not exist' in message


def test_an_unreachable_database_is_one_sentence(lab, clean, facts):
    message = audit_error(lab, clean, facts, paths=[LIST], database="postgresql://nobody@127.0.0.1:1/shop")
    assert message.startswith("Cannot connect to the database at nobody@127.0.0.1:1/shop (Connection refused): ")


# Timed (machine lock, measures) ########################################################


@pytest.mark.measures
def test_apply_never_changes_a_file_of_the_project(lab, facts):
    from lessons.audit.findings import context_for, static_findings
    from lessons.audit.measure import apply_waterfall

    project = locate(SAMPLE)
    sample_facts = read_facts(project)
    findings = static_findings(context_for(project.root, sample_facts))
    before = tree_hash(SAMPLE)
    steps = apply_waterfall(project, sample_facts, findings, paths=None, database=None, fixture=FIXTURE,
                            slo_ms=10, quick=True, progress=quiet, lab=lab)
    assert tree_hash(SAMPLE) == before
    assert steps[0]["change"] == "start" and steps[0]["server"] == "gunicorn-uvicorn"
    texts = [s["step"] for s in steps]
    assert any(t.startswith("server interface: sync views under WSGI") for t in texts), texts
    assert any(t.startswith("middleware trimmed") for t in texts), texts
    for s in steps:  # each step measured: a capacity, and a p99 or the sentence saying why not
        assert s["slo_capacity_rps"] is not None, s
        assert (s["p99_ms"] or 0) > 0 or s["note"].startswith("no p99 at 100 req/s"), s


@pytest.mark.measures
def test_an_endpoint_under_two_servers(lab, clean, facts):
    from lessons.audit.measure import measure_endpoints

    rows = measure_endpoints(clean, facts, paths=[LIST], servers=None, database=None, fixture=FIXTURE,
                             slo_ms=10, quick=True, progress=quiet, lab=lab)
    assert [(r["path"], r["server"], r["interface"]) for r in rows] == [
        (LIST, "gunicorn-sync", "wsgi"), (LIST, "uvicorn", "asgi")]
    assert [r["queries_per_request"] for r in rows] == [1, 1]
    assert rows[0]["hops_per_request"] == 0 and rows[1]["async_to_sync"] == 0   # a def view
    for r in rows:  # every timed request answered; a p99 where the throughput reached the fixed rate
        assert r["rps"] > 0 and r["p99_errors"] == 0, r
        assert r["p99_samples"] >= 90 or r["note"].startswith("no p99 at 100 req/s"), r


# Review additions: the wrapper with several aliases, what each --apply step changes,
# the capacity's sentence, the step servers' names ###########################################


def test_wrapper_keeps_every_other_setting_and_points_every_alias(tmp_path):
    """A project with two aliases (one on SQLite), its own TIME_ZONE and middleware: the
    wrapper changes only what it names (Overrides), in every alias."""
    import sys

    from lessons.audit.project import Project
    from lessons.audit.wrapper import base_overrides

    (tmp_path / "multi_settings.py").write_text(
        "SECRET_KEY = 'x'\nDEBUG = True\nTIME_ZONE = 'Europe/Paris'\nUSE_TZ = True\n"
        "MIDDLEWARE = ['django.middleware.common.CommonMiddleware', 'mine.Middleware']\n"
        "INSTALLED_APPS = ['django.contrib.contenttypes']\nMY_SETTING = 42\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'prod',\n"
        "    'HOST': 'db.example', 'CONN_MAX_AGE': 30,\n"
        "    'OPTIONS': {'sslmode': 'require', 'host': 'x', 'options': '-c statement_timeout=5000'}},\n"
        "  'replica': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': 'r.sqlite3',\n"
        "    'OPTIONS': {'timeout': 20}}}\n"
        "CACHES = {'default': {'BACKEND': 'django.core.cache.backends.redis.RedisCache',\n"
        "    'LOCATION': 'redis://a.example:6379/2;redis://b.example:6379/2'},\n"
        "  'mc': {'BACKEND': 'django.core.cache.backends.memcached.PyMemcacheCache', 'LOCATION': 'm:11211'}}\n")
    project = Project(root=tmp_path, settings_module="multi_settings", python=sys.executable)
    overrides = base_overrides("postgresql://u:pw@127.0.0.1:5999/audit_x", "redis://127.0.0.1:6999/0")
    got = wrapped(project, overrides.with_database(CONN_MAX_AGE=600), (
        "import json; from django.conf import settings as s\n"
        "print(json.dumps({'tz': s.TIME_ZONE, 'mw': s.MIDDLEWARE, 'mine': s.MY_SETTING,"
        " 'debug': s.DEBUG, 'db': s.DATABASES, 'caches': s.CACHES}, default=str))"))
    # Django's RedisCache takes servers split on ';' or ',': the first one's database number stays.
    assert got["caches"]["default"]["LOCATION"] == "redis://127.0.0.1:6999/2"
    assert got["caches"]["mc"]["LOCATION"] == "m:11211"   # not a Redis cache: the project's own
    assert (got["tz"], got["mine"], got["debug"]) == ("Europe/Paris", 42, False)
    assert got["mw"] == ["django.middleware.common.CommonMiddleware", "mine.Middleware"]
    default, replica = got["db"]["default"], got["db"]["replica"]
    for alias in (default, replica):
        assert (alias["ENGINE"], alias["NAME"], alias["HOST"], alias["PORT"], alias["USER"]) == \
            ("django.db.backends.postgresql", "audit_x", "127.0.0.1", "5999", "u")
        assert alias["CONN_MAX_AGE"] == 600
    assert default["OPTIONS"] == {"options": "-c statement_timeout=5000"}   # server options gone
    assert replica["OPTIONS"] == {}   # SQLite's OPTIONS mean nothing to PostgreSQL


def _config_diff(before, after) -> dict:
    a, b = json.loads(before.overrides.to_json()), json.loads(after.overrides.to_json())
    diff = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    if before.kind != after.kind:
        diff["kind"] = (before.kind, after.kind)
    return diff


def test_each_apply_step_changes_only_what_its_sentence_names():
    """On the sample: the interface step changes the server kind and nothing else, the
    middleware step only MIDDLEWARE, dropping exactly the middleware it names."""
    from lessons.audit import apply, checklist
    from lessons.audit.findings import context_for, static_findings
    from lessons.audit.wrapper import base_overrides

    project = locate(SAMPLE)
    sample_facts = read_facts(project)
    findings = static_findings(context_for(project.root, sample_facts))
    said: list[str] = []
    changes = checklist.changes(project, sample_facts, findings, [LIST], lambda m: True, said.append,
                                start="gunicorn-uvicorn")
    steps = apply.configs("start", ("gunicorn-uvicorn", base_overrides("postgresql://u@h/d", "")), changes)
    assert [s.kind for s in steps] == ["gunicorn-uvicorn", "gunicorn-sync", "gunicorn-sync"]
    assert _config_diff(steps[0], steps[1]) == {"kind": ("gunicorn-uvicorn", "gunicorn-sync")}
    diff = _config_diff(steps[1], steps[2])
    assert list(diff) == ["settings"]
    before, after = diff["settings"]
    assert {k for k in after if before.get(k) != after[k]} == {"MIDDLEWARE"}
    gone = [m for m in sample_facts["MIDDLEWARE"] if m not in after["MIDDLEWARE"]]
    assert [m.rsplit(".", 1)[-1] for m in gone] == [
        "SilkyMiddleware", "SessionMiddleware", "CsrfViewMiddleware", "AuthenticationMiddleware",
        "MessageMiddleware", "XFrameOptionsMiddleware"]
    assert all(m.rsplit(".", 1)[-1] in steps[2].text for m in gone)
    assert after["MIDDLEWARE"][-1] == "shop.middleware.timing_middleware"   # the project's own stays
    # CONN_MAX_AGE = 60 already persists under WSGI; the sample's code uses no cache.
    assert any(s.startswith("--apply: no connection change: connections already persist") for s in said)


def test_under_asgi_the_connection_step_is_the_pool_and_nothing_else():
    from lessons.audit import apply, checklist
    from lessons.audit.wrapper import Overrides

    facts = {"routes": [{"path": "/a/", "is_async": True}], "MIDDLEWARE": [],
             "DATABASES": {"default": {"CONN_MAX_AGE": 60}}, "CACHES": {}}
    changes = checklist.changes(None, facts, [], ["/a/"], lambda m: True, quiet, start="gunicorn-sync")
    steps = apply.configs("start", ("gunicorn-sync", Overrides()), changes)
    assert [s.kind for s in steps] == ["gunicorn-sync", "uvicorn", "uvicorn"]
    assert _config_diff(steps[1], steps[2]) == {
        "database": ({}, {"CONN_MAX_AGE": 0, "OPTIONS": {"pool": True}})}
    # Without psycopg_pool in the project's interpreter there is no step, and it is said.
    said: list[str] = []
    assert len(checklist.changes(None, facts, [], ["/a/"], lambda m: m != "psycopg_pool", said.append,
                                 start="gunicorn-sync")) == 1
    assert any("psycopg_pool is not installed" in s for s in said)


def test_a_capacity_under_the_lowest_rate_is_not_zero():
    from lessons.audit.timing import capacity_text

    assert capacity_text(0.0, 39.68) == "under 40 req/s"
    assert capacity_text(158.7, 200.0) == "159 req/s"
    assert capacity_text(0.0, None) == "not measured"


def test_a_dropped_step_keeps_its_own_log(monkeypatch, tmp_path):
    """A change that breaks the endpoint is dropped and the later steps start again:
    no server started after it may reuse (and empty) the log its sentence names."""
    from types import SimpleNamespace

    from lessons.audit import apply
    from lessons.audit.checklist import Change
    from lessons.audit.wrapper import Overrides

    made: list[str] = []

    class FakeServer:
        def __init__(self, project, kind, overrides, *, home, label=""):
            self.kind, self.overrides, self.name = kind, overrides, f"audit-{label}"
            self.log_path = home / f"{self.name}.log"
            made.append(self.name)

        def start(self):
            return self

        def pin(self, cpus):
            pass

        def stop(self):
            pass

    def problem(server, path):
        return f"broken (the server's log: {server.log_path})." if server.overrides.settings else None

    monkeypatch.setattr(apply, "ProjectServer", FakeServer)
    monkeypatch.setattr(apply, "status_problem", problem)
    changes = [Change("wsgi", lambda k, o: ("gunicorn-sync", o)),
               Change("middleware", lambda k, o: (k, o.with_settings(MIDDLEWARE=[]))),
               Change("pool", lambda k, o: (k, o.with_database(CONN_MAX_AGE=600)))]
    lab = SimpleNamespace(home=tmp_path, cpu_plan=SimpleNamespace(server=None))
    servers: dict = {}
    steps, dropped = apply._start_checked(None, "start", ("uvicorn", Overrides()), changes, [LIST], lab,
                                          servers, quiet)
    assert [s.text for s in steps] == ["start", "wsgi", "pool"]
    assert [d["step"] for d in dropped] == ["middleware"]
    assert len(made) == 5 and len(set(made)) == 5, made
