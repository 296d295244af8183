"""A request-timing middleware, written the way many projects write one: a plain function
factory without ``sync_capable``/``async_capable`` markers, so Django treats it as sync-only."""

import time


def timing_middleware(get_response):
    def middleware(request):
        started = time.perf_counter()
        response = get_response(request)
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    return middleware
