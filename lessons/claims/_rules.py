"""What a claim is, and how its rule turns recorded numbers into a verdict.

A notebook only records measurements (``nb.record``).  Each claim of the guide carries a
*rule*: a function that reads those records and returns a ``Verdict``; the notebook's
"guide says / you measured" table and ``python -m lessons report`` both call the same
rule on the same records, so they cannot disagree.  A rule reads what it needs by key;
when a key is missing (the notebook has not run, or stopped before measuring it) the
verdict is "not measured", never a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["VERDICTS", "Claim", "Verdict", "Records", "Missing", "CLAIMS", "claim",
           "confirmed", "refuted", "depends", "not_measured", "by_server", "evaluate", "raised"]

VERDICTS = ("confirmed", "refuted", "depends", "not measured")


@dataclass(frozen=True)
class Verdict:
    """A rule's answer: the verdict and the numbers it was decided on."""

    verdict: str
    evidence: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {self.verdict!r}.")


def confirmed(evidence: str) -> Verdict:
    return Verdict("confirmed", evidence)


def refuted(evidence: str) -> Verdict:
    return Verdict("refuted", evidence)


def depends(evidence: str, *, when: str) -> Verdict:
    """The claim holds under one condition and not another, both measured: ``when``
    states the condition ("faster under WSGI, slower under ASGI")."""
    if not when.strip():
        raise ValueError("depends() needs its condition: when='...'.")
    return Verdict("depends", f"{when}: {evidence}")


def not_measured(evidence: str) -> Verdict:
    return Verdict("not measured", evidence)


def by_server(holds: Sequence[str], names: Mapping[str, str], why_not: Mapping[str, str],
              evidence: str) -> Verdict:
    """A claim measured under two servers (``names``: server -> how the evidence names it):
    confirmed where it ``holds`` under both, refuted under neither, and otherwise depends,
    on the server, with why it fails under the other (``why_not[server]``)."""
    if set(holds) >= set(names):
        return confirmed(evidence)
    if not holds:
        return refuted(evidence)
    (other,) = (s for s in names if s not in holds)
    return depends(evidence, when=f"under {names[holds[0]]} only; under {names[other]} {why_not[other]}")


class Missing(LookupError):
    """A rule asked for a measurement nobody has recorded yet."""

    def __init__(self, notebook: str, key: str) -> None:
        super().__init__(f"notebook {notebook} has not recorded {key!r} yet: run it")
        self.notebook = notebook
        self.key = key


class Measurements(Mapping[str, Any]):
    """One notebook's recorded measurements; a missing key raises ``Missing``."""

    def __init__(self, notebook: str, values: Mapping[str, Any]) -> None:
        self.notebook = notebook
        self._values = values

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise Missing(self.notebook, key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class Records:
    """Every notebook's measurements, by notebook name (``records["01_asgi_vs_wsgi"]``)."""

    def __init__(self, by_notebook: Mapping[str, Mapping[str, Any]]) -> None:
        self._by = by_notebook

    def __getitem__(self, notebook: str) -> Measurements:
        return Measurements(notebook, self._by.get(notebook) or {})

    def __contains__(self, notebook: object) -> bool:
        return notebook in self._by


Rule = Callable[[Records], Verdict]


@dataclass(frozen=True)
class Claim:
    """One sentence of the guide and the rule that decides it.

    ``notebook`` measures it (its record says whether the run was quick and whether the
    checkpoint passed); ``reads`` lists every notebook whose records the rule reads
    (``notebook`` first); ``gives`` the verdicts the rule can return, at least two: a
    rule that could only ever say one thing is not a rule.
    """

    id: str
    section: int
    guide: str
    notebook: str
    rule: Rule
    gives: tuple[str, ...]
    reads: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.gives)) < 2 or not set(self.gives) <= set(VERDICTS[:3]):
            raise ValueError(f"claim {self.id!r}: a rule must be able to give at least two of "
                             f"confirmed, refuted, depends, not {self.gives!r}.")


CLAIMS: dict[str, Claim] = {}


def claim(id: str, *, section: int, notebook: str, guide: str, gives: tuple[str, ...],
          reads: tuple[str, ...] = ()) -> Callable[[Rule], Rule]:
    """Register ``rule`` as the decision of the guide's claim ``id``."""

    def register(rule: Rule) -> Rule:
        if id in CLAIMS:
            raise ValueError(f"claim {id!r} is defined twice.")
        CLAIMS[id] = Claim(id, section, guide, notebook, rule, tuple(gives),
                           (notebook, *[n for n in reads if n != notebook]))
        return rule

    return register


def evaluate(c: Claim, records: Records) -> Verdict:
    """The claim's verdict on these records ("not measured" when an input is missing)."""
    try:
        verdict = c.rule(records)
    except Missing as missing:
        return not_measured(str(missing))
    except (KeyError, IndexError, TypeError) as exc:
        # A record saved by an older version of the notebook, of another shape: the rule
        # cannot read it, so nothing is decided until the notebook runs again.
        stale = ", ".join(n for n in c.reads if n in records)
        return not_measured(f"the record of {stale or c.notebook} has another shape than this rule "
                            f"reads ({type(exc).__name__}: {exc}): run the notebook again")
    if verdict.verdict not in c.gives:
        raise AssertionError(f"claim {c.id!r} gave {verdict.verdict!r}, which its rule does "
                             f"not declare in gives={c.gives!r}.")
    return verdict


def raised(outcome: Mapping[str, Any]) -> str | None:
    """The exception a recorded attempt raised (``"TypeError: ..."``), or None when the
    code ran (see ``Notebook.attempt``)."""
    if outcome.get("raised"):
        return f"{outcome['raised']}: {outcome.get('message', '')}".strip()
    return None
