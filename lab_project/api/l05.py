"""
Lesson 5, middleware: endpoints whose answer depends on which middleware is installed,
to show what trimming the stack removes besides time.

* ``POST /l05/echo`` accepts any POST. With ``CsrfViewMiddleware`` (the ``default``
  preset) a POST without a CSRF token is refused with 403; without it (``minimal``,
  ``none``) the same cross-site POST is accepted. The guide's "skip CSRF for APIs" is
  only safe for APIs that do not authenticate with cookies.
* ``GET /l05/whoami`` reads ``request.user``, which only ``AuthenticationMiddleware``
  sets: without it the view says so instead of failing with ``AttributeError``, as any
  code that assumes ``request.user`` (the admin, ``login_required``...) would.

Headers and hops are measured on ``/l01/hello`` and ``/l01/hello-async``; the timing
middleware lives in ``lab/middleware.py``.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST


@require_POST
def echo(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "method": request.method})


@require_GET
def whoami(request: HttpRequest) -> JsonResponse:
    if not hasattr(request, "user"):
        return JsonResponse({
            "user": None,
            "note": "request.user is not set: AuthenticationMiddleware is not installed.",
        })
    user = request.user
    # Anonymous here unless a session cookie names a user: the lab has no login flow.
    return JsonResponse({"user": "anonymous" if user.is_anonymous else user.get_username()})


urlpatterns = [
    path("echo", echo),
    path("whoami", whoami),
]
