"""The workbook installs the way a learner installs it without make: a plain venv,
`pip install -r requirements.txt -e .` from the clone, then a notebook runs top to bottom
in a kernel of that venv whose working directory is notebooks/ (as JupyterLab starts it),
with `lessons` and the lab project found through the editable install alone.

It installs every pinned wheel (~220 MB), so it is the slowest test but one.  To measure
the install and not the network it installs with ``--no-index`` from a wheelhouse: the
clone's ``wheels/`` when `make wheels` made one, else a folder in the user's cache that
this test fills with `pip download` the first time (about 2 minutes here, once per
machine and Python version).  ``--no-compile`` skips writing .pyc files for every
installed module (a minute of CPU here): Python writes those it needs on first import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lessons import config

# A short notebook (LAB_INSTALL_NOTEBOOK picks another, e.g. 09_streaming).
NOTEBOOK = config.REPO / "notebooks" / f"{os.environ.get('LAB_INSTALL_NOTEBOOK') or '04_async_orm'}.ipynb"

# Run inside the new venv: where does a kernel started in notebooks/ find everything, and
# does the notebook run (quick) to its checkpoint?
PROBE = r"""
import json, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from lessons import runner

notebook, results = Path(sys.argv[1]), sys.argv[2]
probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    "import json, os, sys, lessons, lessons.config as c\n"
    "print(json.dumps({'python': sys.executable, 'cwd': os.getcwd(), 'lessons': lessons.__file__,"
    " 'lab_project': str(c.LAB_PROJECT)}))")])
NotebookClient(probe, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}},
               extra_arguments=["--IPKernelApp.log_level=ERROR"]).execute(cwd=str(notebook.parent))
kernel = json.loads(probe.cells[0].outputs[0]["text"])
t0 = time.monotonic()
ex = runner.execute(notebook, quick=True, cell_timeout=180, total_timeout=240, env={"LAB_RESULTS": results})
print(json.dumps({"kernel": kernel, "error": ex.error, "leftovers": ex.leftovers, "ok": ex.ok,
                  "checkpoint": (ex.record or {}).get("checkpoint"), "seconds": time.monotonic() - t0}))
"""


def wheelhouse() -> Path:
    """The clone's wheels/ (from `make wheels`) if it has wheels, else a cache folder."""
    if env := os.environ.get("LAB_WHEELHOUSE"):
        return Path(env)
    local = config.REPO / "wheels"
    if any(local.glob("*.whl")):
        return local
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "django-p99-lab-wheels" / f"py{sys.version_info.major}.{sys.version_info.minor}"


def build_requirements() -> list[str]:
    import tomllib

    return tomllib.loads((config.REPO / "pyproject.toml").read_text())["build-system"]["requires"]


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


# Not marked `measures`: it runs beside the other lab tests, and notebook 04's checks are
# exact counts and pg_sleep overlaps (sleeps cannot end early; 200 ms ones in parallel
# take 0.35-0.43x their sum against a 0.6 bound), which other work on the cores does not flip.
def test_pip_install_without_make_then_a_notebook_runs_from_notebooks_dir() -> None:
    times = {}
    with tempfile.TemporaryDirectory(prefix="lab-install-") as tmp:
        venv = Path(tmp) / "venv"
        python = venv / "bin" / "python"
        t0 = time.monotonic()
        done = run([sys.executable, "-m", "venv", str(venv)])
        assert done.returncode == 0, done.stderr
        times["venv"] = time.monotonic() - t0

        # Exactly the README's pip line, from the clone, offline from the wheelhouse.
        house = wheelhouse()
        install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--no-compile", "--no-index", "--find-links", str(house),
                   "-r", "requirements.txt", "-e", "."]
        t0 = time.monotonic()
        done = run(install, cwd=config.REPO, timeout=900)
        if done.returncode != 0 and "No matching distribution" in done.stderr:
            # The wheelhouse lacks a pin (first run, or requirements changed): fill it.
            t1 = time.monotonic()
            house.mkdir(parents=True, exist_ok=True)
            fill = run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "-d", str(house), "-r", "requirements.txt", *build_requirements()],
                       cwd=config.REPO, timeout=900)
            assert fill.returncode == 0, fill.stderr[-3000:]
            times["download"] = time.monotonic() - t1
            t0 = time.monotonic()
            done = run(install, cwd=config.REPO, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        times["install"] = time.monotonic() - t0

        # No hand-made .pth: the editable install alone puts lessons on the path.
        site = run([str(python), "-c", "import site; print(site.getsitepackages()[0])"]).stdout.strip()
        assert not (Path(site) / "django_p99_lab.pth").exists()
        assert list(Path(site).glob("__editable__*django_p99_lab*"))

        t0 = time.monotonic()
        done = run([str(python), "-c", PROBE, str(NOTEBOOK), str(Path(tmp) / "results")],
                   cwd=tmp, timeout=400, env={**os.environ, "PYTHONPATH": ""})
        times["notebook"] = time.monotonic() - t0
        print("install test: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])

    kernel = out["kernel"]
    assert kernel["python"] == str(python)  # the new venv's kernel, not another one
    assert kernel["cwd"] == str(NOTEBOOK.parent)
    assert kernel["lessons"] == str(config.REPO / "lessons" / "__init__.py")
    assert kernel["lab_project"] == str(config.LAB_PROJECT)
    assert out["error"] is None, out["error"]
    assert out["leftovers"] == [], out["leftovers"]
    assert out["checkpoint"] and out["checkpoint"]["passed"], out["checkpoint"]
    assert out["ok"]
