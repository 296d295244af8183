"""Static findings: what the project's settings, URLconf and server command get wrong for
latency, each with where it is, what to change, and the number a notebook measured for it.

A rule is a small function ``rule(ctx) -> Iterable[Finding]`` registered with ``@rule``;
the rules live in ``rules_settings.py`` (settings and views) and ``rules_server.py`` (the
server command).  ``static_findings`` runs them all over one ``Context``: the facts the
settings child reported, where each setting is written, and the server commands found.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lessons.audit.settings_source import SettingsSource
from lessons.audit.sources import ServerCommand, find_commands

__all__ = ["Finding", "Audit", "Context", "rule", "RULES", "SEVERITIES", "static_findings",
           "context_for"]

SEVERITIES = ("high", "medium", "low")


@dataclass(frozen=True)
class Finding:
    id: str            # stable, e.g. "debug-on", "conn-max-age-under-asgi"
    severity: str      # "high" | "medium" | "low"
    where: str         # "shop/settings.py:12" or "setting MIDDLEWARE" or "Procfile:1"
    message: str       # one sentence: what is wrong and why it costs latency
    fix: str           # one sentence: what to change
    evidence: str      # the number a notebook measured, or "run notebook NN to measure it here"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}.")


@dataclass
class Audit:
    """What ``audit`` produces; ``--json`` is this object with exactly these keys."""

    project: str
    settings: str
    findings: list[Finding]
    endpoints: list[dict] = field(default_factory=list)
    waterfall: list[dict] = field(default_factory=list)
    slo_ms: float = 10.0

    def slo_failures(self) -> list[dict[str, Any]]:
        """The endpoint rows that fail the SLO at the fixed rate: a p99 over it, or no p99
        because the endpoint's throughput at saturation is under that rate (it cannot
        serve the rate the SLO is stated at)."""
        failed = []
        for e in self.endpoints:
            p99, rate = e.get("p99_ms"), e.get("p99_rate")
            if (p99 is not None and p99 > self.slo_ms) or (
                    p99 is None and rate and e.get("rps") is not None and e["rps"] < rate):
                failed.append(e)
        return failed

    def exit_status(self) -> int:
        """1 when a high-severity finding or a failed SLO (``slo_failures``) remains,
        else 0: what a CI job checks."""
        return 1 if any(f.severity == "high" for f in self.findings) or self.slo_failures() else 0

    def to_json_dict(self) -> dict[str, Any]:
        return {"project": self.project, "settings": self.settings,
                "findings": [vars(f) for f in self.findings],
                "endpoints": list(self.endpoints), "waterfall": list(self.waterfall)}


@dataclass
class Context:
    """Everything a rule reads: the child's facts, the settings' lines, the commands."""

    root: Path
    facts: dict[str, Any]
    source: SettingsSource
    commands: list[ServerCommand]
    cores: int

    @property
    def interface(self) -> str | None:
        """"asgi" or "wsgi" as the project is served (its server command), else None."""
        kinds = {c.interface for c in self.commands if c.interface}
        if len(kinds) == 1:
            return kinds.pop()
        return "asgi" if "asgi" in kinds else None

    @property
    def served_by(self) -> str:
        """How the evidence names the command that decided the interface."""
        for c in self.commands:
            if c.interface == self.interface:
                return f"{c.describe()} ({c.where})"
        return "no server command found"

    def workers(self) -> int | None:
        """The most worker processes any server command starts on this machine."""
        counts = [c.workers(self.cores) for c in self.commands]
        known = [n for n in counts if n is not None]
        return max(known) if known else None


Rule = Callable[[Context], Iterable[Finding]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a rule (the rules modules call this at import)."""
    RULES.append(fn)
    return fn


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def context_for(root: Path, facts: dict[str, Any], *, cores: int | None = None) -> Context:
    source = SettingsSource.load(root, facts.get("settings_module", ""), facts.get("settings_file"))
    return Context(root=root, facts=facts, source=source, commands=find_commands(root),
                   cores=cores or _cores())


def static_findings(ctx: Context) -> list[Finding]:
    """Every rule over ``ctx``, high severity first, then in rule order."""
    from lessons.audit import rules_server, rules_settings  # noqa: F401  (registers the rules)

    found = [f for r in RULES for f in r(ctx)]
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(found, key=lambda f: order[f.severity])
