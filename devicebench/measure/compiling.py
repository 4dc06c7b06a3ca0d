"""``torch.compile`` as the suite measures it: whether it can run here, a cold cache per benchmark,
and what the compiler did, by torch's own counters.

A compiled benchmark's first call compiles. :class:`CompileWatch` reads, around each phase of
timing, what torch itself keeps: the seconds its compiler spent (dynamo's
``calculate_time_spent``: frame compiles and lazy backward compiles, inductor's code generation
inside them), the graphs it made (``counters["stats"]["unique_graphs"]``), its graph breaks
(``counters["graph_break"]``) and its recompiles (the compilation records whose frame already
had a cache entry). These are torch's private counters, the ones TorchBench reads; on a torch
that lacks one, the figure is not recorded rather than guessed.

Cold by default: before each compiled benchmark dynamo's in-memory caches are reset and the
inductor and Triton caches point at an empty folder of this run's (:func:`fresh_cache`), so a
figure does not depend on what an earlier run or benchmark left behind. A user's own
``TORCHINDUCTOR_CACHE_DIR`` is respected and recorded as such (``compile_cache``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

import torch

# The modes a variant axis names (``compile_mode``): eager is the reference, not a mode of torch.compile.
EAGER = "eager"
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
USER_CACHE = "TORCHINDUCTOR_CACHE_DIR"

_run_cache: str | None = None
_benchmarks = 0
_startup_s: dict[str, float] = {}  # per device type: what this process's first compile took (see start_up)


def unavailable(device, mode: str = "default") -> str | None:
    """Why ``torch.compile`` cannot compile for ``device`` (a BenchDevice) in ``mode`` here, or None;
    what each kind of device needs of the compiler is its backend's to say."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python or platform (torch._dynamo.is_dynamo_supported() is False)"
    if mode not in MODES:
        return f"unknown torch.compile mode {mode!r}; modes: {', '.join(MODES)}"
    return device.backend.compiler_unavailable(mode)


def start_up(device) -> float:
    """The compiler's one-time start in this process for this kind of device, paid before the
    first compiled benchmark and not by it: importing inductor, its pool of compile workers, and
    on the CPU the probes of the vector instructions (a C++ build each, remembered for the
    process). Without this the first compiled benchmark of a run would pay that (about 19 s on
    2 cores) and its figure would depend on which benchmarks ran before it.

    The start uses the compiler's cache as the user has it (torch's own folder, or their
    ``TORCHINDUCTOR_CACHE_DIR``), as any ``torch.compile`` in this environment would: the probes
    are the same for every run on this machine, so after the first run they come from that
    cache (about 3 s in all). The benchmarks' own compiles are cold whatever it held
    (:func:`fresh_cache`). Returns the seconds the start took, the same figure for every compiled
    benchmark of the process on this kind of device (``compiler_startup_s``)."""
    kind = device.device_type
    if kind in _startup_s:
        return _startup_s[kind]
    import torch._dynamo

    start = time.perf_counter()
    try:
        torch.compile(lambda x: (x * 2 + 1).sum())(torch.ones(8, device=device.torch_device))
        device.synchronize()
    finally:
        torch._dynamo.reset()
    _startup_s[kind] = time.perf_counter() - start
    return _startup_s[kind]


def fresh_cache() -> str:
    """Point the compiler's on-disk caches at an empty folder of this run's, and forget what
    this process compiled before; returns what ``compile_cache`` records."""
    global _run_cache, _benchmarks
    import torch._dynamo

    torch._dynamo.reset()
    user = os.environ.get(USER_CACHE)
    # torch sets the variable itself, to its default folder, when dynamo is imported: that one is not the user's.
    if user and user != _default_cache_dir() and not (_run_cache and user.startswith(_run_cache)):
        return f"the user's {USER_CACHE}"
    if _run_cache is None:
        _run_cache = tempfile.mkdtemp(prefix="devicebench-compile-")
        atexit.register(shutil.rmtree, _run_cache, ignore_errors=True)
    _benchmarks += 1
    folder = os.path.join(_run_cache, str(_benchmarks))
    os.makedirs(folder)
    os.environ[USER_CACHE] = folder
    os.environ["TRITON_CACHE_DIR"] = os.path.join(folder, "triton")
    return "cold"


def _default_cache_dir() -> str | None:
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        return default_cache_dir()
    except Exception:  # an older torch: its default folder's name
        import getpass

        return os.path.join(tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")


def wrap(obj, mode: str = "default"):
    """``torch.compile(obj)`` in ``mode`` (its default mode passes no mode at all)."""
    return torch.compile(obj) if mode == "default" else torch.compile(obj, mode=mode)


def warm_compile_s(device, call) -> float | None:
    """The compiler's seconds for ``call`` compiled again from this benchmark's own cache, now warm:
    dynamo's in-memory caches reset, the on-disk ones (inductor's graphs, AOTAutograd's) kept.
    Run after timing and after what the benchmark learned was read (the call trains one more step)."""
    import torch._dynamo

    torch._dynamo.reset()
    watch = CompileWatch()
    call()
    device.synchronize()
    return watch.since().seconds


def step_marker(mode: str):
    """What a training loop calls before each step under reduce-overhead (``torch.compiler.cudagraph_mark_step_begin``:
    a new iteration, whose graphs may reuse the last one's output memory); None in other modes."""
    if mode != "reduce-overhead":
        return None
    return getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)


@dataclass(frozen=True)
class Compiled:
    """What the compiler did in one stretch of a benchmark (None: this torch does not count it)."""

    seconds: float | None
    graphs: int | None
    graph_breaks: int | None
    compiles: int | None
    recompiles: int | None


def _time_spent() -> float | None:
    try:
        from torch._dynamo.utils import calculate_time_spent

        return float(calculate_time_spent().get("total_wall_time", 0.0))
    except Exception:  # a torch without it: not recorded
        return None


def _records() -> list | None:
    try:
        from torch._dynamo.utils import get_compilation_metrics

        return list(get_compilation_metrics())
    except Exception:
        return None


def _counter(group: str, key: str | None = None) -> int | None:
    try:
        from torch._dynamo.utils import counters
    except Exception:
        return None
    values = counters.get(group, {})
    return int(values.get(key, 0)) if key else int(sum(values.values()))


def _is_recompile(record) -> bool:
    return bool(getattr(record, "recompile_reason", None)) or (getattr(record, "cache_size", 0) or 0) > 0


class CompileWatch:
    """torch's compile counters read at the start of a stretch; :meth:`since` tells what that stretch compiled."""

    def __init__(self):
        self.seconds = _time_spent()
        self.graphs = _counter("stats", "unique_graphs")
        self.graph_breaks = _counter("graph_break")
        records = _records()
        self.seen = None if records is None else {id(r) for r in records}

    def since(self) -> Compiled:
        seconds = _time_spent()
        graphs, breaks = _counter("stats", "unique_graphs"), _counter("graph_break")
        records = _records()
        new = None if records is None or self.seen is None else [r for r in records if id(r) not in self.seen]
        compiled = [r for r in new if getattr(r, "co_name", None) is not None] if new is not None else None
        return Compiled(
            seconds=None if seconds is None or self.seconds is None else max(0.0, seconds - self.seconds),
            graphs=None if graphs is None or self.graphs is None else graphs - self.graphs,
            graph_breaks=None if breaks is None or self.graph_breaks is None else breaks - self.graph_breaks,
            compiles=None if compiled is None else len(compiled),
            recompiles=None if compiled is None else sum(_is_recompile(r) for r in compiled),
        )
