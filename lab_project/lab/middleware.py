"""
Lesson 5, middleware: the guide's timing middleware, and what "async-capable" takes.

Add any of these to a server with ``LAB_MIDDLEWARE`` (a comma-separated list of dotted
paths, e.g. ``lab.middleware.ServerTimingMiddleware``) and compare.

How Django 6.1 runs a middleware under ASGI (``BaseHandler.load_middleware`` and
``adapt_method_mode`` in django/core/handlers/base.py):

* A class that declares nothing is sync-only (Django reads ``sync_capable = True``,
  ``async_capable = False`` by default). Django then adapts around it: the rest of the
  chain below it is wrapped in ``async_to_sync`` and the middleware itself, called from
  the async layer above, in ``sync_to_async``: two thread hops per request.
* ``async_capable = True`` only tells Django it may hand the middleware an async
  ``get_response`` (Django chooses the adapters, hence the hops, from the flags alone).
  It makes no hop only if the middleware's per-request work then runs on the event
  loop: its ``__call__`` must await ``get_response`` and be seen as a coroutine
  function (``async def``, or ``markcoroutinefunction(self)`` when ``get_response`` is
  one; otherwise ``convert_exception_to_response`` wraps it in its sync branch), and any ``process_view`` or ``process_template_response`` it has
  must be ``async def`` too (Django wraps a sync one in ``sync_to_async``).
  ``process_exception`` is always called synchronously, on exceptions only.
* ``MiddlewareMixin`` (every middleware ``startproject`` installs) already declares
  ``sync_capable = async_capable = True`` and marks itself a coroutine function; its
  ``__acall__`` then runs ``process_request`` and ``process_response`` each through
  ``sync_to_async``: one hop per hook, per request, whatever the flags say.
* The flags on a class whose ``__call__`` is plain sync code (the guide's, with the two
  lines added) are worse than none: Django hands it an async ``get_response``, it gets a
  coroutine back instead of a response, ``response[...] = ...`` raises ``TypeError``,
  Django's (sync) exception wrapper turns it into a 500 response, and the async handler
  then fails awaiting that response: every request fails.

``ServerTimingMiddleware`` is written as Django's docs show ("Asynchronous support" in
the middleware topic): it adds no hop under ASGI and none under WSGI.
"""

import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin


class GuideTimingMiddleware:
    """The guide's ``TimingMiddleware``, verbatim (section 5), shown as-is in lesson 5.

    What it costs: it is sync-only, so under ASGI every request pays a ``sync_to_async``
    hop into it and an ``async_to_sync`` hop back onto the event loop for the rest of
    the chain; it runs an ``import`` statement on every call (a ``sys.modules`` lookup
    once imported); and its ``X-Request-Duration`` header is a non-standard name, in
    seconds rounded to the millisecond, which browsers' developer tools list among the
    response headers but not in the request's timing breakdown.
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


class GuideTimingFlagsMiddleware(GuideTimingMiddleware):
    """The guide's class with ``sync_capable = async_capable = True`` added and nothing
    else: under ASGI Django passes it an async ``get_response``, whose call returns a
    coroutine, so ``response['X-Request-Duration'] = ...`` raises ``TypeError`` on every
    request (turned into a 500 response that the async handler then cannot await: a
    second ``TypeError``). Under WSGI it works (Django runs the chain synchronously)."""

    sync_capable = True
    async_capable = True


class MixinTimingMiddleware(MiddlewareMixin):
    """The same timer as a ``MiddlewareMixin`` subclass with both flags set explicitly,
    which is what "write it async-capable (``sync_capable = async_capable = True``)"
    gives when the class follows Django's built-in middleware.

    The flags change nothing (they are ``MiddlewareMixin``'s defaults): under ASGI its
    ``__acall__`` runs ``process_request`` and ``process_response`` through
    ``sync_to_async``, two thread hops per request.
    """

    sync_capable = True
    async_capable = True

    def process_request(self, request: HttpRequest) -> None:
        request._lab_timing_start = time.perf_counter()

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        start = getattr(request, "_lab_timing_start", None)
        return response if start is None else _stamp(response, start)


class ServerTimingMiddleware:
    """The fixed version: sync and async, and the standard ``Server-Timing`` header.

    ``Server-Timing: app;dur=12.345`` (milliseconds, W3C Server Timing) shows up in
    browsers' developer tools next to the network timings. The time covers everything
    below this middleware in ``MIDDLEWARE``: the later middleware and the view, not
    Django's handler around the chain nor the server.

    The pattern is the one in Django's docs ("Asynchronous support" in the middleware
    topic): declare both capabilities, and when Django hands over an async
    ``get_response`` mark the instance as a coroutine function, so Django calls it on
    the event loop and awaits it, with no adaptation.
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
        return _stamp(response, start)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        start = time.perf_counter()
        response = await self.get_response(request)
        return _stamp(response, start)


def _stamp(response: HttpResponseBase, start: float) -> HttpResponseBase:
    app = f"app;dur={(time.perf_counter() - start) * 1000:.3f}"
    # Metrics a view already reported (db, serialize...) stay: one comma-separated list.
    earlier = response.get("Server-Timing")
    response["Server-Timing"] = f"{earlier}, {app}" if earlier else app
    return response
