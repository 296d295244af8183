"""The results log: every saved run is one line of ``config.results_dir()/runs.jsonl``
with the machine's facts (raw samples left out).  ``save`` never raises: a run that
cannot be saved only warns."""

from __future__ import annotations

import json
import math
import os
import warnings as _warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessons.measure.machine import machine_facts

if TYPE_CHECKING:
    import pandas as pd

    from lessons.measure.result import Run

__all__ = ["save", "saved"]


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, keys -> str."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _record(r: Run) -> dict[str, Any]:
    meta = {k: v for k, v in r.meta.items() if k != "cpu_busy_pct"}
    return _clean({
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "label": r.label, "url": r.url, **r.to_json_dict(),
        "timeouts": r.timeouts, "send_lag_p99_ms": r.send_lag_p99_ms, "late": r.late,
        "valid": r.valid, "flags": r.flags, "warnings": r.warnings,
        "pinning": r.meta.get("cpu_plan"), "meta": meta, "machine": machine_facts(),
    })


def save(r: Run, *, directory: str | os.PathLike[str] | None = None) -> Path | None:
    """Append the run (without its raw samples) and the machine facts to
    ``runs.jsonl``.  Never raises: on failure it warns and returns None."""
    try:
        from lessons import config

        folder = Path(directory) if directory is not None else config.results_dir()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "runs.jsonl"
        line = json.dumps(_record(r), separators=(",", ":")) + "\n"
        with open(target, "a", encoding="utf-8") as f:
            f.write(line)
        return target
    except Exception as exc:  # noqa: BLE001 - saving must never fail a run
        _warnings.warn(f"run not saved ({type(exc).__name__}: {exc})", RuntimeWarning,
                       stacklevel=2)
        return None


def saved(directory: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Every saved run as a DataFrame (machine facts left out); empty if none."""
    import pandas as pd

    from lessons import config

    target = Path(directory) if directory is not None else config.results_dir()
    rows = []
    try:
        with open(target / "runs.jsonl", encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                rec.pop("machine", None)
                rec.pop("meta", None)
                rows.append(rec)
    except FileNotFoundError:
        pass
    return pd.DataFrame(rows)
