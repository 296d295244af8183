"""The claims ledger: every claim of the guide, its verdict and this machine's numbers,
read from the notebooks' saved records (nothing is run).

    python -m lessons report                     # this machine's ledger
    python -m lessons report --compare A B ...   # learners' results/ folders side by side
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lessons import config
from lessons.claims import CLAIMS
from lessons.notebook import load_record

__all__ = ["ledger", "compare", "records"]


def records(results: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every notebook record under ``results`` (default: this machine's), by notebook."""
    folder = (results or config.results_dir()) / "notebooks"
    found = {}
    for path in sorted(folder.glob("[0-9][0-9]_*.json")):
        record = load_record(path.stem, results or config.results_dir())
        if record:
            found[path.stem] = record
    return found


def ledger(results: Path | None = None) -> Any:
    """One row per claim of the guide (in the guide's order): verdict, what was measured,
    which notebook measured it and when; "not measured" where no notebook has yet."""
    import pandas as pd

    measured: dict[str, dict[str, Any]] = {}
    for name, record in records(results).items():
        for claim_id, v in record.get("verdicts", {}).items():
            measured[claim_id] = {**v, "notebook": name, "when": record.get("finished") or record.get("started"),
                                  "quick": record.get("quick")}
    rows = []
    for claim in sorted(CLAIMS.values(), key=lambda c: c.section):
        m = measured.get(claim.id)
        rows.append({
            "section": claim.section,
            "claim": claim.id,
            "guide says": claim.guide,
            "verdict": m["verdict"] if m else "not measured",
            "you measured": m["measured"] if m else "",
            "notebook": m["notebook"] if m else "",
            "quick run": m["quick"] if m else None,
        })
    return pd.DataFrame(rows)


def _machine_label(results: Path) -> str:
    for record in records(results).values():
        facts = record.get("machine") or {}
        if facts:
            return f"{facts.get('cpu_model', '?')} x{facts.get('cpu_count', '?')} ({results})"
    return str(results)


def compare(folders: list[Path]) -> Any:
    """The verdicts of several machines side by side, one column per results folder."""
    table = None
    for folder in folders:
        if not (folder / "notebooks").is_dir():
            raise FileNotFoundError(f"{folder} has no notebooks/ records: pass results/ folders "
                                    "saved by the notebooks (e.g. a learner's copy of results/).")
        column = ledger(folder).set_index(["section", "claim"])["verdict"].rename(_machine_label(folder))
        table = column.to_frame() if table is None else table.join(column)
    return table


def main(folders: list[str] | None = None) -> int:
    import pandas as pd

    with pd.option_context("display.max_colwidth", 90, "display.width", 250,
                           "display.max_rows", None):
        if folders:
            print(compare([Path(f) for f in folders]).to_string())
        else:
            table = ledger()
            print(table[["section", "claim", "verdict", "you measured"]].to_string(index=False))
            missing = (table.verdict == "not measured").sum()
            print(f"\n{len(table) - missing} of {len(table)} claims measured on this machine "
                  f"(records in {config.results_dir() / 'notebooks'}).")
    return 0
