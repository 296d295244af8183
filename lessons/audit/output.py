"""What ``audit`` prints: a terminal report, ``--json`` (the contract's keys exactly), and
``--html FILE`` (one self-contained page: inline CSS, tables, plots as inline base64 PNGs,
no external URL, so it reads offline and attaches to a CI run).

Numbers go through ``lessons.tables.formatter`` (the unit read from the column name), as
every table of the notebooks does.  pandas and matplotlib are imported only for the HTML
plots, so ``--static`` stays fast.
"""

from __future__ import annotations

import base64
import html
import io
import json
import shutil
import textwrap
from collections.abc import Sequence
from typing import Any

from lessons.audit.findings import SEVERITIES, Audit
from lessons.audit.timing import capacity_under
from lessons.tables import formatter

__all__ = ["text_report", "json_report", "html_report", "ENDPOINT_COLUMNS", "WATERFALL_COLUMNS"]

ENDPOINT_COLUMNS = ("path", "server", "rps", "p99_ms", "slo_capacity_rps", "hops_per_request",
                    "queries_per_request")
WATERFALL_COLUMNS = ("step", "change", "path", "server", "slo_capacity_rps", "p99_ms")


def _shown(row: dict[str, Any], column: str) -> Any:
    """A capacity of 0 means no rate probed held the SLO: it is under the next rate of the
    grid (``slo_capacity_not_shown_at_rps``), not zero."""
    under = capacity_under(row) if column == "slo_capacity_rps" else None
    return under or row.get(column)


CAPACITY_NOTE = ("slo_capacity_rps: the highest rate on the lab's grid whose probe held the SLO "
                 "with 95% confidence (the p99's upper bound from order statistics under {slo:g} ms; "
                 "with 300 requests, every one of them), so it can lie under a rate whose measured "
                 "p99 is under the SLO.")


def _cells(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[list[str]]:
    fmts = {c: formatter(c) for c in columns}
    return [[v if isinstance(v := _shown(row, c), str) else fmts[c](v) for c in columns] for row in rows]


def _text_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as aligned plain-text columns (numbers right-aligned)."""
    cells = _cells(rows, columns)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(not isinstance(row.get(c), str) for row in rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _summary(audit: Audit) -> str:
    counts = {s: sum(f.severity == s for f in audit.findings) for s in SEVERITIES}
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _verdict(audit: Audit) -> str:
    status = audit.exit_status()
    highs = sum(f.severity == "high" for f in audit.findings)
    if status == 0:
        return "Exit status 0: no high-severity finding and no endpoint over the SLO."
    reasons = [f"{highs} high-severity finding{'s' if highs != 1 else ''}"] if highs else []
    slow = audit.slo_failures()
    if slow:
        rate = slow[0].get("p99_rate")
        at = f" at {rate:g} req/s (p99 over it, or a throughput under that rate)" if rate else ""
        reasons.append(f"{len(slow)} endpoint measurement{'s' if len(slow) != 1 else ''} over "
                       f"the {audit.slo_ms:g} ms SLO{at}")
    return f"Exit status {status}: " + " and ".join(reasons) + "."


def text_report(audit: Audit, *, width: int | None = None) -> str:
    """The terminal report: findings (severity, id, where, then what, fix and the
    measured number, wrapped), the endpoint and waterfall tables when measured."""
    width = width or min(shutil.get_terminal_size((100, 20)).columns, 120)
    out = [f"Audit of {audit.project} (settings {audit.settings})", "",
           f"Findings: {_summary(audit)}" if audit.findings else "Findings: none"]
    wrap = lambda label, text: textwrap.fill(  # noqa: E731
        text, width, initial_indent=f"      {label}", subsequent_indent=" " * (6 + len(label)),
        break_on_hyphens=False, break_long_words=False)
    for i, f in enumerate(audit.findings, 1):
        out += ["", f"{i:>3}. {f.severity.upper():<6} {f.id}  ({f.where})",
                wrap("", f.message), wrap("fix: ", f.fix), wrap("measured: ", f.evidence)]
    if audit.endpoints:
        out += ["", f"Endpoints (SLO p99 < {audit.slo_ms:g} ms)", _text_table(audit.endpoints, ENDPOINT_COLUMNS),
                CAPACITY_NOTE.format(slo=audit.slo_ms)]
    if audit.waterfall:
        out += ["", "Waterfall (--apply)", _text_table(audit.waterfall, WATERFALL_COLUMNS)]
    out += ["", _verdict(audit)]
    return "\n".join(out)


def json_report(audit: Audit) -> str:
    """One JSON object: project, settings, findings, endpoints, waterfall."""
    return json.dumps(audit.to_json_dict(), indent=2, default=str)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:70rem;
color:#222;line-height:1.4}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f3f3}.high{color:#b00020;font-weight:600}.medium{color:#a05a00}.low{color:#555}
code{font-size:.85rem}img{max-width:100%}.verdict{font-weight:600}
"""


def _html_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = _cells(rows, columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f"<td{'' if isinstance(row.get(c), str) else ' class=n'}>{html.escape(v)}</td>"
            for c, v in zip(columns, cell)) + "</tr>"
        for row, cell in zip(rows, cells))
    return f"<table><tr>{head}</tr>{body}</table>"


