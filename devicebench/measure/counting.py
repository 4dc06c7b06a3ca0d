"""Exact work beside the clock: what one call of a step does, counted through torch's own machinery.

A clock says how long a step took, and on a shared machine it says so with a spread of a few
percent between processes. What the step did can be counted exactly: which aten operators it
ran and how often, its floating-point operations, how often the host read a value back from
the device (``aten._local_scalar_dense``: ``.item()``, ``bool(t)``, printing a tensor; each a
device sync on a GPU), the copies between host and device and their bytes, the bytes its
operators allocated, and on CUDA the kernels the GPU ran and the synchronizations. Counts of
the same code are the same in every run, so a change in them needs no statistics to be seen.

**One call, untimed, after everything else.** A benchmark's counters come from one more call
of its step, made after its timed rounds and after every figure it reads back (its loss, its
accuracy): counting makes that call slower (each operator passes through Python), and a
training step trains, so this call changes no figure and is not one of ``calls``. A step too
long to count whole (a CNN epoch) names a shorter stand-in of its own work (one training
batch) and says so in ``counted``.

What the counters see:

- operators dispatched on the calling thread, by ``TorchDispatchMode`` (autograd's backward
  too); DataParallel's replicas run their forward passes on threads of their own, which are
  not seen;
- FLOPs by ``torch.utils.flop_counter``'s formulas (matmuls, convolutions, attention: the
  operators ``FlopCounterMode`` counts), applied in the same mode (``FlopCounterMode`` itself
  adds module hooks and costs twice as much per operator);
- under ``torch.compile`` nothing below the dispatcher: while a dispatch mode is active,
  Dynamo steps aside and the step's Python runs eagerly, so a compiled step's counters are
  those of its eager code (``note`` says so); on CUDA the profiler still counts the kernels
  of the call it watched;
- on CUDA, the profiler's kernels and ``torch.cuda.set_sync_debug_mode``'s synchronizations
  (unverified on a GPU as of 2026-12-07);
- nothing of another process: DDP's ranks and DataLoader's workers are not counted.
"""

from __future__ import annotations

import collections
import time
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from .devices import BenchDevice

aten = torch.ops.aten
HOST_READ = "aten._local_scalar_dense"
# Operators that only mark a region for the profiler: no work of the step's.
_NOT_WORK = ("profiler.",)
COMPILED_NOTE = "compiled: torch.compile steps aside while operators are counted, so these are the step's eager operators"
DP_NOTE = "DataParallel: its replicas' forward passes run on threads of their own, which the operator counts do not see"


def _tensors(values) -> list[torch.Tensor]:
    """The tensors among an operator's arguments or outputs, and in lists of them (one level deep)."""
    found = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, torch.Tensor))
    return found


def _storage(t: torch.Tensor) -> tuple[int, int] | None:
    """(address, bytes) of a tensor's storage; None for a tensor without one."""
    try:
        storage = t.untyped_storage()
        return storage.data_ptr(), storage.nbytes()
    except (RuntimeError, NotImplementedError):
        return None


class _Counter(TorchDispatchMode):
    """Every operator the calling thread dispatches, with the copies and allocations it made."""

    def __init__(self):
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()
        self.copies = {"h2d": [0, 0], "d2h": [0, 0]}  # [count, bytes]
        self.allocated = 0
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = str(func.overloadpacket)
        if name.startswith(_NOT_WORK):
            return out
        self.ops[name] += 1
        packet = func.overloadpacket
        if packet in flop_registry:
            self.flops += flop_registry[packet](*args, **kwargs, out_val=out)
        if packet is aten.copy_ and len(args) >= 2:
            self._copy(args[1], args[0])
        elif packet is aten._to_copy and args:
            self._copy(args[0], out)
        self._allocations(args, kwargs, out)
        return out

    def _copy(self, src, dst) -> None:
        if not (isinstance(src, torch.Tensor) and isinstance(dst, torch.Tensor)):
            return
        on_host = (src.device.type == "cpu", dst.device.type == "cpu")
        direction = {(True, False): "h2d", (False, True): "d2h"}.get(on_host)
        if direction:
            self.copies[direction][0] += 1
            self.copies[direction][1] += dst.numel() * dst.element_size()

    def _allocations(self, args, kwargs, out) -> None:
        """Bytes of the storages an operator returned that none of its inputs had: what it allocated."""
        inputs = {s[0] for t in _tensors((*args, *kwargs.values())) if (s := _storage(t))}
        seen = set()
        for t in _tensors(out if isinstance(out, (list, tuple)) else (out,)):
            if (s := _storage(t)) and s[0] not in inputs and s[0] not in seen:
                seen.add(s[0])
                self.allocated += s[1]


def count(device: BenchDevice, call: Callable[[], Any], setup: Callable[[], None] | None = None) -> dict:
    """The work of one call of ``call`` on ``device`` (``setup`` first, uncounted): what a
    result stores under ``work`` (see :data:`devicebench.reading.schema.KEYS`)."""
    if setup is not None:
        setup()
    device.synchronize()
    counter = _Counter()
    start = time.perf_counter()
    with device.counting() as gpu, counter:
        call()
    device.synchronize()  # outside the counters: the wait is not the step's sync
    seconds = time.perf_counter() - start
    work = {
        "ops": dict(sorted(counter.ops.items())),
        "op_calls": sum(counter.ops.values()),
        "flops": int(counter.flops),
        "host_reads": counter.ops.get(HOST_READ, 0),
        "h2d_copies": counter.copies["h2d"][0],
        "h2d_bytes": counter.copies["h2d"][1],
        "d2h_copies": counter.copies["d2h"][0],
        "d2h_bytes": counter.copies["d2h"][1],
        "allocated_bytes": counter.allocated,
        "seconds": seconds,
    }
    work.update(gpu)
    return work
