"""The notebook helpers: records, verdicts and checkpoints saved as they happen; the
exercise checker; the widget panel that edits a Profile without running anything."""

from __future__ import annotations

import json

import pytest

from lessons.notebook import CheckpointFailed, Exercise, Notebook, load_record
from lessons.profile import Profile, ProfileError


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RESULTS", str(tmp_path))
    return tmp_path


def test_record_verdict_and_checkpoint_are_saved_as_they_happen(results) -> None:
    nb = Notebook("99_demo")
    nb.record("rps", 1234.5)
    nb.verdict("workers-formula", "depends", "best at 3 workers")
    saved = json.loads((results / "notebooks" / "99_demo.json").read_text())
    assert saved["measurements"] == {"rps": 1234.5}
    assert saved["verdicts"]["workers-formula"]["verdict"] == "depends"
    assert saved["checkpoint"] is None
    nb.checkpoint({"an effect": True})
    assert load_record("99_demo")["checkpoint"] == {"passed": True, "checks": {"an effect": True}}
    assert list(nb.verdicts().data.columns) == ["guide says", "you measured", "verdict"]


def test_a_failed_checkpoint_is_recorded_and_raises(results, capsys) -> None:
    nb = Notebook("99_demo")
    with pytest.raises(CheckpointFailed, match="Checkpoint failed: the second"):
        nb.checkpoint({"the first": True, "the second": False})
    assert load_record("99_demo")["checkpoint"]["passed"] is False
    assert "FAIL  the second" in capsys.readouterr().out


def test_verdicts_name_known_claims_and_verdicts(results) -> None:
    nb = Notebook("99_demo")
    with pytest.raises(KeyError, match="Unknown claim"):
        nb.verdict("no-such-claim", "confirmed", "")
    with pytest.raises(ValueError, match="verdict must be one of confirmed, refuted, depends"):
        nb.verdict("workers-formula", "maybe", "")


def test_exercise_check_hint_solution(results, capsys) -> None:
    nb = Notebook("99_demo")
    q = Exercise("q", "how many?", expected=100.0, close=0.1, hint="about a hundred",
                 solution="100", notebook=nb)
    assert q.check(...) is False
    assert "Not answered yet" in capsys.readouterr().out
    assert q.check(95) is True and q.check(80) is False and q.check("lots") is False
    q.hint()
    q.solution()
    out = capsys.readouterr().out
    assert "Hint: about a hundred" in out and "Solution: 100" in out
    assert load_record("99_demo")["exercises"] == {"q": False}  # the last attempt


def test_exercise_with_a_checker_function(results) -> None:
    q = Exercise("q", "even?", checker=lambda a: (a % 2 == 0, "even numbers only"))
    assert q.check(4) and not q.check(3)


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


def test_report_ledger_and_compare_read_saved_records(results, tmp_path, monkeypatch, capsys) -> None:
    from lessons import report

    nb = Notebook("02_demo")
    nb.verdict("workers-formula", "depends", "best at 3 workers")
    table = report.ledger()
    row = table.set_index("claim").loc["workers-formula"]
    assert (row["verdict"], row["you measured"], row["notebook"]) == ("depends", "best at 3 workers", "02_demo")
    assert (table.verdict == "not measured").sum() == len(table) - 1

    other = tmp_path / "other"
    monkeypatch.setenv("LAB_RESULTS", str(other))
    Notebook("02_demo").verdict("workers-formula", "refuted", "best at 1 worker")
    both = report.compare([results, other])
    assert list(both.loc[(2, "workers-formula")]) == ["depends", "refuted"]
    assert report.main([str(results), str(other)]) == 0
    assert "workers-formula" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="has no notebooks/ records"):
        report.compare([tmp_path / "nowhere"])


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
