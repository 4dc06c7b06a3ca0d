"""Quality figures: what a benchmark learned or used (a loss, an accuracy, peak memory), declared, never guessed.

A result declares each figure it wants judged (``bench.quality(...)``; the suite's workloads
through :meth:`devicebench.bench.Bench.measure`), stored as ``extra_info["quality"]``:
``{name: {"value", "better", "rule", "after"}}``. ``rule`` is ``relative`` (worse by more
than the gate's threshold) or ``absolute`` (down by more than the accuracy drop); ``after``
is the work the figure was read after ("23 calls", "500 steps from the same start"), and
two results' figures are judged only when it is the same. Free-form ``extra_info`` keys are
never judged.

Runs stored before figures were declared (no ``quality`` key) come only from the suite's own
workloads where they carry a ``workload``: their loss, accuracy and memory keys are read as
they were judged then (:data:`devicebench.schema.JUDGED`), with no ``after`` to compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import schema

RULES = ("relative", "absolute")
_LEGACY_RULE = {"accuracy": "absolute", "relative": "relative"}


@dataclass(frozen=True)
class Quality:
    name: str
    value: float
    better: str  # "higher" or "lower"
    rule: str  # "relative" or "absolute"
    after: str | None  # None: stored before it was recorded (the same work is taken on trust)

    def as_json(self) -> dict:
        return {"value": self.value, "better": self.better, "rule": self.rule, "after": self.after}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def declared(info: dict) -> dict[str, Quality]:
    """The quality figures a result's ``extra_info`` declares, by name."""
    block = info.get("quality")
    if isinstance(block, dict):
        found = {}
        for name, entry in block.items():
            if not isinstance(entry, dict):
                continue
            value = _number(entry.get("value"))
            if value is None or entry.get("better") not in ("higher", "lower") or entry.get("rule") not in RULES:
                continue
            after = entry.get("after")
            found[name] = Quality(name, value, entry["better"], entry["rule"], after if isinstance(after, str) else None)
        return found
    if not info.get("workload"):
        return {}
    found = {}
    for figure in schema.JUDGED:
        value = _number(info.get(figure.key))
        if value is None or (figure.unless and _number(info.get(figure.unless)) is not None):
            continue
        found[figure.key] = Quality(figure.key, value, figure.better, _LEGACY_RULE[figure.rule], None)
    return found


def same_work(a: Quality, b: Quality) -> str | None:
    """Why two results' figure cannot be judged against each other, or None."""
    if a.after is not None and b.after is not None and a.after != b.after:
        return f"{a.name} read after {a.after} vs {b.after}"
    if (a.better, a.rule) != (b.better, b.rule):
        return f"{a.name} declared differently ({a.better} is better, {a.rule} vs {b.better} is better, {b.rule})"
    return None
