"""Execute notebooks headless, the way CI and ``make run`` do.

One function, ``execute``, runs a notebook top to bottom in a fresh kernel with nbclient
and reports what a reviewer needs: how long it took, the first error (cells tagged
``raises-exception`` may raise), which processes the notebook left running when its
last cell finished, and the record it wrote (checkpoint and verdicts).  The test suite
and ``python -m lessons run`` both call it, so they can never disagree.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
import psutil

from lessons import config
from lessons.records import load_record

__all__ = ["Execution", "execute", "notebooks", "run_all", "stripped_problems"]

NOTEBOOKS = config.REPO / "notebooks"


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@dataclass
class Execution:
    path: Path
    seconds: float = 0.0
    error: str | None = None
    leftovers: list[str] = field(default_factory=list)
    record: dict[str, Any] | None = None
    nb: Any = None

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def checkpoint_passed(self) -> bool:
        return bool(self.record and self.record.get("checkpoint") and self.record["checkpoint"]["passed"])

    @property
    def ok(self) -> bool:
        return self.error is None and not self.leftovers and self.checkpoint_passed


class _Stop(RuntimeError):
    pass


def execute(path: Path, *, quick: bool = True, cell_timeout: int = 300,
            total_timeout: float = 600, env: dict[str, str] | None = None,
            progress: Callable[[str], None] | None = None) -> Execution:
    """Run one notebook in a fresh kernel; never raises for a failing notebook.

    ``progress`` gets a short line about every 15 s of a long run."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    result = Execution(path, nb=nb)
    kernel_env = {**os.environ, **(env or {}), "LAB_QUICK": "1" if quick else "0"}
    # The kernel's own log at ERROR: it otherwise warns on every start that it talks TCP
    # on loopback without encryption, which is all a local headless run needs.
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(path.parent)}})
    started = datetime.now(UTC).replace(microsecond=0)
    t0 = last_said = time.monotonic()
    try:
        with client.setup_kernel(env=kernel_env, cwd=str(path.parent)):
            kernel = _kernel_process(client)
            for index, cell in enumerate(nb.cells):
                if progress and time.monotonic() - last_said > 15:
                    last_said = time.monotonic()
                    progress(f"  ... cell {index + 1} of {len(nb.cells)}, {last_said - t0:.0f} s")
                if time.monotonic() - t0 > total_timeout:
                    raise _Stop(f"over the {total_timeout:.0f} s budget before cell {index}")
                client.execute_cell(cell, index)
                if cell.cell_type == "code" and "raises-exception" not in cell.metadata.get("tags", []):
                    for out in cell.get("outputs", []):
                        if out.get("output_type") == "error":
                            raise _Stop(f"cell {index} shows an error: {out.get('ename')}: {out.get('evalue')}")
            result.leftovers = _leftovers(kernel)
    except CellExecutionError as exc:
        result.error = _short(str(exc))
    except _Stop as exc:
        result.error = str(exc)
    except Exception as exc:  # kernel died, timeout...
        result.error = f"{type(exc).__name__}: {_short(str(exc))}"
    result.seconds = time.monotonic() - t0
    record = load_record(path.stem, Path(kernel_env.get("LAB_RESULTS") or config.results_dir()))
    # Only this run's record counts: an older one on disk says nothing about this run.
    if record and datetime.fromisoformat(record["started"]) >= started:
        result.record = record
    return result


def _kernel_process(client: Any) -> psutil.Process | None:
    try:
        return psutil.Process(client.km.provisioner.process.pid)
    except (AttributeError, psutil.Error):
        return None


def _leftovers(kernel: psutil.Process | None) -> list[str]:
    """Processes the kernel still has after its last cell (the reaper excepted)."""
    if kernel is None:
        return []
    time.sleep(0.2)
    left = []
    for p in kernel.children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
            if p.status() == psutil.STATUS_ZOMBIE or "lessons.procs" in cmd:
                continue
            left.append(f"{p.pid} {cmd[:100]}")
        except psutil.Error:
            continue
    return left


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _short(text: str, lines: int = 25) -> str:
    """The end of an error, without the terminal colours IPython puts in tracebacks."""
    parts = _ANSI.sub("", text).strip().splitlines()
    return "\n".join(parts[-lines:])


def stripped_problems(path: Path) -> list[str]:
    """Why a committed notebook is not clean: outputs, execution counts, widget state."""
    nb = nbformat.read(path, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            if cell.get("outputs"):
                problems.append(f"cell {i} has outputs")
            if cell.get("execution_count") is not None:
                problems.append(f"cell {i} has an execution count")
    if "widgets" in nb.metadata:
        problems.append("saved widget state in the notebook metadata")
    return problems


def run_all(names: list[str] | None = None, *, quick: bool = False,
            out_dir: Path | None = None) -> int:
    """``make run``: execute notebooks into build/ (notebook + HTML), print a summary."""
    from nbconvert import HTMLExporter

    out_dir = out_dir or config.REPO / "build"
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [p for p in notebooks() if not names or any(n in p.stem for n in names)]
    if not chosen:
        print("No notebooks to run yet (notebooks/NN_*.ipynb).")
        return 0
    runs = []
    for path in chosen:
        print(f"running {path.name} ({'quick' if quick else 'full length'})...", flush=True)
        # Full length, one cell may run a whole experiment (notebook 11's waterfall: ~4.5 min).
        ex = execute(path, quick=quick, cell_timeout=300 if quick else 600,
                     total_timeout=900 if not quick else 300,
                     progress=lambda line: print(line, flush=True))
        nbformat.write(ex.nb, out_dir / path.name)
        html, _ = HTMLExporter().from_notebook_node(ex.nb)
        (out_dir / f"{path.stem}.html").write_text(html)
        runs.append(ex)
        print(f"  {'ok' if ex.ok else 'FAILED'} in {ex.seconds:.0f} s", flush=True)
    print(summary(runs))
    print(f"Executed notebooks and HTML: {out_dir}")
    return 0 if all(ex.ok for ex in runs) else 1


def summary(runs: list[Execution], results: Path | None = None) -> str:
    from lessons import report

    by_notebook: dict[str, dict[str, int]] = {}
    for row in report.rows(results):
        counts = by_notebook.setdefault(row["notebook"], {})
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    lines = [f"{'notebook':<28} {'time':>6}  checkpoint  verdicts"]
    for ex in runs:
        counts = by_notebook.get(ex.name, {})
        vtext = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "-"
        state = "passed" if ex.checkpoint_passed else "FAILED"
        lines.append(f"{ex.name:<28} {ex.seconds:>5.0f}s  {state:<10}  {vtext}")
        if ex.error:
            lines.append(f"    error: {ex.error.splitlines()[-1][:150]}")
        for left in ex.leftovers:
            lines.append(f"    left running: {left}")
    return "\n".join(lines)
