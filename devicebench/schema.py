"""The figures a run stores, in one place: their key, unit, which way is better, and how a change is judged.

``compare`` judges with these rules, ``show``, ``speedup`` and ``report`` label with these
units; a new figure is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    key: str  # in a result's extra_info ("median" is pytest-benchmark's own, in stats)
    unit: str  # how a table labels it
    better: str  # "lower" or "higher"
    rule: str | None  # how compare judges a change: "time", "accuracy" (an absolute drop), "relative"; None: recorded only
    meaning: str
    unless: str | None = None  # judged only where this other figure is absent


FIGURES = {
    f.key: f
    for f in (
        Figure("median", "s", "lower", "time", "median seconds per call (per round, or per call of a looped round)"),
        Figure("tflops", "TFLOP/s", "higher", None, "trillion floating-point operations per second"),
        Figure("gb_per_s", "GB/s", "higher", None, "gigabytes (10^9 bytes, not bits) per second moved; a copy within a device counts read + write"),
        Figure("steps_per_s", "steps/s", "higher", None, "optimizer steps per second"),
        Figure("samples_per_s", "samples/s", "higher", None, "training or loading samples per second"),
        Figure("val_accuracy", "", "higher", "accuracy", "accuracy on the held-out test images after training"),
        Figure("val_loss", "", "lower", "relative", "loss on the held-out test images after training"),
        # A last training batch's loss is too noisy to judge where a validation loss exists.
        Figure("final_loss", "", "lower", "relative", "loss of the last training step", unless="val_loss"),
        Figure("peak_memory_bytes", "B", "lower", "relative", "peak device memory allocated"),
        Figure("setup_s", "s", "lower", None, "building the step: model and data on the device, a graph's capture"),
        Figure("cold_start_s", "s", "lower", None, "the first call, apart from the steady ones"),
        Figure("time_to_accuracy_s", "s", "lower", None, "seconds from setup until the target accuracy"),
    )
}
# Keys runs stored before a figure was renamed: read as the new key (``gbps`` read as gigabits).
RENAMED = {"gbps": "gb_per_s"}
THROUGHPUT_UNITS = tuple(k for k, f in FIGURES.items() if f.unit.endswith("/s"))
JUDGED = tuple(f for f in FIGURES.values() if f.rule in ("accuracy", "relative"))


def unit_label(key: str) -> str:
    """How a table names the unit of a stored key: ``tflops`` -> ``TFLOP/s``; an unknown key as itself."""
    figure = FIGURES.get(key)
    return figure.unit if figure and figure.unit else key
