"""``lessons.audit.api``, the audit as notebook 12 uses it: the comparisons its checkpoint
makes (planted findings, predicted against counted hops, the project's files), its tables,
plots and widget, and how it calls the measured part, on synthetic rows.

Nothing here starts a server or a lab (the static audit of the sample is a short-lived
child process; the measured part is replaced by a stand-in), so no machine lock is needed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import pytest

from lessons.audit import api
from lessons.audit.chooser import project_chooser
from lessons.audit.findings import Finding
from lessons.audit.rules_settings import asgi_hops

matplotlib.use("Agg")

SAMPLE = api.SAMPLE_PROJECT


@pytest.fixture(scope="module")
def sample() -> api.ProjectAudit:
    return api.audit_project(SAMPLE, measure=False)


def _row(path: str, server: str, interface: str, **extra) -> dict:
    row = {"path": path, "server": server, "interface": interface, "rps": 900.0, "p99_ms": 4.2,
           "p99_low_ms": 3.9, "p99_high_ms": None, "p99_rate": 100.0, "p99_errors": 0,
           "slo_capacity_rps": 504.0, "slo_capacity_not_shown_at_rps": 635.0, "hops_per_request": 0,
           "new_threads_per_request": 0, "queries_per_request": 1}
    return row | extra


def test_the_sample_plants_what_the_static_audit_reports(sample) -> None:
    assert sample.is_sample
    assert sample.planted_differences() == {"missing": [], "not planted": []}
    assert sample.severities()["high"] >= 1 and sample.exit_status() == 1
    assert sample.endpoints == [] and sample.waterfall == [] and sample.tree_unchanged() is None


def test_planted_differences_name_what_is_missing_and_what_is_extra(sample) -> None:
    first, *rest = sample.findings
    extra = Finding("debug-on", "high", "shop/settings.py:99", "m", "f", "e")
    changed = api.ProjectAudit(project=sample.project, settings=sample.settings, findings=[*rest, extra],
                               root=sample.root, facts=sample.facts)
    assert changed.planted_differences() == {"missing": [f"{first.id} at {first.where}"],
                                             "not planted": ["debug-on at shop/settings.py:99"]}


def test_a_project_without_mistakes_md_plants_nothing(tmp_path: Path) -> None:
    assert api.planted(tmp_path) is None
    (tmp_path / "MISTAKES.md").write_text("no table here")
    assert api.planted(tmp_path) is None
    audit = api.ProjectAudit(project=str(tmp_path), settings="x.settings", findings=[], root=tmp_path)
    assert not audit.is_sample and audit.planted_differences() is None


def test_planted_reads_the_sample_table_with_its_duplicates() -> None:
    rows = api.planted(SAMPLE)
    assert rows == sorted(rows)
    assert rows.count(("sync-only-middleware", "shop/settings.py:34")) == 1
    assert sum(i == "sync-only-middleware" for i, _ in rows) == 2


def test_the_tree_digest_sees_a_changed_byte_and_ignores_bytecode(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    before = api.tree_digest(project)
    (project / "shop" / "__pycache__").mkdir(exist_ok=True)
    (project / "shop" / "__pycache__" / "settings.cpython-312.pyc").write_bytes(b"\0")
    assert api.tree_digest(project) == before
    settings = project / "shop" / "settings.py"
    settings.write_text(settings.read_text().replace("DEBUG = True", "DEBUG = False"))
    assert api.tree_digest(project) != before


def test_hops_compare_only_asgi_rows_against_the_prediction(sample) -> None:
    mw = sample.facts["middleware"]
    audit = api.ProjectAudit(project=sample.project, settings=sample.settings, findings=[], root=sample.root,
                             facts=sample.facts, endpoints=[
                                 _row("/api/products/", "gunicorn-sync", "wsgi"),
                                 _row("/api/products/", "uvicorn", "asgi", hops_per_request=6),
                                 _row("/api/products/count/", "uvicorn", "asgi", hops_per_request=4)])
    hops = audit.hops()
    assert hops["predicted"] == {"/api/products/ under uvicorn": asgi_hops(mw, view_is_async=False),
                                 "/api/products/count/ under uvicorn": asgi_hops(mw, view_is_async=True)}
    assert hops["counted"] == {"/api/products/ under uvicorn": 6, "/api/products/count/ under uvicorn": 4}
    assert hops["the view's own"] == {label: hops["counted"][label] - n for label, n in hops["predicted"].items()}
    assert hops["predicted"] != hops["counted"]  # the async view's 4 is not what the rule says
    table = audit.hops_table().data
    assert list(table["counted hops"]) == [6, 4] and list(table["async def"]) == [False, True]
    assert list(table["the view's own hops"]) == list(hops["the view's own"].values())


def test_non_2xx_queries_and_one_endpoint(sample) -> None:
    audit = api.ProjectAudit(project=sample.project, settings=sample.settings, findings=[], root=sample.root,
                             facts=sample.facts, endpoints=[_row("/a/", "uvicorn", "asgi", non_2xx=2, p99_errors=5),
                                                            _row("/b/", "uvicorn", "asgi", queries_per_request=3)],
                             waterfall=[{"step": "start", "path": "/a/", "non_2xx": 1}])
    assert audit.non_2xx() == 3  # the endpoints' and the --apply steps' answers outside 2xx, not timeouts
    assert audit.queries() == {"/a/ under uvicorn": 1, "/b/ under uvicorn": 3}
    assert audit.endpoint("/b/", "uvicorn")["queries_per_request"] == 3
    with pytest.raises(KeyError, match="measured /a/ \\(uvicorn\\)"):
        audit.endpoint("/b/", "gunicorn-sync")
    with pytest.raises(KeyError, match="not a route"):
        audit.route("/nowhere/")


def test_tables_and_plots_show_the_rows(sample) -> None:
    rows = [_row("/api/products/", "gunicorn-sync", "wsgi"), _row("/api/products/", "uvicorn", "asgi", p99_ms=12.0)]
    steps = [{"step": "start", "change": "start", "path": "/api/products/", "server": "gunicorn-uvicorn",
              "slo_capacity_rps": 100.0, "slo_capacity_not_shown_at_rps": 126.0, "p99_ms": 8.0, "rps": 300.0},
             {"step": "server interface", "change": "up", "path": "/api/products/", "server": "gunicorn-sync",
              "slo_capacity_rps": 400.0, "slo_capacity_not_shown_at_rps": None, "p99_ms": 3.0, "rps": 900.0},
             {"step": "cache", "change": "not applied", "path": None, "server": "gunicorn-sync",
              "slo_capacity_rps": None, "p99_ms": None, "note": "GET / answers 500"}]
    audit = api.ProjectAudit(project=sample.project, settings=sample.settings, findings=sample.findings,
                             root=sample.root, facts=sample.facts, endpoints=rows, waterfall=steps)
    assert len(audit.findings_table().data) == len(sample.findings)
    shown = audit.endpoints_table().data
    assert list(shown.index) == [("/api/products/", "gunicorn-sync"), ("/api/products/", "uvicorn")]
    assert "p99_ms at 100 req/s" in shown.columns
    assert list(audit.waterfall_table().data.index) == ["start", "server interface", "cache"]
    fig = audit.plot_endpoints()
    assert len(fig.axes) == 3
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][0] == "/api/products/ (gunicorn-sync)"
    assert len(audit.plot_waterfall().axes) == 2  # SLO capacity and throughput, one path
    assert audit.exit_status() == 1  # a p99 over the SLO (and high findings)


def test_a_capacity_of_zero_reads_under_the_next_rate_in_the_plot(sample) -> None:
    rows = [_row("/a/", "uvicorn", "asgi"), _row("/b/", "uvicorn", "asgi", slo_capacity_rps=0.0,
                                                 slo_capacity_not_shown_at_rps=126.0)]
    audit = api.ProjectAudit(project=sample.project, settings=sample.settings, findings=[], root=sample.root,
                             facts=sample.facts, endpoints=rows)
    labels = [t.get_text() for t in audit.plot_endpoints().axes[2].texts]
    assert labels[1] == "under 126" and labels[0] != labels[1] and "under" not in labels[0]


def test_middleware_variants_and_the_prediction(sample) -> None:
    assert sample.middleware_without("profilers")[0] == "silk.middleware.SilkyMiddleware"
    with pytest.raises(ValueError):
        sample.middleware_without("slow ones")
    left_out, stack = sample.middleware_without("sync-only")
    assert left_out == "silk.middleware.SilkyMiddleware, shop.middleware.timing_middleware"
    assert "silk.middleware.SilkyMiddleware" not in stack and len(stack) == len(sample.facts["middleware"]) - 2
    full = [m["path"] for m in sample.facts["middleware"]]
    assert sample.predict_hops(full, view_is_async=False) == asgi_hops(sample.facts["middleware"], view_is_async=False)
    assert sample.predict_hops([], view_is_async=False) == 3  # signal, close, the view


def test_the_exercise_expects_the_prediction_plus_the_views_own(sample, monkeypatch, tmp_path: Path) -> None:
    from lessons import Notebook
    from lessons.exercises import ask

    monkeypatch.setenv("LAB_RESULTS", str(tmp_path))  # the Notebook's record goes there
    _, stack = sample.middleware_without("sync-only")
    for path, own in (("/api/products/", 0), ("/api/drf/products/", 1)):
        full = sample.predict_hops([m["path"] for m in sample.facts["middleware"]], view_is_async=False)
        audit = api.ProjectAudit(project=sample.project, settings=sample.settings, findings=[], root=sample.root,
                                 facts=sample.facts, endpoints=[_row(path, "uvicorn", "asgi", hops_per_request=full + own)])
        expected = sample.predict_hops(stack, view_is_async=False) + own
        q = ask(Notebook("12_your_project"), "asgi-hops", audit, path)
        q.verify(expected)
        q.verify(str(expected))
        with pytest.raises(AssertionError, match="rejects its own solution"):
            q.verify(expected + 1)
        assert q._solution.startswith(f"{expected}: 2 (signal and close) + 1 (the view) + {own} (the view's own)")
        assert f"adds {expected - full - own} hops" in q._solution and path in q.question


def test_measure_passes_the_notebooks_choices_and_digests_the_tree(sample, monkeypatch) -> None:
    from lessons.audit import measure

    seen = {}

    def fake(project, facts, **kwargs):
        seen.update(kwargs, project=project)
        return [_row(p, s, "asgi") for p in kwargs["paths"] for s in kwargs["servers"]]

    monkeypatch.setattr(measure, "measure_endpoints", fake)
    audit = api.ProjectAudit(project=sample.project, settings=sample.settings, findings=[], root=sample.root,
                             located=sample.located, facts=sample.facts)
    assert audit.measure(max_paths=2, servers=["uvicorn"], progress=None) is audit
    assert seen["paths"] == ["/api/products/", "/api/products/count/"] and seen["lab"] is None
    assert seen["project"] is sample.located and seen["slo_ms"] == 10.0
    assert len(audit.endpoints) == 2 and audit.tree_unchanged() is True and "endpoints" in audit.seconds


def test_count_refuses_before_a_measurement(sample) -> None:
    from lessons.audit.project import AuditError

    with pytest.raises(AuditError, match="Nothing was measured"):
        sample.count("/api/products/", lab=None)  # type: ignore[arg-type]


def test_the_chooser_defaults_to_the_sample_and_checks_a_path(tmp_path: Path) -> None:
    chooser = project_chooser()
    assert Path(chooser.path) == SAMPLE and chooser.settings is None and chooser.python is None
    assert chooser.fixture == api.SAMPLE_FIXTURE and "sample project" in chooser._status.value
    chooser._path.value = str(tmp_path)
    assert chooser.fixture is None  # the sample's fixture goes with the sample
    assert "not a Django project" in chooser._status.value
    chooser._path.value = str(SAMPLE)
    assert chooser.fixture == api.SAMPLE_FIXTURE


def test_throughput_ratio_is_a_step_over_the_one_before_on_its_path() -> None:
    audit = api.ProjectAudit(project="p", settings="s.settings", findings=[], root=SAMPLE)
    audit.waterfall = [
        {"step": "start: x", "path": "/a/", "rps": 30.0}, {"step": "start: x", "path": "/b/", "rps": 10.0},
        {"step": "server interface: y", "path": "/a/", "rps": 40.0},
        {"step": "middleware trimmed to what an API needs", "path": "/a/", "rps": 400.0},
        {"step": "a change not applied", "path": None, "rps": None},
    ]
    assert audit.throughput_ratio("middleware trimmed") == 10.0
    assert audit.throughput_ratio("start") is None and audit.throughput_ratio("cache") is None
