"""What a notebook keeps: its measurements and its checkpoint.  Verdicts are not kept:
the claims' rules (``lessons.claims``) compute them from the measurements.

    nb = Notebook("01_asgi_vs_wsgi")
    nb.record("rps", {"gunicorn-sync": 2100.0, "uvicorn": 600.0})
    with nb.attempt("guide async view"):      # the guide's code, as written
        await async_view(request)             # what it raised (or that it ran) is recorded
    nb.verdicts()                             # the "guide says / you measured" table
    nb.checkpoint({"WSGI beats ASGI for sync views": at_least(ratio, 1.5)})

Everything is written to ``results/notebooks/<name>.json`` as it happens, so the test
harness, ``make run`` and the claims ledger read the same file, and a notebook that
stops half-way still leaves what it measured.  Every checkpoint is also appended to
``results/checkpoints.jsonl`` (``python -m lessons margins`` reads it).
"""

from __future__ import annotations

import contextlib
import json
import math
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lessons import config
from lessons.checks import Check
from lessons.records import checkpoint_log, load_record, records_dir

__all__ = ["Notebook", "CheckpointFailed", "Attempt", "load_record", "records_dir"]


class CheckpointFailed(AssertionError):
    """The lesson's effect was not seen in this run: the lesson (or the lab) is broken."""


@dataclass
class Attempt:
    """What running the guide's code as written did: ``error`` is what it raised (None
    when it ran)."""

    key: str
    error: BaseException | None = None

    @property
    def raised(self) -> bool:
        return self.error is not None


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
            "exercises": {},
            "checkpoint": None,
            "machine": _machine(),
        }
        self._save()

    # -- measurements -----------------------------------------------------------------

    def record(self, key: str, value: Any) -> Any:
        """Keep one measured number (or a small dict/list of them); returns it."""
        self.data["measurements"][key] = _plain(value)
        self._save()
        return value

    @contextlib.contextmanager
    def attempt(self, key: str) -> Iterator[Attempt]:
        """Run the guide's code as written inside ``with nb.attempt(key):``; what it
        raised (type and message) or that it ran is recorded under ``key`` and printed,
        and the exception stops only the block, not the notebook."""
        outcome = Attempt(key)
        try:
            yield outcome
        except Exception as exc:  # noqa: BLE001 - the point is to see what it raises
            outcome.error = exc
            self.record(key, {"raised": type(exc).__name__, "message": str(exc)})
            frames = traceback.format_exception(exc, limit=-2)
            print("The guide's code raised (the last frames):\n" + "".join(frames).rstrip())
        else:
            self.record(key, {"raised": None, "message": ""})
            print("The guide's code ran without an exception.")

    # -- verdicts ---------------------------------------------------------------------

    def verdicts(self) -> Any:
        """The "guide says / you measured" table: each claim this notebook measures,
        decided by its rule from the records (a pandas Styler; ``.data`` is the table)."""
        import pandas as pd

        from lessons import report

        rows = [{"guide says": r["guide"], "you measured": r["evidence"], "verdict": r["verdict"]}
                for r in report.rows() if r["notebook"] == self.name]
        table = pd.DataFrame(rows, columns=["guide says", "you measured", "verdict"])
        # A Styler shows the whole sentences (a DataFrame would cut them at 50 characters).
        return table.style.hide(axis="index").set_properties(**{"text-align": "left"})

    # -- the checkpoint ---------------------------------------------------------------

    def checkpoint(self, checks: Mapping[str, Check]) -> None:
        """Assert the lesson's effects: each check is a sentence and a ``Check`` (a
        measured value against its threshold, from ``at_least``, ``at_most``, ``equals``).

        All are recorded with their values and thresholds (passed or not) before the
        first failure is raised, so the report shows every broken effect at once.
        """
        if not checks:
            raise ValueError("A checkpoint needs at least one check.")
        for name, check in checks.items():
            if not isinstance(check, Check):
                raise TypeError(f"Check {name!r} is a {type(check).__name__}: give a measured value "
                                "and its threshold with at_least(), at_most() or equals().")
        results = {name: check.as_dict() for name, check in checks.items()}
        passed = all(r["passed"] for r in results.values())
        self.data["checkpoint"] = {"passed": passed, "checks": results}
        self.data["finished"] = _now()
        self._save()
        self._log({"notebook": self.name, "quick": self.data["quick"], "at": self.data["finished"],
                   "passed": passed, "checks": results})
        for name, check in checks.items():
            print(("PASS  " if check.passed else "FAIL  ") + f"{name}: {check.describe()}")
        failed = [name for name, check in checks.items() if not check.passed]
        if failed:
            raise CheckpointFailed("Checkpoint failed: " + "; ".join(failed))

    # -- exercises --------------------------------------------------------------------

    def exercise(self, name: str, *data: Any) -> Any:
        """Ask this notebook's exercise ``name`` (defined in ``lessons.exercises``, with
        its hint and solution out of sight), built from this run's ``data``."""
        from lessons.exercises import ask

        return ask(self, name, *data)

    def exercise_done(self, name: str, passed: bool) -> None:
        self.data["exercises"][name] = passed
        self._save()

    # -- saving -----------------------------------------------------------------------

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=2, default=str))
            tmp.replace(self.path)
        except OSError as exc:  # a read-only checkout must not stop the lesson
            print(f"(could not save {self.path}: {exc})")

    def _log(self, entry: dict[str, Any]) -> None:
        try:
            with open(checkpoint_log(), "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, default=str) + "\n")
        except OSError as exc:
            print(f"(could not append to {checkpoint_log()}: {exc})")


def _machine() -> dict[str, Any]:
    from lessons.measure.machine import machine_facts

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
