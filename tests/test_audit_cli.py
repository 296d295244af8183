"""``python -m lessons audit``'s command line (issue 14): bad input is one sentence on
stderr and exit status 2 with nothing left running; ``--json`` has exactly the contract's
keys; ``--html`` is one self-contained page; the exit status follows the findings.

All with ``--static`` or on synthetic endpoint rows: no server is started, no lock needed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lessons.__main__ import main
from lessons.audit.findings import Audit, Finding
from lessons.audit.output import html_report, text_report

SAMPLE = Path(__file__).parent / "sample_project"
FINDING_KEYS = {"id", "severity", "where", "message", "fix", "evidence"}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("audit: ") and lines[0].endswith("."), lines[0]
    return lines[0]


@pytest.fixture()
def sample_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "shop_project"
    shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_static_sample_exits_1_and_clean_variant_exits_0(capsys):
    code, out, err = run(capsys, str(SAMPLE), "--static")
    assert code == 1, err
    assert "HIGH   debug-on  (shop/settings.py:17)" in out
    assert out.rstrip().endswith("Exit status 1: 4 high-severity findings.")
    code, out, err = run(capsys, str(SAMPLE), "--static", "--settings", "shop.settings_clean")
    assert code == 0, out + err
    assert "HIGH" not in out


def test_json_has_exactly_the_contracts_keys(capsys):
    code, out, _ = run(capsys, str(SAMPLE), "--static", "--json")
    data = json.loads(out)
    assert code == 1
    assert set(data) == {"project", "settings", "findings", "endpoints", "waterfall"}
    assert data["settings"] == "shop.settings" and Path(data["project"]) == SAMPLE.resolve()
    assert data["findings"] and all(set(f) == FINDING_KEYS for f in data["findings"])
    assert data["endpoints"] == [] and data["waterfall"] == []


def test_html_is_one_self_contained_page(capsys, tmp_path):
    page = tmp_path / "audit.html"
    code, out, err = run(capsys, str(SAMPLE), "--static", "--html", str(page))
    assert code == 1 and f"wrote {page}" in err
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "debug-on" in text and "shop/settings.py:82" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(|@import|<script|<link""", text, re.I)
    assert "http://" not in text and "https://" not in text


def test_html_and_text_with_measured_rows_inline_their_plots():
    finding = Finding("debug-on", "high", "s.py:1", "m.", "f.", "run notebook 10 to measure it here")
    endpoints = [{"path": "/api/a/", "server": server, "rps": 1234.5, "p99_ms": p99,
                  "slo_capacity_rps": cap, "hops_per_request": hops, "queries_per_request": 1}
                 for server, p99, cap, hops in (("gunicorn-sync", 4.2, 800.0, 0), ("uvicorn", 14.0, 0, 6))]
    waterfall = [{"step": i, "change": change, "path": "/api/a/", "server": "uvicorn",
                  "slo_capacity_rps": cap, "p99_ms": p99}
                 for i, (change, cap, p99) in enumerate([("start", 100.0, 30.0), ("WSGI server", 700.0, 5.0)])]
    audit = Audit("/p", "s.settings", [finding], endpoints, waterfall)
    page = html_report(audit)
    assert page.count('src="data:image/png;base64,') == 3  # p99, capacity, one waterfall
    assert "https://" not in page and "http://" not in page
    text = text_report(audit, width=100)
    assert "1,234" in text and "Exit status 1: 1 high-severity finding and 1 endpoint measurement over the 10 ms SLO." in text
    assert Audit("/p", "s", [], endpoints[:1]).exit_status() == 0
    assert Audit("/p", "s", [], endpoints[1:]).exit_status() == 1


def test_the_slo_fails_on_the_fixed_rate_p99_and_a_capacity_of_0_reads_under():
    """A p99 under the SLO at the fixed rate passes even when no grid probe held the SLO
    with confidence (its capacity reads "under N", not 0); an endpoint too slow to serve
    the fixed rate (no p99 there) fails."""
    held = {"path": "/a/", "server": "uvicorn", "rps": 900.0, "p99_ms": 6.8, "p99_rate": 100,
            "slo_capacity_rps": 0, "slo_capacity_not_shown_at_rps": 40.0}
    too_slow = {"path": "/b/", "server": "uvicorn", "rps": 30.0, "p99_ms": None, "p99_rate": 100,
                "slo_capacity_rps": 0, "slo_capacity_not_shown_at_rps": 40.0}
    assert Audit("/p", "s", [], [held]).exit_status() == 0
    assert Audit("/p", "s", [], [held, too_slow]).slo_failures() == [too_slow]
    text = text_report(Audit("/p", "s", [], [held, too_slow]), width=120)
    assert "under 40" in text and "95% confidence" in text
    assert "1 endpoint measurement over the 10 ms SLO at 100 req/s" in text


def test_not_a_django_project(capsys, tmp_path):
    code, out, err = run(capsys, str(tmp_path), "--static")
    assert code == 2 and out == ""
    assert "is not a Django project (no manage.py" in one_sentence(err)


def test_a_settings_module_that_raises_leaves_nothing_running(capsys, sample_copy):
    marker = sample_copy / "spawned.pid"
    (sample_copy / "shop" / "settings_broken.py").write_text(
        "import subprocess\n"
        "from .settings import *  # noqa\n"
        f"open({str(marker)!r}, 'w').write(str(subprocess.Popen(['sleep', '60']).pid))\n"
        "raise RuntimeError('the settings could not find SHOP_SECRET_KEY')\n")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    code, out, err = run(capsys, str(sample_copy), "--static", "--settings", "shop.settings_broken")
    assert code == 2 and out == ""
    sentence = one_sentence(err)
    assert "RuntimeError: the settings could not find SHOP_SECRET_KEY" in sentence
    assert "(at shop/settings_broken.py:4)" in sentence
    spawned = int(marker.read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(spawned) and psutil.Process(spawned).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the project's child process is still running"
        time.sleep(0.05)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


def test_manage_py_without_a_settings_default(capsys, sample_copy):
    (sample_copy / "manage.py").write_text("import sys\nprint(sys.argv)\n")
    code, _, err = run(capsys, str(sample_copy), "--static")
    assert code == 2 and "--settings" in one_sentence(err)


def test_python_without_django_is_one_sentence(capsys, tmp_path):
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    code, out, err = run(capsys, str(SAMPLE), "--static", "--python", str(venv))
    assert code == 2 and out == ""
    sentence = one_sentence(err)
    assert f"{venv}/bin/python cannot import Django (ModuleNotFoundError: No module named 'django')" in sentence
    assert "pass --python with the project's own interpreter" in sentence


def test_missing_interpreter_and_conflicting_options(capsys, tmp_path):
    code, _, err = run(capsys, str(SAMPLE), "--static", "--python", str(tmp_path / "nope"))
    assert code == 2 and "no executable interpreter there" in one_sentence(err)
    code, _, err = run(capsys, str(SAMPLE), "--static", "--apply")
    assert code == 2 and "--static measures nothing" in one_sentence(err)
