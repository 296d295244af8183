"""Re-exports, from ``lessons.measure``, the names notebooks and tests use today from
``lessons.results`` (tables, A/B comparisons, the SLO capacity search, the machine's
facts and the results log).  New code imports from ``lessons.measure`` (its modules
``result``, ``comparison``, ``capacity``, ``machine``, ``log``)."""

from lessons.measure.capacity import Capacity, afind_slo_capacity, find_slo_capacity
from lessons.measure.comparison import Comparison, acompare_urls, compare_urls
from lessons.measure.log import save, saved
from lessons.measure.machine import machine_facts
from lessons.measure.result import Run, table

__all__ = ["Run", "table", "compare_urls", "acompare_urls", "Comparison", "find_slo_capacity",
           "afind_slo_capacity", "Capacity", "machine_facts", "save", "saved"]
