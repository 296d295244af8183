"""
Lesson 6, Django Ninja vs DRF vs raw Django: one query, one payload, five ways.

Every endpoint answers ``GET .../items?limit=N`` (1 to 1000, default 10) with the first N
items by id as ``[{"id","name","category","price","quantity"}, ...]``: compact JSON
(no spaces), UTF-8 (non-ASCII characters not escaped: orjson cannot escape them), price
a string with two decimals (a ``Decimal`` never becomes a float).

What is the same everywhere: the SQL (one query, ``SELECT id, name, category, price,
quantity FROM catalog_item ORDER BY id LIMIT N``: the raw endpoints ask for it with
``.values(*FIELDS)``, Ninja and DRF with ``.only(*FIELDS)``, which Django compiles to the
same statement), the rows, and the bytes of the response body.  What differs, besides
the framework's own request and response handling: the Python objects built from the
rows.  The raw endpoints get one dict per row (``.values()``); Ninja and DRF get one
``Item`` model instance per row (``.only()``: the two columns not selected, ``active``
and ``created``, are deferred and never read), as their documentation and the guide
write them, and read the fields as attributes.  ``ROWS`` lets a notebook time that
difference alone.

* ``/l06/raw/items``: ``.values()`` + ``JsonResponse`` (the standard library's json with
  Django's encoder). The floor of plain Django.
* ``/l06/raw-orjson/items``: ``.values()`` + ``orjson.dumps`` in an ``HttpResponse``.
* ``/l06/ninja/items``: Django Ninja, a sync operation with a response ``Schema`` (model
  instances validated by pydantic, dumped, rendered with the standard json).
* ``/l06/ninja-orjson/items``: the same operation on a second ``NinjaAPI`` whose renderer
  is orjson.
* ``/l06/drf/items``: DRF, ``@api_view`` + a ``ModelSerializer`` + ``Response``.

What each framework is given (``settings.REST_FRAMEWORK``): DRF renders with
``JSONRenderer`` only, so a browser's ``Accept: text/html`` cannot switch it to the
browsable API (other bytes, templates, many times slower); it parses JSON only and has
no authentication classes, like the Ninja and raw endpoints (nobody authenticates, so
DRF's default Session and Basic authenticators would only add work the others skip);
its permission stays the default ``AllowAny``; its content negotiation, request
wrapping, throttling and versioning hooks stay as shipped. DRF's ``JSONRenderer`` is
compact and UTF-8 by default (``COMPACT_JSON``, ``UNICODE_JSON``) and its
``DecimalField`` gives strings (``COERCE_DECIMAL_TO_STRING``). Ninja's docs and OpenAPI
URLs are turned off (not part of the race). Neither framework is in ``INSTALLED_APPS``:
nothing here needs their templates or static files. ``limit`` is checked by the same
code everywhere, so a bad value gets the same 400 body; Ninja's own query validation
would answer 422 with its own body. Ninja answers ``Content-Type: application/json;
charset=utf-8`` (it always adds the charset), the others plain ``application/json``.

Under an ASGI server DRF pays one thread hop more than the others: its ``Response`` is a
``SimpleTemplateResponse``, which Django's async handler renders in a ``sync_to_async``
of its own, after the view's.

Known difference outside the lab's data: DRF's renderer escapes U+2028 and U+2029 and
the others do not. The seeded names and categories are ASCII, so the bytes agree.

``SERIALIZERS`` and ``fetch`` let a notebook time serialization alone, in process,
without HTTP; see ``SERIALIZERS``.
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from catalog.models import Item
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from ninja import NinjaAPI, Schema
from ninja.operation import ResponseObject
from ninja.renderers import BaseRenderer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer
from rest_framework.response import Response

from api.params import row_limit
from api.render import COMPACT_JSON, CompactJSONRenderer, orjson_bytes

FIELDS = ("id", "name", "category", "price", "quantity")
DEFAULT_LIMIT = 10  # as lesson 1


def _rows(limit: int) -> QuerySet:
    """The raw endpoints' query: one dict per row (no model instances)."""
    return Item.objects.order_by("id").values(*FIELDS)[:limit]


def _items(limit: int) -> QuerySet:
    """Ninja's and DRF's query: the same SQL as ``_rows``, one ``Item`` per row."""
    return Item.objects.order_by("id").only(*FIELDS)[:limit]


def _values(limit: int) -> list[dict[str, Any]]:
    return list(_rows(limit))


def _instances(limit: int) -> list[Item]:
    return list(_items(limit))


# The query and the Python objects built from its rows, without any serialization: the
# one step where the raw endpoints and the frameworks do different work.
ROWS: dict[str, Callable[[int], list[Any]]] = {
    "dicts (.values)": _values,
    "Item instances (.only)": _instances,
}


# Raw Django #############################################################################


def _raw_response(rows: list[dict[str, Any]]) -> JsonResponse:
    return JsonResponse(rows, safe=False, json_dumps_params=COMPACT_JSON)


def raw_items(request: HttpRequest) -> JsonResponse:
    limit = row_limit(request, DEFAULT_LIMIT)
    if isinstance(limit, JsonResponse):
        return limit
    return _raw_response(_values(limit))


