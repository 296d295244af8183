"""The Locust export (``lessons/locust_export.py``, ``python -m lessons locustfile``): the
file holds the scenario and compiles, bad input is one sentence, and the file runs headless
with one master and one worker on 127.0.0.1 against a lab server, started with the command
lines the export prints: Locust's stats count the requests it sent, none failed, and the
master's exit status follows the SLO check (an impossible SLO fails, a generous one
passes).  Counts and exit statuses only, no timing: not ``measures``."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from helpers import fetch
from lessons import procs
from lessons.__main__ import main
from lessons.locust_export import Scenario, command_lines, write_locustfile
from lessons.services import free_port

PATHS = ("/l01/hello", "/l01/items?limit=5")


def test_each_users_interval_is_ten_slos_and_the_rate_is_kept() -> None:
    sc = Scenario("http://h", ("/",), 500.0, 10.0)
    assert (sc.users, sc.interval_s) == (50, 0.1)
    assert Scenario("http://h", ("/",), 501.0, 10.0).users == 51          # never over 10 req/s each
    assert Scenario("http://h", ("/",), 5.0, 10.0).users == 1
    assert Scenario("http://h", ("/",), 5.0, 10.0).interval_s == pytest.approx(0.2)
    assert Scenario("http://h", ("/",), None, 10.0).users == 16           # closed loop: bench's -c


def test_the_file_holds_the_scenario_compiles_and_is_written(tmp_path: Path) -> None:
    out = tmp_path / "lf.py"
    text = write_locustfile("http://127.0.0.1:8000/", PATHS, rate=500, slo_ms=10, out=out)
    assert out.read_text() == text
    compile(text, str(out), "exec")
    for line in ("URL = 'http://127.0.0.1:8000'", f"PATHS = {PATHS!r}", "RATE = 500.0",
                 "USERS = 50", "SLO_MS = 10.0", "TIMEOUT_S = 2.0"):
        assert re.search(rf"^{re.escape(line)}\s", text, re.M), line
    assert "--expect-workers 2 -u 50 -r 50" in text and "locust -f - --worker" in text
    closed = write_locustfile("http://h:1", ["/a"], rate=None, slo_ms=10, out=None)
    assert "RATE = None" in closed and "USERS = 16" in closed and "closed-loop client" in closed


@pytest.mark.parametrize(("url", "paths", "rate", "slo", "word"), [
    ("ftp://h", ["/a"], 10, 10, "URL"),
    ("http://h?x=1", ["/a"], 10, 10, "URL"),
    ("http://h", [], 10, 10, "path"),
    ("http://h", ["a"], 10, 10, "path"),
    ("http://h", ['/a"b'], 10, 10, "path"),
    ("http://h", ["/a"], 0, 10, "rate"),
    ("http://h", ["/a"], float("nan"), 10, "rate"),
    ("http://h", ["/a"], 10, -1, "SLO"),
])
def test_bad_input_is_one_sentence(url, paths, rate, slo, word) -> None:
    with pytest.raises(ValueError, match=word) as err:
        write_locustfile(url, paths, rate=rate, slo_ms=slo, out=None)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")


def test_the_command_writes_the_file_and_prints_the_distributed_commands(tmp_path, capsys) -> None:
    out = tmp_path / "lf.py"
    assert main(["locustfile", "http://127.0.0.1:8000", "--path", "/a", "--path", "/b",
                 "--rate", "300", "-o", str(out), "--workers", "3", "--master-host", "10.1.2.3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].startswith(f"locust -f {out} --master --headless --master-bind-host 10.1.2.3 ")
    assert "--expect-workers 3 -u 30 -r 30 -t 60s" in printed[1]
    assert printed[3] == "locust -f - --worker --master-host 10.1.2.3 --master-port 5557"
    assert "PATHS = ('/a', '/b')" in out.read_text()
    assert main(["locustfile", "http://h", "--path", "/a"]) == 0         # no -o: file on stdout
    both = capsys.readouterr()
    assert both.out.startswith('"""Locust scenario') and "--master" in both.err
    assert main(["locustfile", "http://h", "--path", "a"]) == 2
    assert capsys.readouterr().err.startswith("locustfile: a path starts with /")
    assert main(["locustfile", "http://h", "--path", "/a", "--run-time", "0", "-o", str(out)]) == 2
    assert "whole number of seconds" in capsys.readouterr().err


def _run_distributed(lab, url: str, tmp: Path, *, rate: float, slo_ms: float):
    """Start the printed master and worker commands (on free 127.0.0.1 ports, 3 s of
    load); return the started processes, the master's log and its JSON stats file."""
    sc = Scenario(url, PATHS, rate, slo_ms)
    write_locustfile(url, PATHS, rate=rate, slo_ms=slo_ms, out=tmp / "locustfile.py")
    master, worker = command_lines(sc, "locustfile.py", workers=1, master_host="127.0.0.1",
                                   port=free_port(), run_time_s=3, csv=None)
    locust = [sys.executable, "-m", "locust"]
    started = []
    for argv, name in ((master + ["--json-file", "stats", "--only-summary"], "master"),
                       (worker, "worker")):
        started.append(procs.spawn(locust + argv[1:], cwd=tmp, log=tmp / f"{name}.log",
                                   cpus=lab.cpu_plan.client))
    return started, tmp / "master.log", tmp / "stats.json"


def test_one_master_one_worker_headless_exit_status_follows_the_slo(lab, minimal_sqlite, tmp_path) -> None:
    for path in PATHS:              # the server's first requests (imports, URLconf) come first
        for _ in range(3):
            assert fetch(minimal_sqlite, path).status == 200
    # (rate, SLO ms, the master's exit status): 1 user at 50/s; 100 users at one request
    # per 5 s each (the SLO sets each user's interval), about 60 requests in the 3 s.
    cases = {"impossible": (50.0, 0.001, 1), "generous": (20.0, 500.0, 0)}
    runs, started = {}, []
    try:
        for name, (rate, slo, _) in cases.items():   # both at once: the run takes half as long
            (tmp_path / name).mkdir()
            procs_, log, stats = _run_distributed(lab, minimal_sqlite, tmp_path / name, rate=rate, slo_ms=slo)
            started += procs_
            runs[name] = (procs_, log, stats)
        codes = {name: [p.wait(timeout=60) for p in ps] for name, (ps, _, _) in runs.items()}
    finally:
        for p in started:
            procs.stop(p)
    for name, (_, log_path, stats_path) in runs.items():
        log = log_path.read_text()
        check = re.search(r"SLO check: (PASS|FAIL)\. (\d+) requests \(Locust counted (\d+)\), (\d+) failed", log)
        assert check, log[-3000:]
        entries = json.loads(stats_path.read_text())
        sent = sum(e["num_requests"] for e in entries)
        assert sent > 0 and sum(e["num_failures"] for e in entries) == 0, (name, entries, log[-2000:])
        assert {e["name"] for e in entries} == set(PATHS)
        assert int(check.group(2)) == int(check.group(3)) == sent    # its count is Locust's
        expected = cases[name][2]
        assert check.group(1) == ("PASS" if expected == 0 else "FAIL"), log[-2000:]
        assert codes[name] == [expected, 0], (name, codes[name], log[-2000:])   # master, worker
