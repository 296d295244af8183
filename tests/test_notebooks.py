"""Every notebook runs top to bottom headless (LAB_QUICK=1) in a fresh kernel, shows no
unexpected error, leaves no process behind, records its results and passes its
checkpoint; and every committed notebook is stripped of outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lessons import report, runner
from lessons.claims import CLAIMS

NOTEBOOKS = runner.notebooks()
# The notebooks that follow a section of the guide: those its claims name.  The others
# (12, your own project) go beyond the guide and have no claim to set beside a measurement.
GUIDE_NOTEBOOKS = {c.notebook for c in CLAIMS.values()}
CELL_TIMEOUT = 180  # seconds; a quick notebook's slowest cell takes a fraction of this
NOTEBOOK_TIMEOUT = 240  # seconds; quick notebooks take well under a minute


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/NN_*.ipynb should exist"


def test_every_section_of_the_guide_has_its_notebook() -> None:
    assert GUIDE_NOTEBOOKS <= {p.stem for p in NOTEBOOKS}
    sections = {c.section for c in CLAIMS.values()}
    assert sections == set(range(1, max(sections) + 1)), "a section of the guide without claims"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_stripped(path: Path) -> None:
    assert runner.stripped_problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_the_agreed_shape(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), "a parameters cell"
    assert any("Lab(" in s for s in sources) and any("lab.close()" in s for s in sources)
    assert any(".checkpoint(" in s for s in sources), "a checkpoint"
    assert any(".exercise(" in s for s in sources), "an exercise with a checker"
    # The "guide says / you measured" table, where the notebook follows a section of the guide.
    assert any(".verdicts()" in s for s in sources) == (path.stem in GUIDE_NOTEBOOKS)
    assert not any(".verdict(" in "".join(c["source"]) for c in code), "verdicts come from the claims' rules"
    assert not any("asyncio.run(" in s or "nest_asyncio" in s for s in sources), "top-level await only"
    hidden = [c for c in code if "solution" in c.get("metadata", {}).get("tags", [])]
    assert hidden and all(c["metadata"].get("jupyter", {}).get("source_hidden") for c in hidden)
    assert all(".verify(" in "".join(c["source"]) for c in hidden), "a solution cell proves, silently"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One results folder for the whole run, as on a learner's machine: the notebooks run
    in order, and the last one's claims ledger reads every earlier notebook's record."""
    return tmp_path_factory.mktemp("results")


@pytest.mark.measures
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless(path: Path, results: Path) -> None:
    ex = runner.execute(path, quick=True, cell_timeout=CELL_TIMEOUT,
                        total_timeout=NOTEBOOK_TIMEOUT, env={"LAB_RESULTS": str(results)})
    assert ex.error is None, ex.error
    assert ex.leftovers == [], f"{path.name} left processes running: {ex.leftovers}"
    record = ex.record
    assert record is not None, f"{path.name} recorded no results"
    assert record["quick"] is True
    assert record["measurements"], "the notebook recorded no measurement"
    mine = [r for r in report.rows(results) if r["notebook"] == path.stem]
    assert bool(mine) == (path.stem in GUIDE_NOTEBOOKS), "the claims of the guide this notebook measures"
    unmeasured = [r["id"] for r in mine if r["verdict"] == "not measured"]
    assert not unmeasured, f"claims left without a verdict: {unmeasured}"
    assert record["checkpoint"] and record["checkpoint"]["passed"], record["checkpoint"]
    print(f"{path.stem}: {ex.seconds:.1f} s")
