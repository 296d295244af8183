"""Django p99 Lab: the helper package every notebook imports.

The public surface is ``__all__`` below, declared once: ``Lab`` (and the objects its
methods return: ``Servers``, ``Comparison``, ``Counts``, ``Microbench``...), the notebook's
``Notebook`` and its checks, ``Profile``, a few functions, and the modules ``plots``,
``probes``, ``stages`` and ``report``.  Notebooks import only these names
(``tests/test_public_api.py`` checks it).  Every other module and name in ``lessons`` is
internal: it may change without notice (the tests import some of them directly).

``import lessons`` is cheap: the heavy parts (pandas, matplotlib, the load generator)
load on first use, so the reaper and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> "module" (the same name in it) or "module:name"
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
    "server_cores": "lessons.profile",
    "LabServer": "lessons.server",
    "quick": "lessons.config",
    "by_speed": "lessons.config",
    "set_quick": "lessons.config",
    "panel": "lessons.widgets",
    "runs_table": "lessons.measure.result:table",
    "Step": "lessons.measure.waterfall",
    "step_differences": "lessons.measure.waterfall:differences",
    "client_cost": "lessons.clients",
    "burst": "lessons.clients",
    "cheap_during": "lessons.clients",
    "generate_config": "lessons.config_for_machine:generate",
    "audit_project": "lessons.audit.api",
    "project_chooser": "lessons.audit.chooser",
}
# public modules: ``from lessons import plots``
_MODULES = ("plots", "probes", "report", "stages")

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"lessons.{name}")
    if name in _EXPORTS:
        module, _, attr = _EXPORTS[name].partition(":")
        return getattr(importlib.import_module(module), attr or name)
    raise AttributeError(f"module 'lessons' has no attribute {name!r}")
