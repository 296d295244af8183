"""Django p99 Lab: the helper package every notebook imports.

``import lessons`` is cheap: the heavy parts (pandas, matplotlib, the load generator)
load on first use, so the reaper and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Lab": "lessons.lab",
    "Notebook": "lessons.notebook",
    "Exercise": "lessons.exercises",
    "at_least": "lessons.checks",
    "at_most": "lessons.checks",
    "equals": "lessons.checks",
    "readable": "lessons.tables",
    "Profile": "lessons.profile",
    "ProfileError": "lessons.profile",
    "LabServer": "lessons.server",
    "quick": "lessons.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lessons' has no attribute {name!r}")
