"""The guide's claims, one entry each, so every notebook's verdict names the same claim.

A notebook measures, then calls ``nb.verdict(claim_id, ...)``; the claims ledger
(``python -m lessons report``) reads those verdicts back from the saved results.  The
quotes are the guide's own words (``../shared/guide/django-p99-guide.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Claim", "CLAIMS", "VERDICTS", "claim"]

VERDICTS = ("confirmed", "refuted", "depends")


@dataclass(frozen=True)
class Claim:
    id: str
    section: int
    guide: str


CLAIMS: dict[str, Claim] = {
    c.id: c
    for c in [
        # 1. ASGI vs WSGI
        Claim("asgi-3000-wsgi-1500", 1, "ASGI: ~3,000 req/s (Django with Uvicorn); WSGI: ~1,500 req/s (Django with Gunicorn)"),
        Claim("asgi-15ms-overhead", 1, "~15ms overhead observed in some ASGI setups"),
        Claim("asgi-concurrent-nonblocking", 1, "ASGI: many concurrent requests per worker, non-blocking I/O; WSGI: one request at a time per worker, blocking I/O"),
        # 2. Production server configuration
        Claim("workers-formula", 2, "Workers = (2 x CPU cores) + 1"),
        Claim("uvicorn-workers-class", 2, "gunicorn --worker-class uvicorn.workers.UvicornWorker (production command)"),
        Claim("max-requests-jitter", 2, "--max-requests 1000 --max-requests-jitter 50"),
        Claim("timeout-keepalive", 2, "--timeout 30 --keep-alive 5"),
        # 3. Async views
        Claim("async-view-as-written", 3, "The async view: await Item.objects.all().aiterator(); JsonResponse({'items': items})"),
        Claim("async-for-external-api", 3, "Use async for external API calls"),
        Claim("async-parallel-queries", 3, "Use async for multiple database queries (run in parallel)"),
        Claim("sync-for-crud", 3, "Use sync for simple CRUD operations"),
        Claim("sync-for-cpu", 3, "Use sync for CPU-bound processing"),
        # 4. Async ORM operations
        Claim("async-orm-get-items", 4, "get_items: aget, sync_to_async(list), async for, acount, aexists; JsonResponse({'items': items, 'count': count})"),
        Claim("async-aggregation", 4, "stats = await Item.objects.aaggregate(avg_price=Avg('price'), total=Sum('quantity'))"),
        Claim("dashboard-parallel", 4, "Parallel Database Queries: run multiple queries in parallel with asyncio.create_task + asyncio.gather"),
        # 5. Middleware optimization
        Claim("minimal-middleware", 5, "Minimal middleware stack for APIs: Security, Session (only if using sessions), Common; skip CSRF, auth, messages"),
        Claim("skip-csrf-for-apis", 5, "CsrfViewMiddleware: skip for APIs"),
        Claim("timing-middleware", 5, "Custom TimingMiddleware: time.perf_counter() around get_response, X-Request-Duration header"),
        # 6. Django Ninja vs DRF
        Claim("ninja-faster-than-drf", 6, "Django Ninja (Faster) than DRF"),
        Claim("framework-numbers", 6, "Django Ninja: ~4,000 req/s; DRF: ~1,500 req/s; Raw Django: ~6,000 req/s"),
        # 7. Caching with django-redis
        Claim("django-redis-caching", 7, "Enable Redis caching (django-redis): CACHES BACKEND django_redis.cache.RedisCache, manual cache.get/cache.set"),
        Claim("hiredis-parser-class", 7, "'PARSER_CLASS': 'redis.connection.HiredisParser',  # Faster parsing"),
        Claim("delete-pattern", 7, "Pattern-based invalidation (requires django-redis): cache.delete_pattern('items:*')"),
        Claim("cache-page", 7, "View-level caching: @cache_page(60 * 5)"),
        # 8. Database connection optimization
        Claim("conn-max-age", 8, "'CONN_MAX_AGE': 60,  # Persistent connections (seconds)"),
        Claim("conn-health-checks", 8, "'CONN_HEALTH_CHECKS': True,  # Django 4.1+"),
        Claim("statement-timeout", 8, "'options': '-c statement_timeout=30000',  # 30s query timeout"),
        # 9. Response streaming (the checklist's "use iterator() for large querysets" too)
        Claim("streaming-large-responses", 9, "Implement response streaming for large data: StreamingHttpResponse(generate()) with a sync generator"),
        Claim("iterator-large-querysets", 9, "Use iterator() for large querysets: Item.objects.iterator(chunk_size=100)"),
        # 10. Profiling
        Claim("django-silk", 10, "Profile with django-silk: SilkyMiddleware early, SILKY_PYTHON_PROFILER = True; dashboard at /silk/"),
        Claim("debug-toolbar", 10, "Django Debug Toolbar (Development): debug_toolbar app and middleware, INTERNAL_IPS"),
        # 11. Quick reference
        Claim("checklist", 11, "Optimization checklist: ASGI, async views, minimal middleware, Ninja over DRF, CONN_MAX_AGE, Redis caching, silk, iterator(), streaming, query timeouts"),
        Claim("latency-budget", 11, "10ms latency budget: Middleware 1ms, Auth check 1ms, ORM query 4ms, Serialization 2ms, Response 2ms"),
        Claim("benchmark-summary", 11, "Django + Gunicorn (WSGI) ~1,500 req/s; + Uvicorn (ASGI) ~3,000; Django Ninja ~4,000; Raw Django ~6,000"),
        Claim("dj-db-conn-pool", 8, "Connection pooling: pip install django-db-connection-pool; ENGINE dj_db_conn_pool.backends.postgresql, POOL_SIZE 10, MAX_OVERFLOW 10"),
    ]
}


def claim(claim_id: str) -> Claim:
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise KeyError(f"Unknown claim {claim_id!r}: add it to lessons/claims.py first.") from None
