"""Section 6, Django Ninja vs DRF: decided from notebook 06's records.

Records read (``nb.record`` keys of 06_ninja_vs_drf):
  "rps"                          {"<n> items": {framework: req/s}}: medians of the
                                 interleaved repeats, one gunicorn sync worker on one core,
                                 16 connections, the same rows and response bytes
                                 for every framework (frameworks: raw, ninja, drf, and
                                 in a full run raw-orjson, ninja-orjson; sizes 1, 100 and
                                 1000 items, a LAB_QUICK run 1 and 1000 only)
  "rps spread"                   {"<n> items": {framework: [slowest, fastest]}}: req/s of
                                 the slowest and the fastest repeat
  "serialization us per item"    {"<n> items": {framework: us per item}}: rows already
                                 fetched to response bytes, in process, pinned
"""

from __future__ import annotations

from lessons.claims._rules import Records, Verdict, claim, confirmed, depends, refuted

NB = "06_ninja_vs_drf"

# "Faster" at a payload size: Ninja's median req/s at least 1.1x DRF's, and beyond the
# spread of the repeats (Ninja's slowest repeat faster than DRF's fastest).
FASTER = 1.1
# The guide's numbers, and how far a measured proportion may be from theirs and still
# count as the same: their absolute values come from an unknown machine and benchmark,
# so only the proportions can be compared.
GUIDE = {"raw": 6000, "ninja": 4000, "drf": 1500}
PROPORTION_TOLERANCE = 1.35


def _items(key: str) -> int:
    """"100 items" -> 100."""
    return int(key.split()[0])


def _sizes(rps: dict) -> list[str]:
    return sorted(rps, key=_items)


def _n(key: str) -> str:
    n = _items(key)
    return f"{n:,} item" + ("" if n == 1 else "s")


@claim("ninja-faster-than-drf", section=6, notebook=NB,
       guide="Django Ninja (Faster) than DRF",
       gives=("confirmed", "refuted", "depends"))
def ninja_faster_than_drf(r: Records) -> Verdict:
    """Compares Ninja's and DRF's throughput at the smallest and the largest payload.  At
    a size Ninja is faster when its median req/s is at least 1.1x DRF's and its slowest
    repeat beat DRF's fastest (the difference is beyond the spread).  Confirmed when it
    is faster at both sizes; depends when at one of them only; refuted when at neither
    (the same speed within the noise, or slower)."""
    rps, spread = r[NB]["rps"], r[NB]["rps spread"]
    per_item = r[NB]["serialization us per item"]
    sizes = _sizes(rps)
    small, large = sizes[0], sizes[-1]

    def ratio(s: str) -> float:
        return rps[s]["ninja"] / rps[s]["drf"]

    def faster(s: str) -> bool:
        return ratio(s) >= FASTER and spread[s]["ninja"][0] > spread[s]["drf"][1]

    def at(s: str) -> str:
        (n_lo, n_hi), (d_lo, d_hi) = spread[s]["ninja"], spread[s]["drf"]
        return (f"{ratio(s):.2f}x at {_n(s)} (Ninja {n_lo:,.0f}-{n_hi:,.0f}, DRF {d_lo:,.0f}-{d_hi:,.0f} "
                f"req/s over the repeats)")

    item = per_item[large]
    text = (f"Ninja / DRF throughput, medians: {at(small)}, {at(large)}; one sync worker, one core, "
            f"the same rows and bytes; turning rows into bytes costs Ninja {item['ninja']:.1f} us and "
            f"DRF {item['drf']:.1f} us per item at {_n(large)}")
    wins = [s for s in (small, large) if faster(s)]
    if len(wins) == 2:
        return confirmed(text)
    if not wins:
        return refuted(text)
    return depends(text, when=f"Ninja is faster, beyond the spread, at {_n(wins[0])} only")


@claim("framework-numbers", section=6, notebook=NB,
       guide="Django Ninja: ~4,000 req/s; DRF: ~1,500 req/s; Raw Django: ~6,000 req/s",
       gives=("confirmed", "refuted", "depends"))
def framework_numbers(r: Records) -> Verdict:
    """The guide's absolute numbers cannot be compared across machines (their source is
    unknown), their proportions can: raw / Ninja = 1.5 and Ninja / DRF = 2.67.  At each
    measured payload size the proportions hold when both measured ratios are within
    1.35x of the guide's.  Confirmed when they hold at every size, refuted at none,
    depends (on the size) otherwise."""
    rps = r[NB]["rps"]
    sizes = _sizes(rps)
    want = (GUIDE["raw"] / GUIDE["ninja"], GUIDE["ninja"] / GUIDE["drf"])

    def proportions(s: str) -> tuple[float, float]:
        return rps[s]["raw"] / rps[s]["ninja"], rps[s]["ninja"] / rps[s]["drf"]

    def holds(s: str) -> bool:
        return all(1 / PROPORTION_TOLERANCE <= got / guide <= PROPORTION_TOLERANCE
                   for got, guide in zip(proportions(s), want))

    parts = []
    for s in sizes:
        a, b = proportions(s)
        parts.append(f"at {_n(s)} raw {rps[s]['raw']:,.0f}, Ninja {rps[s]['ninja']:,.0f}, DRF "
                     f"{rps[s]['drf']:,.0f} req/s (raw/Ninja {a:.2f}x, Ninja/DRF {b:.2f}x)")
    text = ("one sync worker on one core, " + "; ".join(parts) + f"; the guide's numbers, of "
            f"unknown origin, give raw/Ninja {want[0]:.2f}x and Ninja/DRF {want[1]:.2f}x")
    matching = [s for s in sizes if holds(s)]
    if len(matching) == len(sizes):
        return confirmed(text)
    if not matching:
        return refuted(text)
    return depends(text, when="the guide's proportions hold at " + ", ".join(_n(s) for s in matching)
                   + " only")
