"""Every claim's rule can come out more than one way, and does: the per-section tests'
synthetic records make each rule give every verdict it declares; with no records every
rule says "not measured"; every claim quotes the guide."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from claim_examples import verdict_of
from lessons.claims import CLAIMS

GUIDE = Path(__file__).resolve().parents[1].parent / "shared" / "guide" / "django-p99-guide.txt"


def _all_examples() -> dict:
    found: dict = {}
    for path in sorted(Path(__file__).parent.glob("test_claims_s*.py")):
        module = importlib.import_module(path.stem)
        for claim_id, cases in module.EXAMPLES.items():
            found.setdefault(claim_id, []).extend(cases)
    return found


EXAMPLES = _all_examples()


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_every_verdict_a_rule_declares_is_reached_by_an_example(claim_id: str) -> None:
    c = CLAIMS[claim_id]
    reached = {verdict_of(claim_id, records) for records, _ in EXAMPLES.get(claim_id, [])}
    assert set(c.gives) <= reached, f"{claim_id}: no example gives {sorted(set(c.gives) - reached)}"


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_without_records_a_claim_is_not_measured(claim_id: str) -> None:
    assert verdict_of(claim_id, {}) == "not measured"


def test_claims_are_numbered_by_the_guide_sections() -> None:
    assert {c.section for c in CLAIMS.values()} == set(range(1, 12))
    for c in CLAIMS.values():
        assert c.notebook.startswith(f"{c.section:02d}_"), (c.id, c.notebook)
