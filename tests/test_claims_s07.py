"""Section 7's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

from claim_examples import Examples, check_examples

NB = "07_caching"

RAN = {"raised": None, "message": ""}
IMPORT_ERROR = {"raised": "ImportError",
                "message": 'Module "redis.connection" does not define a "HiredisParser" attribute/class'}
NO_ATTRIBUTE = {"raised": "AttributeError", "message": "'RedisCache' object has no attribute 'delete_pattern'"}


def _caching(django_redis: float, get_us: tuple[float, float], hits: float = 0.99) -> dict:
    """``get_us``: one get hit with django-redis, with Django's own RedisCache."""
    return {NB: {"cache rps": {"none": 200, "locmem": 3000, "django-redis": django_redis, "redis": 2300},
                 "hit ratio": {"locmem": 0.99, "django-redis": hits, "redis": 0.99},
                 "get us": {"django-redis": get_us[0], "redis": get_us[1],
                            "redis: building its redis.Redis (no I/O)": get_us[1] / 2}}}


def _parser(outcome: dict) -> dict:
    return {NB: {"guide PARSER_CLASS": outcome,
                 "parser us": {"default": 60, "python": 64, "default parser": "_HiredisParser"}}}


def _pattern(before: int, deleted: int, after: int, kept: int, builtin: dict) -> dict:
    return {NB: {"delete_pattern": {"matching before": before, "deleted": deleted, "matching after": after,
                                    "other keys": 1, "other keys kept": kept},
                 "Django RedisCache.delete_pattern": builtin}}


def _page(def_view: float, on_def: float, on_async: float) -> dict:
    return {NB: {"cache_page rps": {"def view": def_view, "uncached": 200},
                 "ticker ms": {"delay ms": 20, "alone": 1.5, "cache_page, def view": on_def,
                               "cache_page, async def view": on_async, "cache.aget, async def view": 2.0}}}


EXAMPLES: Examples = {
    "django-redis-caching": [
        (_caching(2400, (100, 150)), "confirmed"),     # 12x, and a get 0.67x the cost of Django's
        (_caching(2400, (140, 150)), "depends"),       # Django's own RedisCache about as cheap
        (_caching(2400, (200, 150)), "depends"),       # ... or cheaper
        (_caching(250, (100, 150)), "refuted"),        # 1.25x: the cache does not pay
        (_caching(2400, (100, 150), hits=0.5), "refuted"),  # fast, but half the requests miss
    ],
    "hiredis-parser-class": [
        (_parser(IMPORT_ERROR), "refuted"),
        (_parser(RAN), "confirmed"),
    ],
    "delete-pattern": [
        (_pattern(3, 3, 0, 1, NO_ATTRIBUTE), "confirmed"),
        (_pattern(3, 2, 1, 1, NO_ATTRIBUTE), "refuted"),   # a matching key survived
        (_pattern(3, 4, 0, 0, NO_ATTRIBUTE), "refuted"),   # it deleted a key it should not have
        (_pattern(3, 3, 0, 1, RAN), "refuted"),            # Django's backend has it: not "requires"
    ],
    "cache-page": [
        (_page(2000, 3.0, 200.0), "depends"),     # pays on def views, blocks the loop on async ones
        (_page(2000, 3.0, 4.0), "confirmed"),     # the loop stays free
        (_page(250, 3.0, 4.0), "refuted"),        # no faster than no cache
    ],
}


def test_section_7_rules() -> None:
    check_examples(EXAMPLES)
