"""Re-exports, from ``lessons.measure``, the names notebooks and tests use today from
``lessons.load`` (the load generator: ``run``, ``arun``, ``Run`` and its limits).  New
code imports from ``lessons.measure`` (see its modules ``launch``, ``result``, ``spec``)."""

from lessons.measure.launch import arun, run
from lessons.measure.result import Run
from lessons.measure.spec import BUSY_PCT, LAG_LIMIT_MS, LATE_MS, MAX_CONNECTIONS, SATURATED_PCT

__all__ = ["Run", "run", "arun", "LATE_MS", "LAG_LIMIT_MS", "SATURATED_PCT",
           "MAX_CONNECTIONS", "BUSY_PCT"]
