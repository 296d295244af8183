"""Measuring: load runs, comparisons, SLO capacities and the results log.

One job per module; each imports only the ones listed before it here (no cycle):

``spec``       what a run is asked to do (``LoadSpec``), checked; the limits that judge it
``result``     ``Run``, one measured run, and ``table(runs)``
``timing``     the load process's precise timer and per-CPU busy time
``generator``  the load generator inside a load process
``child``      the load process's entry point (``python -m lessons.measure.child``)
``validity``   one rule per validity warning, and the run's flags
``merge``      one ``Run`` from every load process's result
``machine``    the machine's facts (package versions from ``requirements.txt``)
``log``        the results log (``save``, ``saved``)
``launch``     ``run``/``arun``: start the load processes, merge, save if asked
``comparison`` A/B comparisons (``compare_urls``, ``acompare_urls``, ``Comparison``)
``capacity``   the SLO capacity search (``find_slo_capacity``, ``CapacitySearch``)
``bounds``     a quantile's bounds from order statistics
``grid``       probes and capacity intervals on a grid of rates
``waterfall``  configurations measured one after another on that grid

The names below load on first use, so the load process (``child``) imports nothing more
than it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LoadSpec": "spec",
    "Run": "result",
    "table": "result",
    "run": "launch",
    "arun": "launch",
    "Comparison": "comparison",
    "compare_urls": "comparison",
    "acompare_urls": "comparison",
    "Capacity": "capacity",
    "find_slo_capacity": "capacity",
    "afind_slo_capacity": "capacity",
    "machine_facts": "machine",
    "save": "log",
    "saved": "log",
    "quantile_bounds": "bounds",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"lessons.measure.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'lessons.measure' has no attribute {name!r}")
