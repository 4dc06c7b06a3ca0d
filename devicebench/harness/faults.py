"""Failures that end one benchmark and must not end the run, and interruptions that end it.

A CUDA out-of-memory error is a fact about a size on a device, not a crash: it is reported
for that benchmark with the size that failed, the memory is given back, and the next
benchmark starts on an empty device. SIGTERM ends a run as Ctrl-C does, keeping what finished.
"""

from __future__ import annotations

import signal
import threading
import traceback
import types

import pytest
import torch

from devicebench import workloads
from devicebench.measure import backends

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


def _numbered(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` rebuilt with a line number in every entry (the function's first line where there was none)."""
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    rebuilt = None
    for entry in reversed(entries):
        line = entry.tb_lineno if entry.tb_lineno is not None else entry.tb_frame.f_code.co_firstlineno
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, line)
    return rebuilt


def _unnumbered(tb: types.TracebackType | None) -> bool:
    while tb is not None:
        if tb.tb_lineno is None:
            return True
        tb = tb.tb_next
    return False


def number_every_line(excinfo: pytest.ExceptionInfo) -> None:
    """A signal can land on an instruction without a line number (CPython 3.11+ then gives
    ``tb_lineno`` None), and pytest's report of the interruption fails on it with a TypeError:
    exit status 1 and a traceback instead of 2 and "Interrupted". Such entries get their
    function's first line, in the exception and its causes."""
    seen, error = set(), excinfo.value
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _unnumbered(error.__traceback__):
            error.__traceback__ = _numbered(error.__traceback__)
        error = error.__cause__ or error.__context__
    if _unnumbered(excinfo.tb):
        excinfo.traceback = type(excinfo.traceback)(_numbered(excinfo.tb))


def terminate_as_interrupt(signum, frame) -> None:
    """SIGTERM (``timeout``, ``docker stop``, Slurm, CI cancellation) ends a run as Ctrl-C does:
    pytest-benchmark stores what finished, and the run says it was interrupted."""
    raise KeyboardInterrupt(f"terminated by signal {signum}")


def catch_terminate(config: pytest.Config) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGTERM, terminate_as_interrupt)
    config.add_cleanup(lambda: signal.signal(signal.SIGTERM, previous))
