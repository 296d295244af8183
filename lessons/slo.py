"""Re-exports, from ``lessons.measure``, the names notebooks and tests use today from
``lessons.slo`` (a quantile's bounds, probes and capacity intervals on a grid of rates,
the waterfall of configurations).  New code imports from ``lessons.measure`` (its
modules ``bounds``, ``grid``, ``waterfall``)."""

from lessons.measure.bounds import CONFIDENCE, allowed_over, quantile_bounds
from lessons.measure.grid import (GRID_BASE, GRID_PER_DOUBLING, Capacity, Probe, grid_index,
                                  grid_rate, probe, search)
from lessons.measure.waterfall import (THROUGHPUT_GAP, Step, StepResult, Waterfall, ameasure,
                                       differences, idle, measure, start_all, throughput_noise)

__all__ = ["quantile_bounds", "allowed_over", "grid_rate", "grid_index", "Probe", "Capacity",
           "probe", "search", "Step", "StepResult", "Waterfall", "measure", "ameasure",
           "differences", "start_all", "idle", "throughput_noise", "CONFIDENCE", "GRID_BASE",
           "GRID_PER_DOUBLING", "THROUGHPUT_GAP"]
