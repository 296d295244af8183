"""Section 11, Quick reference: decided from notebook 11's records, and for the closing
benchmark table from notebooks 01 and 06.

Records read (``nb.record`` keys):

11_quick_reference
  "waterfall"   [{"step": text, "checklist": bool (an item of the guide's checklist),
                  "measured": bool (False: provably the same work as the step before, not
                  re-measured), "change": "up" | "down" | "none" | "start" | "not re-measured"
                  (the SLO capacity's range over the repeats against the step before's),
                  "throughput change": the same for the throughput at saturation}, ...]
  "milestones"  {"start", "checklist" (every item applied, silk removed after profiling),
                 "tuned" (the last measured step): {"low": req/s, "high": req/s (the SLO
                 capacity's range over the repeats: the rate shown to hold the SLO in every
                 repeat, the lowest of the searches' results; the highest rate some search
                 did not show to hold it), "throughput": req/s
                 (median), "throughput min", "throughput max"}}
  "slo ms"      the SLO (10)
  "budget"      {"rate": req/s, "samples": n, "guide ms": {stage: ms},
                 "p99 ms": {stage: p99}, "p99 high ms": {stage: the p99's upper bound},
                 "total p99 ms": p99, "total p99 interval ms": [low, high]}
01_asgi_vs_wsgi
  "rps"         {"sync view": {server kind: req/s}, "async view": {...}}
06_ninja_vs_drf
  "rps"         {"<N> items": {framework: req/s}}, frameworks "raw", "ninja", "drf" (others
                ignored); read defensively: the payload nearest the guide's 100 items, names
                matched case-insensitively.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from lessons.claims._rules import Missing, Records, Verdict, claim, confirmed, depends, refuted

NB = "11_quick_reference"
NB01 = "01_asgi_vs_wsgi"
NB06 = "06_ninja_vs_drf"

FASTER = 1.5   # "~3,000 vs ~1,500": 2x; a ratio of 1.5 or more still says "ASGI is faster"
ORDERED = 1.2  # each framework at least 1.2x the next (the guide: 6,000 / 4,000 / 1,500)
PROFILING = "Profile with"  # the checklist's profiling item: on, then removed after profiling


def _top(c: Mapping[str, Any]) -> float:
    """A capacity's "not shown at" rate (inf: the highest rate probed passed; recorded as None)."""
    return math.inf if c["high"] is None else c["high"]


def _range(c: Mapping[str, Any]) -> str:
    low, high = c["low"], c["high"]
    if not low:
        return f"under {high:,.0f}"
    return f"{low:,.0f}-{high:,.0f}" if high else f"{low:,.0f}+"


@claim("checklist", section=11, notebook=NB,
       guide="Optimization checklist: ASGI, async views, minimal middleware, Ninja over DRF, "
             "CONN_MAX_AGE, Redis caching, silk, iterator(), streaming, query timeouts",
       gives=("confirmed", "refuted", "depends"))
def checklist(r: Records) -> Verdict:
    """Applied one item at a time to one endpoint.  The SLO capacity decides when some
    configuration held the SLO (a capacity above 0); where none did, even at the grid's
    lowest rate, the throughput at saturation decides.  Confirmed when the whole
    checklist (silk removed after profiling) raises the measure beyond the repeats'
    spread and no item lowers it; depends when it raises it but some items lower it;
    refuted when the whole checklist does not raise it beyond the spread.  The profiling
    item is undone within the list (silk comes out after profiling): its cost while on
    is stated in the evidence, not counted as an item lowering the measure (else no
    run could confirm: a profiler on every request always costs throughput)."""
    steps = r[NB]["waterfall"]
    m = r[NB]["milestones"]
    start, done, tuned = m["start"], m["checklist"], m["tuned"]
    by_slo = any(c["low"] > 0 for c in (start, done, tuned))
    if by_slo:
        up = done["low"] > 0 and done["low"] >= _top(start)
        key, measure = "change", f"the SLO capacity (p99 under {r[NB]['slo ms']:g} ms)"
    else:
        up = done["throughput min"] > start["throughput max"] and done["throughput"] >= 1.1 * start["throughput"]
        key, measure = "throughput change", (f"the throughput at saturation, since neither the start, the checklist "
                                             f"complete nor the last measured step held p99 under {r[NB]['slo ms']:g} ms "
                                             f"at the lowest rate probed, {start['high']:,.0f} req/s")
    items = [s for s in steps if s.get("checklist")]
    # Profiling is undone within the checklist (silk comes out once it has shown what it
    # shows): what it costs while on is reported, not counted against the finished list.
    profiling = [s for s in items if str(s["step"]).startswith(PROFILING)]
    lowered = [s["step"] for s in items if s.get(key) == "down" and s not in profiling]
    raised = [s["step"] for s in items if s.get(key) == "up"]
    text = (f"measure: {measure}; throughput, req/s: start {start['throughput']:,.0f}, the checklist complete "
            f"{done['throughput']:,.0f}, after the measured changes {tuned['throughput']:,.0f}; SLO capacity, req/s: "
            f"{_range(start)}, {_range(done)}, {_range(tuned)}; "
            + (f"items that raised the measure: {'; '.join(raised) or 'none'}; lowered it: "
               f"{'; '.join(lowered) or 'none'}" if items else "the items were not measured one at a time")
            + "".join(f"; while on, {s['step']} changed it: {s.get(key)} (removed after profiling)"
                      for s in profiling))
    if up and lowered:
        return depends(text, when="the checklist as a whole raises the measure, but some of its items lower it")
    if up:
        return confirmed(text)
    return refuted(text)


