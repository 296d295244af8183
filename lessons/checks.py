"""A checkpoint's checks: each one a measured value, a comparison and a threshold.

    nb.checkpoint({
        "WSGI serves a sync view at least 1.5x faster than ASGI": at_least(ratio, 1.5),
        "a def view under WSGI makes no thread hop": equals(hops, 0),
    })

A check keeps its value and threshold, not only whether it passed, so the record (and
``python -m lessons margins``, across saved runs) shows how close each one came to
failing.  The *margin* is the relative change of the measured value that would flip the
check: 0.73 means the value could fall by 73% before ``at_least`` fails; an exact check
(``equals``) has no margin: it holds or it does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Check", "at_least", "at_most", "equals", "margin_text"]

_OPS = {">=": "at least", "<=": "at most", "==": "exactly"}


@dataclass(frozen=True)
class Check:
    """One measured value against its threshold."""

    value: Any
    op: str          # ">=", "<=" or "=="
    threshold: Any

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"op must be one of {', '.join(_OPS)}, not {self.op!r}.")
        if self.op != "==" and not _is_number(self.threshold):
            raise TypeError(f"{_OPS[self.op]} needs a number as its threshold, not {self.threshold!r}.")

    @property
    def passed(self) -> bool:
        if self.op == "==":
            return bool(self.value == self.threshold)
        if not _is_number(self.value) or math.isnan(float(self.value)):
            return False
        if self.op == ">=":
            return float(self.value) >= float(self.threshold)
        return float(self.value) <= float(self.threshold)

    @property
    def margin(self) -> float | None:
        """How far the value may move (as a fraction of itself) before the check flips;
        negative when it failed; None for an exact check or a missing value."""
        if self.op == "==" or not _is_number(self.value) or math.isnan(float(self.value)):
            return None
        value, threshold = float(self.value), float(self.threshold)
        scale = abs(value) or abs(threshold) or 1.0
        distance = value - threshold if self.op == ">=" else threshold - value
        return distance / scale

    def describe(self) -> str:
        """``4.94 (at least 1.3; margin 74%)``."""
        text = f"{_short(self.value)} ({_OPS[self.op]} {_short(self.threshold)}"
        return text + (f"; margin {margin_text(self.margin)})" if self.op != "==" else ")")

    def as_dict(self) -> dict[str, Any]:
        return {"value": _plain(self.value), "op": self.op, "threshold": _plain(self.threshold),
                "passed": self.passed, "margin": self.margin}


def at_least(value: Any, threshold: float) -> Check:
    """Passes when ``value >= threshold``."""
    return Check(value, ">=", threshold)


def at_most(value: Any, threshold: float) -> Check:
    """Passes when ``value <= threshold``."""
    return Check(value, "<=", threshold)


def equals(value: Any, expected: Any) -> Check:
    """Passes when ``value == expected`` (counts, status codes, names: exact things)."""
    return Check(value, "==", expected)


def margin_text(margin: float | None) -> str:
    return "exact" if margin is None else f"{margin:.0%}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or (
        hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf")


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, tuple):
        return list(value)
    return value


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return repr(value) if isinstance(value, str) else str(value)