def raw_orjson_items(request: HttpRequest) -> HttpResponse:
    limit = row_limit(request, DEFAULT_LIMIT)
    if isinstance(limit, JsonResponse):
        return limit
    return HttpResponse(orjson_bytes(_values(limit)), content_type="application/json")


# Django Ninja ###########################################################################


class ItemSchema(Schema):
    id: int
    name: str
    category: str
    # Decimal, not the guide's float: 12.3 as a float would render as 12.3, not "12.30".
    price: Decimal
    quantity: int


class ORJSONRenderer(BaseRenderer):
    """Ninja with orjson, as Ninja's docs show it."""

    media_type = "application/json"

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> bytes:
        return orjson_bytes(data)


# Two APIs in one project need distinct URL namespaces.
ninja_api = NinjaAPI(
    renderer=CompactJSONRenderer(), urls_namespace="l06-ninja", docs_url=None, openapi_url=None
)
ninja_orjson_api = NinjaAPI(
    renderer=ORJSONRenderer(), urls_namespace="l06-ninja-orjson", docs_url=None,
    openapi_url=None,
)


def ninja_items(request: HttpRequest) -> Any:
    limit = row_limit(request, DEFAULT_LIMIT)
    if isinstance(limit, JsonResponse):
        return limit  # Ninja passes an HttpResponse through untouched
    # A queryset, as in the guide; Ninja evaluates it while validating the response.
    return _items(limit)


for _api in (ninja_api, ninja_orjson_api):
    _api.get("/items", response=list[ItemSchema])(ninja_items)


# Django REST framework ##################################################################


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = FIELDS


@api_view(["GET"])
def drf_items(request: Any) -> Response | JsonResponse:
    limit = row_limit(request, DEFAULT_LIMIT)
    if isinstance(limit, JsonResponse):
        return limit  # DRF passes a plain Django response through untouched
    return Response(ItemSerializer(_items(limit), many=True).data)


# Serialization alone, for the notebook ##################################################


def _ninja_body(api: NinjaAPI) -> Callable[[list[Item]], bytes]:
    """Ninja's response step for ``GET /items`` on ``api``, as a function of the items.

    The steps of Ninja 1.7's ``Operation._result_to_response`` (not callable here: the
    operation that serves requests is a private copy bound to the API), with the
    operation's own response model and options: pydantic validates the instances into
    the response schema (``from_attributes``), dumps them to Python data, and the API's
    renderer encodes them into the response.
    """
    operation = api.default_router.path_operations["/items"].operations[0]
    model = operation.response_models[200]
    options = {
        "by_alias": operation.by_alias,
        "exclude_unset": operation.exclude_unset,
        "exclude_defaults": operation.exclude_defaults,
        "exclude_none": operation.exclude_none,
    }

    def serialize(items: list[Item]) -> bytes:
        request = HttpRequest()
        context = {"request": request, "response_status": 200}
        validated = model.model_validate(ResponseObject(items), context=context)
        data = validated.model_dump(**options, context=context)["response"]
        return api.create_response(request, data, status=200).content

    return serialize


def _drf_body(items: list[Item]) -> bytes:
    return DRFJSONRenderer().render(ItemSerializer(items, many=True).data)


SERIALIZERS: dict[str, Callable[[list[Any]], bytes]] = {
    # JsonResponse(rows): json.dumps with DjangoJSONEncoder, encoded to UTF-8.
    "raw": lambda rows: _raw_response(rows).content,
    # orjson.dumps(rows, default=str).
    "raw-orjson": orjson_bytes,
    # Schema validation (from the instances' attributes), model_dump, json.dumps.
    "ninja": _ninja_body(ninja_api),
    # The same, encoded by orjson.
    "ninja-orjson": _ninja_body(ninja_orjson_api),
    # ItemSerializer(items, many=True).data, then JSONRenderer().render(...).
    "drf": _drf_body,
}
"""framework -> function(rows) -> the response body's bytes, nothing else.

``rows`` is what the framework's view gets from the database, fetched beforehand with
``fetch(framework, n)``: a list of ``.values()`` dicts for ``raw`` and ``raw-orjson``,
a list of ``Item`` instances for the others. The functions include everything between
the query and the bytes (the response object too, where the framework builds the body
inside it), and nothing of the HTTP request, URL routing, middleware or the query.
"""

FRAMEWORKS = tuple(SERIALIZERS)


def fetch(framework: str, n: int) -> list[Any]:
    """The first ``n`` items as ``framework``'s view gets them (one query)."""
    if framework not in SERIALIZERS:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}.")
    return _values(n) if framework.startswith("raw") else _instances(n)


def serialize(framework: str, n: int) -> bytes:
    """The body ``/l06/<framework>/items?limit=n`` answers, built in process."""
    return SERIALIZERS[framework](fetch(framework, n))


urlpatterns = [
    path("raw/items", raw_items),
    path("raw-orjson/items", raw_orjson_items),
    path("ninja/", ninja_api.urls),
    path("ninja-orjson/", ninja_orjson_api.urls),
    path("drf/items", drf_items),
]
