"""Section 7, Caching with django-redis: decided from notebook 07's records.

TODO: the rules below are placeholders (always "not measured") until the notebook records
the numbers they read; each must be replaced by a real rule.
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim

NB = "07_caching"


@claim('django-redis-caching', section=7, notebook=NB,
       guide='Enable Redis caching (django-redis): CACHES BACKEND django_redis.cache.RedisCache, manual cache.get/cache.set',
       gives=("confirmed", "refuted", "depends"))
def django_redis_caching(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for django-redis-caching")


@claim('hiredis-parser-class', section=7, notebook=NB,
       guide="'PARSER_CLASS': 'redis.connection.HiredisParser',  # Faster parsing",
       gives=("confirmed", "refuted", "depends"))
def hiredis_parser_class(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for hiredis-parser-class")


@claim('delete-pattern', section=7, notebook=NB,
       guide="Pattern-based invalidation (requires django-redis): cache.delete_pattern('items:*')",
       gives=("confirmed", "refuted", "depends"))
def delete_pattern(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for delete-pattern")


@claim('cache-page', section=7, notebook=NB,
       guide='View-level caching: @cache_page(60 * 5)',
       gives=("confirmed", "refuted", "depends"))
def cache_page(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for cache-page")
