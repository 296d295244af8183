"""
Lesson 5, middleware: the guide's timing middleware, and a fixed one.

Add either to a server with ``LAB_MIDDLEWARE`` (a comma-separated list of dotted paths,
e.g. ``lab.middleware.ServerTimingMiddleware``) and compare.

A middleware class that does not declare otherwise is sync-only (Django's defaults are
``sync_capable = True``, ``async_capable = False``). Under an ASGI server Django then
adapts around it on every request: the middleware runs in a worker thread
(``sync_to_async``) and, when the view or the next middleware is async, calls back onto
the event loop (``async_to_sync``). ``ServerTimingMiddleware`` declares both modes and
follows the request's mode, so it adds no thread hop under ASGI and none under WSGI.
"""

import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase


class GuideTimingMiddleware:
    """The guide's ``TimingMiddleware``, verbatim (section 5), shown as-is in lesson 5.

    What it costs: it is sync-only, so under ASGI every request pays a thread hop into
    it and, before an async view, one back onto the event loop; it imports ``time`` on
    every call (a dictionary lookup once imported, but pointless); and its
    ``X-Request-Duration`` header is a non-standard name, in seconds with millisecond
    resolution, which browsers' developer tools ignore.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        import time
        start = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - start
        response['X-Request-Duration'] = f'{duration:.3f}'
        return response


class ServerTimingMiddleware:
    """The fixed version: sync and async, and the standard ``Server-Timing`` header.

    ``Server-Timing: app;dur=12.345`` (milliseconds, W3C Server Timing) shows up in
    browsers' developer tools next to the network timings. The time covers everything
    below this middleware in ``MIDDLEWARE``: the later middleware and the view.

    The pattern is the one in Django's docs ("Asynchronous support" in the middleware
    topic): declare both capabilities, and when Django hands over an async
    ``get_response`` mark the instance as a coroutine function so Django calls it on
    the event loop, with no adaptation.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if iscoroutinefunction(self):
            return self.__acall__(request)  # a coroutine: Django awaits it
        start = time.perf_counter()
        response = self.get_response(request)
        return self._stamp(response, start)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        start = time.perf_counter()
        response = await self.get_response(request)
        return self._stamp(response, start)

    @staticmethod
    def _stamp(response: HttpResponseBase, start: float) -> HttpResponseBase:
        app = f"app;dur={(time.perf_counter() - start) * 1000:.3f}"
        # Metrics a view already reported (db, serialize...) stay: one comma-separated list.
        earlier = response.get("Server-Timing")
        response["Server-Timing"] = f"{earlier}, {app}" if earlier else app
        return response
