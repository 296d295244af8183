"""Notebook 01 in JupyterLab, in a real browser: the test starts JupyterLab (127.0.0.1, a
free port, a token), Playwright drives an installed Chromium to open the notebook and
run all its cells with LAB_QUICK=1, and then checks what a learner sees: every cell ran,
no error output outside cells tagged ``raises-exception``, the widget panel rendered as
controls (not as text), and at least one plot and one table are shown.

Playwright never downloads a browser here: it starts the Chromium found on PATH
(``chromium``, ``chromium-browser``, ``google-chrome``) or named by ``LAB_CHROMIUM``; with
none, the test is skipped and says how to enable it.  The notebook is a copy in a
temporary folder (JupyterLab's autosave is off as well), so the clone stays untouched.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

import pytest

from lessons import config, probes, procs
from lessons.services import free_port

NOTEBOOK = config.REPO / "notebooks" / "01_asgi_vs_wsgi.ipynb"
RUN_TIMEOUT = 300  # seconds for "Run All" (quick notebook 01 takes 60-90 s here)

# Chromium's flags for a headless run as root on a machine without network access: no
# sandbox (root), no GPU, and none of the background connections it would otherwise try.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# JupyterLab settings for the run: no autosave (nothing written back), every cell kept in
# the page (no windowing, so every output can be read), no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


def find_chromium() -> str | None:
    if os.environ.get("LAB_CHROMIUM"):
        return os.environ["LAB_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no Chromium found: install one (Debian/Ubuntu: `apt-get install chromium`) or "
               "set LAB_CHROMIUM to a Chromium or Chrome executable to run the real-browser test",
    ),
    pytest.mark.measures,  # notebook 01's checkpoint compares throughputs
]


def start_jupyterlab(root: Path, tmp: Path) -> tuple[object, str]:
    """JupyterLab serving ``root`` on 127.0.0.1, with its own config, runtime and settings
    folders under ``tmp``; returns the process and the base URL with the token."""
    token, port = secrets.token_hex(16), free_port()
    settings = tmp / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {**os.environ, "LAB_QUICK": "1", "LAB_RESULTS": str(tmp / "results"),
           "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"), "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
           "JUPYTER_DATA_DIR": str(tmp / "jupyter-data")}
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--LabApp.expose_app_in_browser=True"]
    if config.is_root():
        argv.append("--allow-root")
    proc = procs.spawn(argv, env=env, cwd=root, log=tmp / "jupyterlab.log")
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if probes.get(base, f"/api/status?token={token}", timeout=2).status == 200:
            return proc, f"{base}/lab/tree/{NOTEBOOK.name}?token={token}"
        if not procs.alive(proc) or time.monotonic() > deadline:
            procs.stop(proc)
            pytest.fail("JupyterLab did not start:\n" + (tmp / "jupyterlab.log").read_text()[-3000:])
        time.sleep(0.3)


# What the browser shows, read from JupyterLab's own model of the open notebook.
CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  return {
    kernel: panel.sessionContext.kernelDisplayStatus,
    cells: panel.content.widgets.map((cell, i) => ({
      index: i,
      type: cell.model.type,
      count: cell.model.type === 'code' ? cell.model.executionCount : null,
      tags: cell.model.getMetadata('tags') || [],
      errors: cell.model.type === 'code'
        ? cell.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)
        : [],
    })),
  };
}"""


def test_notebook_01_runs_in_jupyterlab_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    server, url = start_jupyterlab(root, tmp_path)
    shot = tmp_path / "notebook01.png"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url, timeout=120_000)
                # The notebook is open and its kernel is up.
                page.wait_for_function(
                    f"() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                    f" && window.jupyterapp.shell.currentWidget.title.label === '{NOTEBOOK.name}'"
                    f" && window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayStatus === 'idle'",
                    timeout=120_000)
                # Run > Run All Cells, through the menu as a learner does.
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
                t0 = time.monotonic()
                state = None
                while time.monotonic() - t0 < RUN_TIMEOUT:
                    time.sleep(2)
                    state = page.evaluate(CELLS_JS)
                    code = [c for c in state["cells"] if c["type"] == "code"]
                    ran = all(c["count"] is not None for c in code)
                    stopped = any(c["errors"] and "raises-exception" not in c["tags"] for c in code)
                    if (ran or stopped) and state["kernel"] == "idle":
                        break
                run_s = time.monotonic() - t0
                page.screenshot(path=str(shot), full_page=True)

                assert state is not None
                code = [c for c in state["cells"] if c["type"] == "code"]
                not_run = [c["index"] for c in code if c["count"] is None]
                unexpected = {c["index"]: c["errors"] for c in code
                              if c["errors"] and "raises-exception" not in c["tags"]}
                assert unexpected == {}, f"error output outside raises-exception cells: {unexpected}"
                assert not_run == [], f"cells that did not run within {RUN_TIMEOUT} s: {not_run} (screenshot {shot})"
                assert state["kernel"] == "idle"

                outputs = page.locator(".jp-Notebook .jp-OutputArea-output")
                # The widget panel: real controls (a select, a slider or a button, an input).
                widgets = outputs.locator(".jupyter-widgets")
                dropdowns, sliders = widgets.locator("select"), widgets.locator(".widget-slider")
                assert dropdowns.count() >= 1 and sliders.count() >= 1, \
                    f"the widget panel did not render as controls (screenshot {shot})"
                widgets.first.screenshot(path=str(tmp_path / "panel.png"))
                assert "Error displaying widget" not in page.inner_text(".jp-Notebook")
                # At least one plot (an image that loaded) and one table with rows.
                loaded = page.evaluate(
                    "() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img')]"
                    ".filter(img => img.complete && img.naturalWidth > 100).length")
                assert loaded >= 1, f"no plot shown (screenshot {shot})"
                assert outputs.locator("table tbody tr").count() >= 2, f"no table shown (screenshot {shot})"
                print(f"notebook 01 ran all {len(code)} code cells in JupyterLab in {run_s:.0f} s; "
                      f"{dropdowns.count()} dropdowns and {sliders.count()} sliders, {loaded} plots")
            finally:
                browser.close()
    finally:
        procs.stop(server, timeout=20)
