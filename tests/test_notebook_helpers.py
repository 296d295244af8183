"""The notebook helpers: records and checkpoints (values and thresholds) saved as they
happen; verdicts from the claims' rules; the exercise checker; the widget panel that edits a Profile without running anything."""

from __future__ import annotations

import json

import pytest

from lessons.checks import at_least, at_most, equals
from lessons.exercises import Exercise
from lessons.notebook import CheckpointFailed, Notebook, load_record
from lessons.profile import Profile, ProfileError


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RESULTS", str(tmp_path))
    return tmp_path


def test_records_and_checkpoint_are_saved_as_they_happen(results) -> None:
    nb = Notebook("99_demo")
    nb.record("rps", 1234.5)
    saved = json.loads((results / "notebooks" / "99_demo.json").read_text())
    assert saved["measurements"] == {"rps": 1234.5}
    assert saved["checkpoint"] is None and "verdicts" not in saved
    nb.checkpoint({"an effect": at_least(2.0, 1.5), "a count": equals(3, 3)})
    checkpoint = load_record("99_demo")["checkpoint"]
    assert checkpoint["passed"] is True
    assert checkpoint["checks"]["an effect"] == {"value": 2.0, "op": ">=", "threshold": 1.5,
                                                 "passed": True, "margin": 0.25}
    assert checkpoint["checks"]["a count"]["margin"] is None
    logged = [json.loads(line) for line in (results / "checkpoints.jsonl").read_text().splitlines()]
    assert [entry["notebook"] for entry in logged] == ["99_demo"]


def test_a_failed_checkpoint_is_recorded_with_its_values_and_raises(results, capsys) -> None:
    nb = Notebook("99_demo")
    with pytest.raises(CheckpointFailed, match="Checkpoint failed: the second"):
        nb.checkpoint({"the first": at_most(1.0, 1.2), "the second": at_least(1.1, 1.5)})
    checkpoint = load_record("99_demo")["checkpoint"]
    assert checkpoint["passed"] is False
    assert checkpoint["checks"]["the second"]["value"] == 1.1
    assert "FAIL  the second: 1.1 (at least 1.5; margin -36%)" in capsys.readouterr().out


def test_a_bare_boolean_is_not_a_check(results) -> None:
    with pytest.raises(TypeError, match="at_least\\(\\), at_most\\(\\) or equals\\(\\)"):
        Notebook("99_demo").checkpoint({"an effect": True})


def test_check_margins_say_how_far_the_value_may_move() -> None:
    assert at_least(4.0, 1.0).margin == pytest.approx(0.75)
    assert at_most(1.0, 1.5).margin == pytest.approx(0.5)
    assert at_least(1.0, 2.0).margin == pytest.approx(-1.0) and not at_least(1.0, 2.0).passed
    assert not at_least(float("nan"), 1.0).passed and at_least(float("nan"), 1.0).margin is None
    assert equals("TypeError", "TypeError").passed and not equals(2, 3).passed


def test_attempt_records_what_the_guides_code_raised_or_that_it_ran(results, capsys) -> None:
    nb = Notebook("99_demo")
    with nb.attempt("as written") as outcome:
        {}["missing"]
    assert outcome.raised and isinstance(outcome.error, KeyError)
    with nb.attempt("fixed"):
        pass
    saved = load_record("99_demo")["measurements"]
    assert saved["as written"] == {"raised": "KeyError", "message": "'missing'"}
    assert saved["fixed"] == {"raised": None, "message": ""}
    assert "KeyError" in capsys.readouterr().out


def test_exercise_check_hint_solution(results, capsys) -> None:
    nb = Notebook("99_demo")
    q = Exercise("q", "how many?", expected=100.0, close=0.1, hint="about a hundred",
                 solution="100", notebook=nb)
    q.check(...)
    assert "Not answered yet" in capsys.readouterr().out and q.last_ok is None
    for answer, right in ((95, True), (80, False), ("lots", False)):
        q.check(answer)
        assert q.last_ok is right
    q.hint()
    q.solution()
    out = capsys.readouterr().out
    assert "Hint: about a hundred" in out and "Solution: 100" in out
    assert load_record("99_demo")["exercises"] == {"q": False}  # the last attempt
    q.verify(100)
    assert capsys.readouterr().out == ""  # the hidden solution cell shows nothing
    with pytest.raises(AssertionError, match="rejects its own solution"):
        q.verify(50)


def test_exercise_with_a_checker_function(results) -> None:
    q = Exercise("q", "even?", checker=lambda a: (a % 2 == 0, "even numbers only"))
    q.check(4)
    assert q.last_ok
    q.check(3)
    assert not q.last_ok


def test_notebook_exercises_keep_hint_and_solution_in_lessons(results, capsys) -> None:
    nb = Notebook("04_async_orm")
    q = nb.exercise("n-plus-one", 20)
    assert "limit=20" in q.question and q.expected == 21
    q.check(21)
    assert load_record("04_async_orm")["exercises"] == {"n-plus-one": True}
    with pytest.raises(KeyError, match="has no exercise 'nope'"):
        nb.exercise("nope")


