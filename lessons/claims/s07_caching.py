"""Section 7, Caching with django-redis: decided from notebook 07's records.

Records read (``nb.record`` keys of 07_caching):
  "cache rps"                {"none", "locmem", "django-redis", "redis"}: req/s of the
                             expensive endpoint with the guide's manual caching
                             (``/l07/manual``), medians of the interleaved repeats, one
                             gunicorn sync worker on one core; "none" is Django's
                             DummyCache (every get misses), "redis" Django's own RedisCache
  "hit ratio"                {backend: hits / requests}, sequential requests on one key
  "get us"                   {"django-redis": us, "redis": us, "redis: building its
                             redis.Redis (no I/O)": us}: one cache.get hit of the endpoint's
                             value on each backend, in process, and what Django's backend
                             does before each call (medians of interleaved repeats)
  "cache_page rps"           {"def view": req/s of ``/l07/cached-page`` (django-redis),
                             "uncached": the "none" row above}
  "ticker ms"                {"delay ms": the simulated Redis round trip
                             (LAB_CACHE_DELAY_MS), "alone": ms, "cache_page, def view": ms,
                             "cache_page, async def view": ms, "cache.aget, async def
                             view": ms}: a trivial request's latency next to 5 cache hits
                             on one uvicorn worker (medians)
  "guide PARSER_CLASS"       the guide's CACHES with PARSER_CLASS, run (``nb.attempt``)
  "parser us"                {"default": us, "python": us, "default parser": the class
                             redis-py picks without PARSER_CLASS}: one redis-py GET of the
                             cached value with its default parser and with its pure-Python
                             one (``_RESP3Parser``), in process (medians of interleaved repeats)
  "delete_pattern"           {"matching before": n, "deleted": n, "matching after": n,
                             "other keys": m, "other keys kept": n}: django-redis, the
                             guide's pattern
  "Django RedisCache.delete_pattern"   Django's own backend asked the same (``nb.attempt``)
"""

from __future__ import annotations

from lessons.claims._rules import Records, Verdict, claim, confirmed, depends, raised, refuted

NB = "07_caching"

PAYS = 1.5        # a cache "pays" when the endpoint serves at least 1.5x the uncached req/s
HITS = 0.95       # ... and sequential requests on one key hit at least 95% of the time
CHEAPER = 0.8     # django-redis "better" than Django's own RedisCache: a get hit costs at most
                  # 0.8x as much (in process; the medians move by a few % between runs)
BLOCKS = 3.0      # the event loop is "blocked" when the trivial request waits 3x longer
BUILD = "redis: building its redis.Redis (no I/O)"


@claim("django-redis-caching", section=7, notebook=NB,
       guide="Enable Redis caching (django-redis): CACHES BACKEND django_redis.cache.RedisCache, "
             "manual cache.get/cache.set",
       gives=("confirmed", "refuted", "depends"))
def django_redis_caching(r: Records) -> Verdict:
    """Refuted when django-redis does not make the expensive endpoint at least 1.5x
    faster with a hit ratio of at least 95%.  When it does: confirmed if a get hit with
    django-redis also costs at most 0.8x one with Django's own RedisCache (so django-redis
    is the one to enable); depends if Django's own backend is as cheap (then django-redis
    is needed only for what Django's lacks)."""
    rps, hits, get = r[NB]["cache rps"], r[NB]["hit ratio"], r[NB]["get us"]
    gain = rps["django-redis"] / rps["none"]
    text = (f"the expensive endpoint serves {rps['none']:,.0f} req/s uncached (DummyCache), "
            f"{gain:.1f}x that with django-redis ({hits['django-redis']:.0%} hits), "
            f"{rps['redis'] / rps['none']:.1f}x with Django's own RedisCache, "
            f"{rps['locmem'] / rps['none']:.1f}x with LocMem (one sync worker, one core; Valkey on "
            f"loopback); a get hit costs {get['django-redis']:.0f} us with django-redis, "
            f"{get['redis']:.0f} us with Django's own backend, which builds a new redis.Redis "
            f"for every call ({get[BUILD]:.0f} us of it, no I/O)")
    if gain < PAYS or hits["django-redis"] < HITS:
        return refuted(text)
    if get["django-redis"] <= CHEAPER * get["redis"]:
        return confirmed(text)
    return depends(text, when="Redis caching pays, but Django's own RedisCache (redis-py without "
                              "django-redis) serves a get as cheaply; django-redis adds "
                              "delete_pattern, lock and more")


