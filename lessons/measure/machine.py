"""What a reader needs to interpret a number measured on this machine: the CPU, the
OS, Python and the versions of the packages ``requirements.txt`` pins."""

from __future__ import annotations

import functools
import os
import platform
import re
from pathlib import Path
from typing import Any

__all__ = ["machine_facts", "pins"]


def pins() -> dict[str, str]:
    """Every package ``requirements.txt`` pins (name as written there: its version)."""
    from lessons import config

    found = {}
    for line in (config.REPO / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if m:
            found[m.group(1)] = m.group(3)
    return found


@functools.cache
def machine_facts() -> dict[str, Any]:
    """What a reader needs to interpret a number measured on this machine."""
    from importlib import metadata

    from lessons import cpus

    facts: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(cpus.available()),
        "os": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }
    try:
        import psutil

        facts["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001
        pass
    try:
        pinned = pins()
    except OSError:     # not a checkout: no requirements.txt beside the package
        pinned = {}
    versions: dict[str, str | None] = {}
    for name in pinned:
        try:
            versions[name.lower()] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name.lower()] = None
    facts["packages"] = versions
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                  capture_output=True, text=True, timeout=2).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or "unknown"