@claim("latency-budget", section=11, notebook=NB,
       guide="10ms latency budget: Middleware 1ms, Auth check 1ms, ORM query 4ms, Serialization 2ms, "
             "Response 2ms",
       gives=("confirmed", "refuted", "depends"))
def latency_budget(r: Records) -> Verdict:
    """Each stage timed per request at a fixed open-loop rate: confirmed when the whole
    request's p99 is shown under 10 ms and every stage's p99 (its upper bound) within the
    guide's line; refuted when the whole request's p99 is shown over 10 ms; depends
    otherwise (it fits, but not as the guide splits it, or too close to tell)."""
    b = r[NB]["budget"]
    guide, p99 = b["guide ms"], b["p99 ms"]
    # An upper bound recorded as None is infinite: too few requests to bound the p99.
    high = {s: math.inf if v is None else v for s, v in b["p99 high ms"].items()}
    total, (t_low, t_high) = b["total p99 ms"], b["total p99 interval ms"]
    t_high = math.inf if t_high is None else t_high
    over = [s for s, line in guide.items() if high[s] > line]
    text = (f"at {b['rate']:,.0f} req/s ({b['samples']:,} requests), p99 by stage: "
            + ", ".join(f"{s} {p99[s]:.2f} ms" + (f" (guide {guide[s]:g})" if s in guide else "")
                        for s in p99)
            + f"; the whole request {total:.2f} ms (bounds {t_low:.2f}-{t_high:.2f})")
    if t_low >= 10:
        return refuted(text)
    if t_high < 10 and not over:
        return confirmed(text)
    if t_high < 10:
        return depends(text, when=f"the request fits 10 ms at p99, but not as the guide splits it "
                                  f"({', '.join(over)} over its line)")
    return depends(text, when="the whole request's p99 is too close to 10 ms to tell"
                   + (f" ({', '.join(over)} over its line)" if over else ""))


def _frameworks(r06: Mapping[str, Any]) -> tuple[str, dict[str, float]]:
    """The payload nearest 100 items and its req/s by framework (raw, ninja, drf)."""
    rps = r06["rps"]
    payloads = []
    for key, by in rps.items() if isinstance(rps, Mapping) else ():
        found = re.match(r"\s*(\d+)", str(key))
        if found and isinstance(by, Mapping):
            names = {str(k).lower(): v for k, v in by.items()}
            if all(isinstance(names.get(f), (int, float)) and names[f] > 0 for f in ("raw", "ninja", "drf")):
                payloads.append((abs(math.log(int(found.group(1)) / 100)) if int(found.group(1)) else 99,
                                 str(key), {f: float(names[f]) for f in ("raw", "ninja", "drf")}))
    if not payloads:
        raise Missing(NB06, "rps (raw, ninja and drf by payload)")
    _, key, by = min(payloads)
    return key, by


@claim("benchmark-summary", section=11, notebook=NB,
       guide="Django + Gunicorn (WSGI) ~1,500 req/s; + Uvicorn (ASGI) ~3,000; Django Ninja ~4,000; "
             "Raw Django ~6,000",
       gives=("confirmed", "refuted", "depends"), reads=(NB01, NB06))
def benchmark_summary(r: Records) -> Verdict:
    """Absolute req/s belong to a machine; the table's shape does not: ASGI twice WSGI
    (01, the better of a def and an async def view under uvicorn against a def view under
    gunicorn sync) and raw > Ninja > DRF (06, the payload nearest 100 items). Confirmed
    when both hold (ASGI at least 1.5x, each framework at least 1.2x the next), refuted
    when neither does, depends when one does."""
    rps = r[NB01]["rps"]
    wsgi = rps["sync view"]["gunicorn-sync"]
    asgi = max(rps["sync view"]["uvicorn"], rps["async view"]["uvicorn"])
    payload, fw = _frameworks(r[NB06])
    servers_hold = asgi / wsgi >= FASTER
    order_holds = fw["raw"] >= ORDERED * fw["ninja"] and fw["ninja"] >= ORDERED * fw["drf"]
    text = (f"01 (one worker, one core): uvicorn's best {asgi:,.0f} req/s against gunicorn sync's "
            f"{wsgi:,.0f} ({asgi / wsgi:.2f}x; the guide 2x); 06 at {payload}: raw {fw['raw']:,.0f}, "
            f"Ninja {fw['ninja']:,.0f}, DRF {fw['drf']:,.0f} (the guide 6,000 / 4,000 / 1,500)")
    if servers_hold and order_holds:
        return confirmed(text)
    if not servers_hold and not order_holds:
        return refuted(text)
    holds = "the frameworks' order holds, ASGI over WSGI does not" if order_holds else \
        "ASGI over WSGI holds, the frameworks' order does not"
    return depends(text, when=holds)
