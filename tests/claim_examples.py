"""Shared by the per-section claim tests: feed a rule synthetic records, check its verdict.

Each ``tests/test_claims_sNN.py`` defines ``EXAMPLES``: claim id -> a list of (records,
expected verdict), records being {notebook: {record key: value}} as notebooks save them.
``tests/test_claims.py`` checks that together they make every rule give every verdict
it declares.
"""

from __future__ import annotations

from typing import Any

from lessons.claims import CLAIMS, Records, evaluate

Examples = dict[str, list[tuple[dict[str, dict[str, Any]], str]]]


def verdict_of(claim_id: str, records: dict[str, dict[str, Any]]) -> str:
    return evaluate(CLAIMS[claim_id], Records(records)).verdict


def check_examples(examples: Examples) -> None:
    for claim_id, cases in examples.items():
        for records, expected in cases:
            got = evaluate(CLAIMS[claim_id], Records(records))
            assert got.verdict == expected, (claim_id, expected, got)
            assert got.evidence.strip(), f"{claim_id}: a verdict without evidence"
