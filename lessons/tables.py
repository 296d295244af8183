"""Tables for a reader: numbers formatted by what they measure.

A column's unit is read from its name: requests per second (``rps``, ``req/s``) as whole
numbers with thousands separators; milliseconds and microseconds (``_ms``, ``(ms)``,
``us``) with about three significant digits; ratios (``ratio``, ``x``) with two decimals;
counts as whole numbers.  ``readable(df)`` returns a pandas Styler (what a notebook shows;
``.data`` is the untouched DataFrame), ``text(df)`` the same as plain text (the CLI).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["readable", "text", "fmt", "formatter"]

_RATE = re.compile(r"(^|[^a-z])(rps|req/s|rate|capacity)([^a-z]|$)", re.I)
_RATIO = re.compile(r"(ratio|\bx\)?$|\(x\)|speed-?up|gain|share)", re.I)
_TIME = re.compile(r"(_ms|\bms\b|\(ms\)|\bus\b|\(us\)|_us|µs|seconds|\(s\)|_s$|\bMB\b|bytes|memory)", re.I)


def fmt(value: Any, kind: str = "number") -> str:
    """One value as text: ``kind`` is "rate", "ratio", "time" or "number"."""
    if value is None or isinstance(value, bool) or isinstance(value, str):
        return "-" if value is None else str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if kind == "rate":
        return f"{v:,.0f}"
    if kind == "ratio":
        return f"{v:,.2f}"
    if float(v).is_integer() and kind == "number":
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def kind_of(column: Any) -> str:
    name = " ".join(str(c) for c in column) if isinstance(column, tuple) else str(column)
    if _RATIO.search(name):
        return "ratio"
    if _TIME.search(name):
        return "time"
    if _RATE.search(name):
        return "rate"
    return "number"


def formatter(column: Any) -> Callable[[Any], str]:
    kind = kind_of(column)
    return lambda v: fmt(v, kind)


def readable(df: Any, *, caption: str | None = None) -> Any:
    """``df`` as a Styler whose numbers are formatted by their column's unit."""
    import pandas as pd

    if isinstance(df, pd.Series):
        df = df.to_frame()
    styler = df.style.format({c: formatter(c) for c in df.columns})
    if df.index.dtype.kind in "if":
        styler = styler.format_index(formatter(df.index.name or ""), axis=0)
    if caption:
        styler = styler.set_caption(caption)
    return styler


def text(df: Any) -> str:
    """``df`` as plain text with the same formatting (for terminals)."""
    shown = df.copy()
    for c in shown.columns:
        f = formatter(c)
        if shown[c].dtype.kind in "iuf":
            shown[c] = [f(v) for v in shown[c]]
    return shown.to_string()
