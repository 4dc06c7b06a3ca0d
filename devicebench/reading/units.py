"""Units, in one place: seconds as a person reads them, ratios, and throughput with its unit."""

from __future__ import annotations

import math

from .schema import unit_label


def format_seconds(seconds: float | None) -> str:
    """``1.234 s``, ``56.7 ms``, ``890 us``, ``12 ns``: four significant digits in the largest unit that fits."""
    if seconds is None:
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def digits(value: float) -> str:
    """Three significant digits, trailing zeros kept: 0.945, 1.00, 46.2, 360."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.{max(0, 2 - math.floor(math.log10(value)))}f}" if value > 0 else f"{value:.3g}"


def ratio(value: float | None) -> str:
    """A ratio to three significant digits: 0.945x, 1.00x, 46.2x, 360x."""
    return f"{digits(value)}x" if value is not None else ""


def format_throughput(value: float | None, unit: str | None, counted: str | None = None) -> str:
    """``40.1 TFLOP/s``, ``3,170 samples/s``, ``42.15 GB/s (read + write)``: a stored throughput in
    its unit as a table shows it, with what its bytes count where the result says."""
    if value is None or not unit:
        return ""
    label = unit_label(unit) + (f" ({counted})" if counted else "")
    return f"{value:,.0f} {label}" if value >= 1000 else f"{value:.4g} {label}"


def format_bytes(n: float) -> str:
    """Bytes in the largest decimal unit that keeps a whole number before the point: 60.0 MB, 512 B."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"
