"""Quality figures: what a benchmark learned or used (a loss, an accuracy, peak memory), declared, never guessed.

A result declares each figure it wants judged (``bench.quality(...)``; the suite's workloads
through :meth:`devicebench.harness.bench.Bench.run_workload`), stored as ``extra_info["quality"]``:
``{name: {"value", "better", "rule", "after"}}``. ``rule`` is ``relative`` (worse by more
than the gate's threshold) or ``absolute`` (down by more than the accuracy drop); ``after``
is the work the figure was read after ("23 calls", "500 steps from the same start"), and
two results' figures are judged only when it is the same. Free-form ``extra_info`` keys are
never judged.

Runs stored before figures were declared (no ``quality`` key) come only from the suite's own
workloads where they carry a ``workload``: their loss, accuracy and memory keys are read as
they were judged then (:data:`devicebench.reading.schema.JUDGED`), with no ``after`` to compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import schema, work
from .verdicts import QualityChange, Settings

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


def unlike(bi: dict, ci: dict) -> str | None:
    """Why two results' declared quality figures cannot be judged (other epochs, data, batch, or work behind them), or None."""
    b_figures, c_figures = declared(bi), declared(ci)
    shared = sorted(set(b_figures) & set(c_figures))
    if not shared:
        return None
    why = work.unlike(bi, ci, work.SAME_TRAINING)
    if why:
        return why
    apart = [reason for name in shared if (reason := same_work(b_figures[name], c_figures[name]))]
    return "; ".join(apart) or None


def changes(name: str, bi: dict, ci: dict, settings: Settings) -> list[QualityChange]:
    """What got worse beyond its rule (:mod:`devicebench.reading.quality`): an absolute figure (accuracy)
    down by more than ``accuracy_drop``, a relative one (a loss, peak memory) worse by more than
    the threshold. Only declared figures, and only where both sides did the same work."""
    changes = []
    b_figures, c_figures = declared(bi), declared(ci)
    if work.unlike(bi, ci, work.SAME_TRAINING):
        return changes
    for key in sorted(set(b_figures) & set(c_figures)):
        bq, cq = b_figures[key], c_figures[key]
        if same_work(bq, cq):
            continue
        b, c = bq.value, cq.value
        if bq.rule == "absolute":
            drop = settings.accuracy_drop
            worse, note = (c < b - drop, f"dropped by more than {drop}") if bq.better == "higher" else (c > b + drop, f"rose by more than {drop}")
        elif bq.better == "lower":
            grew = "grew" if schema.FIGURES.get(key) is not None and schema.FIGURES[key].unit == "B" else "worse"
            worse, note = (c > b * (1 + settings.threshold), f"{grew} by more than {settings.threshold:.0%}")
        else:
            worse, note = (c < b / (1 + settings.threshold), f"worse by more than {settings.threshold:.0%}")
        if worse:
            changes.append(QualityChange(name, key, b, c, note))
    return changes
