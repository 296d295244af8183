"""The claims ledger: every claim of the guide, decided by its rule from the notebooks'
saved records (nothing is run).

    python -m lessons report                     # this machine's ledger
    python -m lessons report --json              # the same, one JSON object per claim
    python -m lessons report --compare A B ...   # learners' results/ folders side by side
    python -m lessons margins                    # each checkpoint check's margin, all runs
    python -m lessons margins --current          # ... only the checks the newest runs made

A verdict is *provisional* when a notebook it reads ran with ``LAB_QUICK=1`` (a smoke run)
or did not pass its checkpoint (the lesson's effect was not seen, so its numbers are
suspect).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lessons import config
from lessons.claims import CLAIMS, Records, evaluate
from lessons.records import all_records, read_checkpoints, records_dir

__all__ = ["rows", "ledger", "compare_saved", "margins", "KEYS"]

KEYS = ("id", "section", "guide", "verdict", "evidence", "notebook", "run", "checkpoint_passed",
        "recorded_at")


def rows(results: Path | None = None) -> list[dict[str, Any]]:
    """One dict per claim (exactly ``KEYS``), in the guide's order."""
    saved = all_records(results)
    records = Records({name: r.get("measurements", {}) for name, r in saved.items()})
    out = []
    for c in sorted(CLAIMS.values(), key=lambda c: c.section):
        v = evaluate(c, records)
        read = [saved[n] for n in c.reads if n in saved]
        measured = v.verdict != "not measured"
        out.append({
            "id": c.id, "section": c.section, "guide": c.guide, "verdict": v.verdict,
            "evidence": v.evidence, "notebook": c.notebook,
            "run": (("quick" if any(r.get("quick") for r in read) else "full")
                    if measured and read else None),
            "checkpoint_passed": _checkpoints(read) if measured else None,
            "recorded_at": max((r.get("finished") or r.get("started") or "" for r in read),
                               default=None) if measured else None,
        })
    return out


def _checkpoints(read: list[dict[str, Any]]) -> bool | None:
    """False when any notebook read failed its checkpoint, None when one has none yet."""
    states = [(r.get("checkpoint") or {}).get("passed") for r in read]
    if any(s is False for s in states):
        return False
    return None if any(s is None for s in states) or not states else True


def provisional(row: dict[str, Any]) -> bool:
    return row["verdict"] != "not measured" and (row["run"] != "full" or row["checkpoint_passed"] is not True)


def ledger(results: Path | None = None) -> Any:
    """The ledger as a DataFrame (``KEYS`` plus ``provisional``)."""
    import pandas as pd

    table = pd.DataFrame(rows(results), columns=list(KEYS))
    table["provisional"] = [provisional(r) for r in table.to_dict(orient="records")]
    return table


def _machine_label(results: Path) -> str:
    for record in all_records(results).values():
        facts = record.get("machine") or {}
        if facts:
            return f"{facts.get('cpu_model', '?')} x{facts.get('cpu_count', '?')} ({results})"
    return str(results)


def compare_saved(folders: list[Path]) -> Any:
    """The verdicts of several machines side by side, one column per results folder."""
    table = None
    for folder in folders:
        if not records_dir(folder).is_dir():
            raise FileNotFoundError(f"{folder} has no notebooks/ records: pass results/ folders "
                                    "saved by the notebooks (e.g. a learner's copy of results/).")
        column = ledger(folder).set_index(["section", "id"])["verdict"].rename(_machine_label(folder))
        table = column.to_frame() if table is None else table.join(column)
    return table


def margins(results: Path | None = None, *, current: bool = False) -> Any:
    """Per notebook and check, across every saved checkpoint: runs, failures, the
    smallest and largest value, the threshold and the smallest margin.  ``current``:
    only the checks the newest run of each notebook (quick or full) made, so a check
    renamed or removed since is left out."""
    import pandas as pd

    entries = read_checkpoints(results)
    newest = {(e["notebook"], bool(e.get("quick"))): set(e.get("checks", {})) for e in entries}
    found = []
    for entry in entries:
        for name, check in entry.get("checks", {}).items():
            if current and name not in newest[entry["notebook"], bool(entry.get("quick"))]:
                continue
            found.append({"notebook": entry["notebook"], "run": "quick" if entry.get("quick") else "full",
                          "check": name, **check})
    columns = ["notebook", "run", "check", "runs", "failed", "min value", "max value", "op",
               "threshold", "min margin"]
    if not found:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(found)
    numeric = pd.to_numeric(df["value"], errors="coerce")
    df = df.assign(number=numeric)
    out = df.groupby(["notebook", "run", "check"], sort=True).agg(
        runs=("passed", "size"), failed=("passed", lambda s: int((~s.astype(bool)).sum())),
        **{"min value": ("number", "min"), "max value": ("number", "max"), "op": ("op", "last"),
           "threshold": ("threshold", "last"), "min margin": ("margin", "min")}).reset_index()
    return out[columns]


def main(folders: list[str] | None = None, *, as_json: bool = False,
         results: str | None = None) -> int:
    import json

    import pandas as pd

    base = Path(results) if results else None
    if as_json:
        print(json.dumps(rows(base), indent=2))
        return 0
    with pd.option_context("display.max_colwidth", 90, "display.width", 250, "display.max_rows", None):
        if folders:
            print(compare_saved([Path(f) for f in folders]).to_string())
            return 0
        table = ledger(base)
        table["verdict"] = [v + (" (provisional)" if p else "")
                            for v, p in zip(table.verdict, table.provisional)]
        print(table[["section", "id", "verdict", "run", "checkpoint_passed", "evidence"]]
              .to_string(index=False))
        missing = int((table.verdict == "not measured").sum())
        shaky = int(table.provisional.sum())
        print(f"\n{len(table) - missing} of {len(table)} claims measured "
              f"(records in {records_dir(base or config.results_dir())}); {shaky} provisional "
              "(a quick run, or a checkpoint that did not pass).")
    return 0


def main_margins(results: str | None = None, *, current: bool = False) -> int:
    import pandas as pd

    table = margins(Path(results) if results else None, current=current)
    if table.empty:
        print("No checkpoint recorded yet: run a notebook (or `make run`).")
        return 0
    table["min margin"] = [("exact" if pd.isna(m) else f"{m:.0%}") for m in table["min margin"]]
    with pd.option_context("display.max_colwidth", 80, "display.width", 250, "display.max_rows", None):
        print(table.to_string(index=False, float_format=lambda v: f"{v:,.3g}"))
    return 0