def _findings_html(audit: Audit) -> str:
    if not audit.findings:
        return "<p>No static finding.</p>"
    rows = "".join(
        f"<tr><td class={f.severity}>{f.severity}</td><td><code>{html.escape(f.id)}</code></td>"
        f"<td><code>{html.escape(f.where)}</code></td><td>{html.escape(f.message)}</td>"
        f"<td>{html.escape(f.fix)}</td><td>{html.escape(f.evidence)}</td></tr>"
        for f in audit.findings)
    return ("<table><tr><th>severity</th><th>id</th><th>where</th><th>what</th><th>fix</th>"
            f"<th>measured</th></tr>{rows}</table>")


def _png(ax: Any) -> str:
    """An Axes' figure as an inline <img> (base64 PNG), and the figure closed."""
    import matplotlib.pyplot as plt

    fig = ax.figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _plots(audit: Audit) -> list[str]:
    """p99 and SLO capacity per endpoint and server; one capacity waterfall per path."""
    if not (audit.endpoints or audit.waterfall):
        return []
    import matplotlib

    matplotlib.use("Agg")
    from lessons import plots

    imgs = []
    label = lambda e: f"{e['path']} ({e['server']})"  # noqa: E731
    p99 = {label(e): e["p99_ms"] for e in audit.endpoints if e.get("p99_ms") is not None}
    if p99:
        imgs.append(_png(plots.bars(p99, unit="p99 (ms)", slo_ms=audit.slo_ms,
                                    title="p99 at the measured rate")))
    cap = {label(e): e["slo_capacity_rps"] for e in audit.endpoints if e.get("slo_capacity_rps") is not None}
    if cap:
        imgs.append(_png(plots.bars(cap, unit="req/s", title=f"SLO capacity (p99 < {audit.slo_ms:g} ms)")))
    for path in dict.fromkeys(s.get("path") for s in audit.waterfall):
        steps = [s for s in audit.waterfall if s.get("path") == path and s.get("slo_capacity_rps") is not None]
        if steps:
            imgs.append(_png(plots.waterfall([str(s["step"]) for s in steps],
                                             [float(s["slo_capacity_rps"]) for s in steps],
                                             title=f"--apply on {path}: SLO capacity per step")))
    return imgs


def html_report(audit: Audit) -> str:
    """The whole report as one HTML page with everything inline."""
    parts = [f"<h1>Audit of <code>{html.escape(audit.project)}</code></h1>",
             f"<p>Settings <code>{html.escape(audit.settings)}</code>. Findings: "
             f"{html.escape(_summary(audit))}.</p>", "<h2>Findings</h2>", _findings_html(audit)]
    if audit.endpoints:
        parts += [f"<h2>Endpoints (SLO p99 &lt; {audit.slo_ms:g} ms)</h2>",
                  _html_table(audit.endpoints, ENDPOINT_COLUMNS)]
    if audit.waterfall:
        parts += ["<h2>Waterfall (--apply)</h2>", _html_table(audit.waterfall, WATERFALL_COLUMNS)]
    plots = _plots(audit)
    if plots:
        parts += ["<h2>Plots</h2>", *plots]
    parts.append(f"<p class=verdict>{html.escape(_verdict(audit))}</p>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>Audit of {html.escape(audit.project)}</title><style>{_CSS}</style></head>"
            "<body>" + "\n".join(parts) + "</body></html>\n")
