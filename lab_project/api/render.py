"""
The lab's compact JSON: no spaces, UTF-8 (non-ASCII characters not escaped), decimals as
strings. These are the bytes DRF's ``JSONRenderer`` and orjson produce, so endpoints that
render the same rows in different ways answer the same body.
"""

from typing import Any

import orjson
from ninja.renderers import JSONRenderer

# Parameters of json.dumps (and of JsonResponse's json_dumps_params).
COMPACT_JSON: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}


def orjson_bytes(data: Any) -> bytes:
    # orjson has no Decimal type: default=str gives "12.30", as Django's encoder does.
    return orjson.dumps(data, default=str)


class CompactJSONRenderer(JSONRenderer):
    """Ninja's standard renderer with the lab's compact, UTF-8 output."""

    json_dumps_params = COMPACT_JSON
