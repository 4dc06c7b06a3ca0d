"""Failures that end one benchmark and must not end the run.

A CUDA out-of-memory error is a fact about a size on a device, not a crash: it is reported
for that benchmark with the size that failed, the memory is given back, and the next
benchmark starts on an empty device.
"""

from __future__ import annotations

import traceback

import pytest
import torch

from . import backends, workloads
from . import pytest_benchmark_internals as internals


def describe_size(extra_info: dict) -> str:
    """``--bench-size=smoke, m=256, k=64, n=256``: the size a result ran at, as its workload names it."""
    declared = workloads.registry().get(extra_info.get("workload"))
    keys = declared.size_keys if declared else ()
    parts = [f"{key}={extra_info[key]}" for key in keys if key in extra_info]
    if "size" in extra_info:
        parts.insert(0, f"--bench-size={extra_info['size']}")
    return ", ".join(parts) or "unknown size"


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError)


def discard_result(item: pytest.Item) -> None:
    """Keep a failed benchmark's timings out of the stored run: a wrong result is not a number."""
    benchmark = getattr(item, "funcargs", {}).get("benchmark")
    if benchmark is not None:
        internals.mark_failed(benchmark)


def out_of_memory(item: pytest.Item, exc: BaseException) -> None:
    """Turn an out-of-memory error in ``item`` into a one-line failure; frees memory first."""
    benchmark = getattr(item, "funcargs", {}).get("benchmark")
    extra_info = getattr(benchmark, "extra_info", {}) or {}
    device = getattr(item, "funcargs", {}).get("device")
    where = getattr(device, "id", None) or extra_info.get("device", "?")
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    message = f"out of memory on {where} at {describe_size(extra_info)}: {first_line}"
    # The traceback's frames hold the tensors that filled the device; drop them before
    # emptying the cache, or the memory stays taken for the rest of the run.
    traceback.clear_frames(exc.__traceback__)
    exc.__traceback__ = None
    del exc
    if device is not None:
        device.release_memory()
    else:
        for backend in backends.accelerators():
            if backend.unavailable() is None:
                backend.release_memory(backend.device(0))
    pytest.fail(message, pytrace=False)
