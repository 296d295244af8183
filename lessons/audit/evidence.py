"""The number behind a finding: read from the learner's own saved notebook records.

Each notebook saves what it measured under ``<results>/notebooks/NN_name.json`` (see
``lessons/records.py``; the keys are listed in each ``lessons/claims/sNN_*.py``).  A
finding quotes the measurement with its notebook; when the learner has not run that
notebook (or it stopped before the key), it says "run notebook NN to measure it here"
rather than quoting a number measured elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from lessons import records
from lessons.tables import fmt

__all__ = ["cite", "rate", "ms", "ratio", "results_dir", "set_results_dir"]

_RESULTS: list[Path | None] = [None]


def set_results_dir(path: Path | None) -> None:
    """Read records from ``path`` (default: LAB_RESULTS or results/); tests point it at
    synthetic records."""
    _RESULTS[0] = path
    _load.cache_clear()


def results_dir() -> Path | None:
    return _RESULTS[0]


@lru_cache(maxsize=None)
def _load(name: str) -> tuple[dict[str, Any], bool] | None:
    rec = records.load_record(name, _RESULTS[0])
    if not rec or not isinstance(rec.get("measurements"), dict):
        return None
    return rec["measurements"], bool(rec.get("quick"))


class Get:
    """``get("key", "sub", ...)`` reads a nested record value; a missing one raises
    KeyError, which ``cite`` turns into "run notebook NN ..."."""

    def __init__(self, measurements: dict[str, Any]) -> None:
        self._m = measurements

    def __call__(self, *keys: str) -> Any:
        value: Any = self._m
        for k in keys:
            if not isinstance(value, dict) or k not in value or value[k] is None:
                raise KeyError(k)
            value = value[k]
        return value


def cite(notebook: str, sentence: Callable[[Get], str]) -> str:
    """``Notebook NN measured ...`` from the learner's record of ``notebook`` (e.g.
    "08_db_connections"), or the sentence that says which notebook to run."""
    number = notebook[:2]
    loaded = _load(notebook)
    if loaded is None:
        return f"run notebook {number} to measure it here"
    measurements, quick = loaded
    try:
        text = sentence(Get(measurements))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError, AttributeError):
        return f"run notebook {number} to measure it here"
    return f"Notebook {number} measured {text}" + (" (a LAB_QUICK run)." if quick else ".")


def rate(v: Any) -> str:
    return f"{fmt(float(v), 'rate')} req/s"


def ms(v: Any) -> str:
    return f"{fmt(float(v), 'time')} ms"


def ratio(v: Any) -> str:
    return fmt(float(v), "ratio")
