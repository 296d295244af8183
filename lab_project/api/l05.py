"""
Lesson 5, middleware: endpoints whose answer depends on which middleware is installed,
to show what trimming the stack removes besides time.

* ``POST /l05/echo`` accepts any POST. With ``CsrfViewMiddleware`` (the ``default``
  preset) a POST without a CSRF token is refused with 403; without it (``minimal``,
  ``none``) the same cross-site POST is accepted.
* ``GET /l05/whoami`` reads ``request.user``, which only ``AuthenticationMiddleware``
  sets: without it the view says so instead of failing with ``AttributeError``, as any
  code that assumes ``request.user`` (the admin, ``login_required``...) would.
* ``GET|POST /l05/drf-whoami`` is a DRF view with DRF's default authentication classes
  (``SessionAuthentication``, then ``BasicAuthentication``; the lab's settings turn them
  off project-wide, this view puts them back). DRF views are ``csrf_exempt``, so
  ``CsrfViewMiddleware`` never refuses them; ``SessionAuthentication`` does its own CSRF
  check, for requests it authenticates. It reads the user that
  ``AuthenticationMiddleware`` put on Django's request (``request._request.user``):
  without that middleware a logged-in session is silently anonymous, and the CSRF check
  is skipped with it.

``demo_session()`` makes the logged-in session those requests send: run it in-process
(``lab.django_setup()`` in a notebook), then send its key as the ``sessionid`` cookie.

Headers and hops are measured on ``/l01/hello`` and ``/l01/hello-async``; the timing
middleware lives in ``lab/middleware.py``.
"""

from importlib import import_module

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

DEMO_USER = "lab-demo"


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


class DrfWhoAmI(APIView):
    """Who DRF's default authentication says the caller is (GET, or a POST that changes
    nothing: what a CSRF attack would send)."""

    # DRF's own default (rest_framework/settings.py DEFAULTS), which the lab's
    # REST_FRAMEWORK setting replaces with [] for the other lessons.
    authentication_classes = [SessionAuthentication, BasicAuthentication]
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(self._who(request))

    def post(self, request: Request) -> Response:
        return Response(self._who(request))

    @staticmethod
    def _who(request: Request) -> dict[str, str | None]:
        user = request.user
        by = request.successful_authenticator
        return {"user": "anonymous" if user.is_anonymous else user.get_username(),
                "authenticated by": type(by).__name__ if by is not None else None}


def demo_session(username: str = DEMO_USER) -> str:
    """A logged-in session for ``username`` (created once, with no usable password),
    stored as ``django.contrib.auth.login()`` stores one; returns its key, the value of
    the ``sessionid`` cookie. Sync ORM code: call it through ``sync_to_async`` from a
    notebook cell."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth import get_user_model

    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


urlpatterns = [
    path("echo", echo),
    path("whoami", whoami),
    path("drf-whoami", DrfWhoAmI.as_view()),
]