@claim("hiredis-parser-class", section=7, notebook=NB,
       guide="'PARSER_CLASS': 'redis.connection.HiredisParser',  # Faster parsing",
       gives=("confirmed", "refuted"))
def hiredis_parser_class(r: Records) -> Verdict:
    """Refuted when the guide's CACHES, run as written, raised; confirmed when it ran."""
    error = raised(r[NB]["guide PARSER_CLASS"])
    p = r[NB]["parser us"]
    measured = (f"without the line redis-py picks {p['default parser']} by itself; a GET of the "
                f"cached value (one small value) takes {p['default']:.0f} us with it, "
                f"{p['python']:.0f} us with the pure-Python parser")
    if error:
        return refuted(f"the guide's setting raised {error} at the first cache call; {measured}")
    return confirmed(f"the guide's setting ran; {measured}")


@claim("delete-pattern", section=7, notebook=NB,
       guide="Pattern-based invalidation (requires django-redis): cache.delete_pattern('items:*')",
       gives=("confirmed", "refuted"))
def delete_pattern(r: Records) -> Verdict:
    """Confirmed when django-redis's delete_pattern deleted exactly the matching keys (all
    of them, and no other) and Django's own RedisCache has no delete_pattern (it raised
    AttributeError); refuted otherwise."""
    d = r[NB]["delete_pattern"]
    builtin = raised(r[NB]["Django RedisCache.delete_pattern"])
    kept, others = d["other keys kept"], d["other keys"]
    exact = (d["deleted"] == d["matching before"] and d["matching after"] == 0 and kept == others)
    requires = bool(builtin) and builtin.startswith("AttributeError")
    text = (f"django-redis: {d['matching before']} keys matched items:*, delete_pattern deleted "
            f"{d['deleted']}, {d['matching after']} matched after, {kept} of {others} other keys kept; "
            f"Django's own RedisCache: "
            + (f"raised {builtin}" if builtin else "delete_pattern ran"))
    if exact and requires:
        return confirmed(text)
    return refuted(text)


@claim("cache-page", section=7, notebook=NB,
       guide="View-level caching: @cache_page(60 * 5)",
       gives=("confirmed", "refuted", "depends"))
def cache_page(r: Records) -> Verdict:
    """Refuted when ``@cache_page`` does not make the guide's ``def`` view at least 1.5x
    faster.  When it does: depends when on an ``async def`` view it blocks the event loop
    (a trivial request next to 5 cache_page hits waits at least 3x longer than next to the
    same hits on a def view), confirmed when it does not."""
    page, t = r[NB]["cache_page rps"], r[NB]["ticker ms"]
    gain = page["def view"] / page["uncached"]
    on_def, on_async = t["cache_page, def view"], t["cache_page, async def view"]
    text = (f"on a def view, {gain:.1f}x the uncached req/s (django-redis, one sync worker); under "
            f"uvicorn, with a Redis round trip of {t['delay ms']:g} ms simulated in every cache call "
            f"(LAB_CACHE_DELAY_MS; the lab's Valkey is on loopback), a trivial request next to 5 "
            f"cache_page hits waited {on_def:.1f} ms on a def view, {on_async:.0f} ms on an async "
            f"def view ({t['cache.aget, async def view']:.1f} ms next to cache.aget, "
            f"{t['alone']:.1f} ms alone)")
    if gain < PAYS:
        return refuted(text)
    if on_async >= BLOCKS * on_def:
        return depends(text, when="it pays on def views; on an async def view its cache calls "
                                  "block the event loop")
    return confirmed(text)
