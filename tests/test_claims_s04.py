"""Section 4's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

from claim_examples import Examples, check_examples

NB = "04_async_orm"

RAN = {"raised": None, "message": ""}
TYPE_ERROR = {"raised": "TypeError", "message": "Object of type Item is not JSON serializable"}


def _get_items(outcome: dict) -> dict:
    return {NB: {"guide get_items": outcome, "corrected get_items": {"status": 200}}}


def _get_stats(outcome: dict, status: int = 200) -> dict:
    records = {"guide get_stats": outcome}
    if outcome["raised"] is None:
        records["get_stats answer"] = {"status": status, "body": '{"avg_price": "499.94", "total": 2473280}'}
    return {NB: records}


def _modes(gather_ms: float, threads: int, connections: int) -> dict:
    return {NB: {
        "queries": {"n": 3, "ms": 200},
        "queries per mode": {
            "sequential": {"elapsed_ms": 640.0, "threads": 1, "connections": 1},
            "gather": {"elapsed_ms": gather_ms, "threads": threads, "connections": connections},
            "threads": {"elapsed_ms": 260.0, "threads": 3, "connections": 3},
        },
        "connections left open by thread_sensitive=False": 3,
    }}


EXAMPLES: Examples = {
    "async-orm-get-items": [
        (_get_items(TYPE_ERROR), "refuted"),   # what Django 6.1 does: JsonResponse of model instances
        (_get_items(RAN), "confirmed"),        # if JsonResponse could serialise them
    ],
    "async-aggregation": [
        (_get_stats(RAN), "confirmed"),
        (_get_stats({"raised": "TypeError", "message": "..."}), "refuted"),
        (_get_stats(RAN, status=500), "refuted"),
    ],
    "dashboard-parallel": [
        (_modes(650, 1, 1), "refuted"),        # one thread, one connection, the sum
        (_modes(240, 3, 3), "confirmed"),      # what a native async driver would allow
        (_modes(240, 1, 1), "refuted"),        # one connection cannot overlap statements
        (_modes(500, 3, 3), "refuted"),        # three connections, but no real overlap
    ],
}


def test_section_4_rules() -> None:
    check_examples(EXAMPLES)
