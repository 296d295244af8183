"""Bounds on a quantile from order statistics.

With ``n`` independent samples, the number below the true p99 is binomial(n, 0.99),
which says how likely each sorted sample is to lie below or above it.  With ``n`` under
299 no upper bound exists (a p99 of a few hundred requests is their slowest or nearly);
with 300 it is the slowest request.  Consecutive latencies are not independent (a pause
delays several), so the bounds are optimistic.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["CONFIDENCE", "allowed_over", "quantile_bounds"]

CONFIDENCE = 0.95          # one-sided, for each of the two bounds


def _binom_cdf(n: int, p: float) -> Any:
    """P(B <= k) for k = 0..n, B ~ binomial(n, p), computed in log space (numpy)."""
    import numpy as np

    k = np.arange(n + 1)
    logpmf = (math.lgamma(n + 1) - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
              + k * math.log(p) + (n - k) * math.log1p(-p))
    return np.cumsum(np.exp(logpmf))


def _upper_rank(n: int, q: float, confidence: float) -> int:
    """The rank (1-based) of the sorted sample that bounds the ``q`` quantile from above
    with ``confidence``; n + 1 when none does."""
    import numpy as np

    above = np.nonzero(1 - _binom_cdf(n, q) <= 1 - confidence)[0]   # P(B > k) <= alpha
    return int(above[0]) + 1 if len(above) else n + 1


def allowed_over(n: int, q: float = 0.99, confidence: float = CONFIDENCE) -> int:
    """How many of ``n`` samples may reach the SLO while the ``q`` quantile can still be
    shown under it (-1: with ``n`` samples it never can)."""
    return n - _upper_rank(n, q, confidence)


def quantile_bounds(samples: Any, q: float = 0.99, confidence: float = CONFIDENCE
                    ) -> tuple[float, float, float]:
    """(lower bound, estimate, upper bound) of the ``q`` quantile of ``samples``: each
    bound holds with probability ``confidence`` for independent samples.  The upper
    bound is +inf when there are too few samples to bound it (fewer than
    log(1 - confidence) / log(q): 299 for a p99 at 95%)."""
    import numpy as np

    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    estimate = float(np.quantile(x, q, method="inverted_cdf"))
    cdf = _binom_cdf(n, q)           # cdf[k] = P(B <= k): B samples fall below the quantile
    # Lower: the largest j with P(B < j) <= alpha, i.e. P(X_(j) > x_q) <= alpha.
    below = np.nonzero(cdf <= 1 - confidence)[0]      # k with P(B <= k) <= alpha: j = k + 1
    lower = float(x[below[-1]]) if len(below) else -math.inf
    j = _upper_rank(n, q, confidence)
    upper = float(x[j - 1]) if j <= n else math.inf
    return lower, estimate, upper

