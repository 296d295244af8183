"""What a notebook keeps: its measurements, its verdicts on the guide, its checkpoint.

    nb = Notebook("01_asgi_vs_wsgi")
    nb.record("rps.wsgi.hello", run.rps)
    nb.verdict("asgi-3000-wsgi-1500", "refuted", "WSGI 2,100 req/s vs ASGI 600 req/s")
    nb.verdicts()                      # the "guide says / you measured" table
    nb.checkpoint({"WSGI beats ASGI for sync views by 1.5x": ratio >= 1.5})

Everything is written to ``results/notebooks/<name>.json`` as it happens, so the test
harness, ``make run`` and the claims ledger read the same file, and a notebook that
stops half-way still leaves what it measured.

``Exercise`` is the learner's checker: ``check(answer)``, ``hint()``, ``solution()``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lessons import config
from lessons.claims import VERDICTS, claim

__all__ = ["Notebook", "Exercise", "CheckpointFailed", "load_record", "records_dir"]


class CheckpointFailed(AssertionError):
    """The lesson's effect was not seen in this run: the lesson (or the lab) is broken."""


def records_dir() -> Path:
    return config.results_dir() / "notebooks"


def load_record(name: str, results: Path | None = None) -> dict[str, Any] | None:
    """The saved record of notebook ``name`` (from ``results``, default LAB_RESULTS)."""
    path = (results / "notebooks" if results else records_dir()) / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class Notebook:
    """The record of one notebook run."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = records_dir() / f"{name}.json"
        self.data: dict[str, Any] = {
            "notebook": name,
            "quick": config.quick(),
            "started": _now(),
            "finished": None,
            "measurements": {},
            "verdicts": {},
            "exercises": {},
            "checkpoint": None,
            "machine": _machine(),
        }
        self._save()

    # -- measurements and verdicts ----------------------------------------------------

    def record(self, key: str, value: Any) -> Any:
        """Keep one measured number (or a small dict/list of them); returns it."""
        self.data["measurements"][key] = _plain(value)
        self._save()
        return value

    def verdict(self, claim_id: str, verdict: str, measured: str) -> None:
        """Set the guide's claim beside what this run measured."""
        c = claim(claim_id)
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}.")
        self.data["verdicts"][claim_id] = {
            "section": c.section, "guide": c.guide, "verdict": verdict, "measured": measured,
        }
        self._save()

    def verdicts(self) -> Any:
        """The "guide says / you measured" table (a pandas Styler; ``.data`` is the DataFrame)."""
        import pandas as pd

        rows = [
            {"guide says": v["guide"], "you measured": v["measured"], "verdict": v["verdict"]}
            for v in self.data["verdicts"].values()
        ]
        table = pd.DataFrame(rows, columns=["guide says", "you measured", "verdict"])
        # A Styler shows the whole sentences (a DataFrame would cut them at 50 characters).
        return table.style.hide(axis="index").set_properties(**{"text-align": "left"})

    # -- the checkpoint ---------------------------------------------------------------

    def checkpoint(self, checks: Mapping[str, bool]) -> None:
        """Assert the lesson's effects; each check is a sentence and a boolean.

        All are recorded (passed or not) before the first failure is raised, so the
        report shows every broken effect at once.
        """
        if not checks:
            raise ValueError("A checkpoint needs at least one check.")
        results = {name: bool(ok) for name, ok in checks.items()}
        self.data["checkpoint"] = {"passed": all(results.values()), "checks": results}
        self.data["finished"] = _now()
        self._save()
        for name, ok in results.items():
            print(("PASS  " if ok else "FAIL  ") + name)
        failed = [name for name, ok in results.items() if not ok]
        if failed:
            raise CheckpointFailed("Checkpoint failed: " + "; ".join(failed))

    def exercise(self, name: str, passed: bool) -> None:
        self.data["exercises"][name] = passed
        self._save()

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=2, default=str))
            tmp.replace(self.path)
        except OSError as exc:  # a read-only checkout must not stop the lesson
            print(f"(could not save {self.path}: {exc})")


class Exercise:
    """One question with a checker.

    ``expected`` is the right answer (usually measured in this run) and ``close`` how
    near a number must be (a fraction, 0.25 = within 25%); or give ``checker``, a
    function answer -> (ok, feedback) for anything else.
    """

    def __init__(self, name: str, question: str, *, expected: Any = None,
                 close: float | None = None,
                 checker: Callable[[Any], tuple[bool, str]] | None = None,
                 hint: str = "", solution: str = "", notebook: Notebook | None = None) -> None:
        self.name = name
        self.question = question
        self.expected = expected
        self.close = close
        self._checker = checker
        self._hint = hint
        self._solution = solution
        self._notebook = notebook
        print(f"Exercise {name}: {question}")

    def check(self, answer: Any) -> bool:
        """Print feedback on ``answer``; True when it is right."""
        if answer is None or answer is Ellipsis:
            print("Not answered yet: replace the ... with your answer and run the cell again.")
            return False
        ok, feedback = self._judge(answer)
        print(("Correct! " if ok else "Not quite. ") + feedback)
        if self._notebook is not None:
            self._notebook.exercise(self.name, ok)
        return ok

    def hint(self) -> None:
        print("Hint: " + (self._hint or "no hint for this one: re-read the experiment above."))

    def solution(self) -> None:
        print("Solution: " + (self._solution or f"{self.expected!r}"))

    def _judge(self, answer: Any) -> tuple[bool, str]:
        if self._checker is not None:
            return self._checker(answer)
        exp = self.expected
        if isinstance(exp, (int, float)) and not isinstance(exp, bool) and self.close is not None:
            try:
                value = float(answer)
            except (TypeError, ValueError):
                return False, f"expected a number, got {answer!r}."
            ok = math.isclose(value, exp, rel_tol=self.close, abs_tol=1e-9)
            return ok, f"this run measured {exp:,.4g}; you said {value:,.4g}."
        if isinstance(exp, str) and isinstance(answer, str):
            ok = answer.strip().lower() == exp.strip().lower()
            return ok, ("" if ok else "Look again at the table above.")
        ok = answer == exp
        return ok, ("" if ok else f"this run measured {exp!r}.")


def _machine() -> dict[str, Any]:
    from lessons.results import machine_facts

    return machine_facts()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    """Numbers from numpy/pandas as plain JSON values."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

