"""Where a notebook's record lives, and reading records back.

Each notebook writes ``<results>/notebooks/<name>.json`` as it runs (its measurements,
whether the run was quick, its checkpoint) and appends every checkpoint to
``<results>/checkpoints.jsonl``, so the claims ledger, ``make run``, the test runner and
``python -m lessons margins`` all read the same files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lessons import config

__all__ = ["records_dir", "load_record", "all_records", "checkpoint_log", "read_checkpoints"]


def records_dir(results: Path | None = None) -> Path:
    return (results or config.results_dir()) / "notebooks"


def load_record(name: str, results: Path | None = None) -> dict[str, Any] | None:
    """The saved record of notebook ``name`` (from ``results``, default LAB_RESULTS)."""
    try:
        return json.loads((records_dir(results) / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def all_records(results: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every notebook record under ``results``, by notebook name, in notebook order."""
    found = {}
    for path in sorted(records_dir(results).glob("[0-9][0-9]_*.json")):
        record = load_record(path.stem, results)
        if record:
            found[path.stem] = record
    return found


def checkpoint_log(results: Path | None = None) -> Path:
    return (results or config.results_dir()) / "checkpoints.jsonl"


def read_checkpoints(results: Path | None = None) -> list[dict[str, Any]]:
    """Every checkpoint ever recorded under ``results`` (a line cut short is skipped)."""
    lines = []
    try:
        with open(checkpoint_log(results), encoding="utf-8") as f:
            for line in f:
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
    except FileNotFoundError:
        pass
    return lines