def test_widget_panel_edits_a_profile_and_reports_conflicts() -> None:
    from lessons.widgets import panel

    p = panel(Profile.preset("guide"))
    assert p.profile == Profile.preset("guide")  # untouched: the starting profile
    p.controls["server"].value = "uvicorn"
    p.controls["db_pool"].value = True  # conflicts with conn_max_age=60
    assert "requires conn_max_age=0" in p._status.value
    with pytest.raises(ProfileError):
        p.profile
    p.controls["conn_max_age"].value = 0
    assert p.profile.server == "uvicorn" and p.profile.db_pool


@pytest.fixture
def demo_claim(monkeypatch):
    """A claim of notebook 99_demo, decided by the recorded "ratio" (1.5 or more confirms)."""
    from lessons.claims import CLAIMS, Claim, confirmed, refuted

    def rule(r):
        ratio = r["99_demo"]["ratio"]
        return (confirmed if ratio >= 1.5 else refuted)(f"measured {ratio:.2f}x")

    monkeypatch.setitem(CLAIMS, "demo-claim", Claim("demo-claim", 11, "demo: 2x faster", "99_demo", rule,
                                                    ("confirmed", "refuted"), ("99_demo",)))
    return "demo-claim"


def test_report_applies_the_rules_to_the_saved_records(results, tmp_path, monkeypatch, capsys,
                                                         demo_claim) -> None:
    from lessons import report

    nb = Notebook("99_demo")
    nb.record("ratio", 2.0)
    row = {r["id"]: r for r in report.rows()}[demo_claim]
    assert set(row) == set(report.KEYS)
    assert (row["verdict"], row["evidence"], row["notebook"], row["run"], row["checkpoint_passed"]) == (
        "confirmed", "measured 2.00x", "99_demo", "full", None)
    assert report.provisional(row)  # no checkpoint yet
    nb.checkpoint({"x": at_least(2, 1)})
    row = {r["id"]: r for r in report.rows()}[demo_claim]
    assert row["checkpoint_passed"] is True and not report.provisional(row)
    untouched = {r["id"]: r for r in report.rows()}["workers-formula"]
    assert untouched["verdict"] == "not measured" and untouched["run"] is None
    capsys.readouterr()
    assert report.main(as_json=True) == 0
    listed = json.loads(capsys.readouterr().out)
    assert all(list(r) == list(report.KEYS) for r in listed)

    other = tmp_path / "other"
    monkeypatch.setenv("LAB_RESULTS", str(other))
    Notebook("99_demo").record("ratio", 1.1)
    both = report.compare_saved([results, other])
    assert list(both.loc[(11, demo_claim)]) == ["confirmed", "refuted"]
    assert report.main([str(results), str(other)]) == 0
    with pytest.raises(FileNotFoundError, match="has no notebooks/ records"):
        report.compare_saved([tmp_path / "nowhere"])


def test_a_record_of_another_shape_is_not_measured_not_a_crash(results, demo_claim) -> None:
    from lessons import report

    Notebook("99_demo").record("ratio", {"an older shape": 2.0})
    row = {r["id"]: r for r in report.rows()}[demo_claim]
    assert row["verdict"] == "not measured" and "run the notebook again" in row["evidence"]


def test_margins_summarise_every_saved_checkpoint(results, monkeypatch) -> None:
    from lessons import report

    for value in (3.0, 2.0):
        Notebook("99_demo").checkpoint({"ratio": at_least(value, 1.5), "count": equals(1, 1)})
    table = report.margins().set_index("check")
    assert table.loc["ratio", "runs"] == 2 and table.loc["ratio", "failed"] == 0
    assert table.loc["ratio", "min value"] == 2.0
    assert table.loc["ratio", "min margin"] == pytest.approx(0.25)
    assert report.main_margins() == 0
    Notebook("99_demo").checkpoint({"ratio, renamed": at_least(3.0, 1.5), "count": equals(1, 1)})
    assert set(report.margins()["check"]) == {"ratio", "ratio, renamed", "count"}
    current = report.margins(current=True).set_index("check")
    assert set(current.index) == {"ratio, renamed", "count"} and current.loc["count", "runs"] == 3


def test_runner_ignores_a_record_left_by_an_earlier_run(tmp_path) -> None:
    """A notebook that records nothing this time must not pass on last run's record."""
    import nbformat

    from lessons import runner

    path = tmp_path / "98_stale.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), path)
    stale = tmp_path / "results" / "notebooks" / "98_stale.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"started": "2020-01-01T00:00:00+00:00",
                                 "checkpoint": {"passed": True, "checks": {}}}))
    ex = runner.execute(path, env={"LAB_RESULTS": str(tmp_path / "results")}, cell_timeout=60,
                        total_timeout=120)
    assert ex.error is None and ex.leftovers == []
    assert ex.record is None and not ex.ok
