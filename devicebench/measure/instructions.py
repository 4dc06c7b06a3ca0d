"""CPU instructions per call, counted under Valgrind's callgrind (``--bench-instructions``).

A count of the instructions a step executes does not depend on what else the machine is
doing, so a hosted runner can gate on one run a side (pytest-codspeed's "CPU simulation",
PyTorch's own instruction-count PR gate). This module is the side that runs *inside*
Valgrind: devicebench's pytest side (:mod:`devicebench.harness.instructions`) starts one
Valgrind process for the whole run, instrumentation off, which runs the selected benchmarks
again; each benchmark calls :func:`count`, which turns instrumentation on only around its
counted calls (Valgrind's own client requests, from ``valgrind/callgrind.h``, compiled into a
small library once per run) and reads each call's count from callgrind's dump.

The counted process runs torch on one thread (``OMP_NUM_THREADS=1``): threads spinning
while they wait would add instructions that are no work of the step's. Valgrind shows the
CPU a machine without AVX-512, so torch's kernels run their AVX2 versions there; a
slowdown that leaves the instructions alone (memory, cache misses, another core's noise) is
not seen here, and the clock keeps watching for it.
"""

from __future__ import annotations

import ctypes
import json
import os
import statistics
from pathlib import Path
from typing import Any, Callable

# Set by devicebench's pytest side in the environment of the Valgrind process it starts.
OUT_ENV = "DEVICEBENCH_INSTRUCTIONS_OUT"  # where the counts go (JSON, one entry per benchmark)
CLIENT_ENV = "DEVICEBENCH_CALLGRIND_CLIENT"  # the compiled client requests
DUMPS_ENV = "DEVICEBENCH_CALLGRIND_DUMPS"  # callgrind's --callgrind-out-file
CALLS_ENV = "DEVICEBENCH_INSTRUCTION_CALLS"  # counted calls per benchmark
WARM_CALLS = 2  # uninstrumented calls first: caches, lazy initialisation, the allocator's pools

CLIENT_SOURCE = """
#include <valgrind/valgrind.h>
#include <valgrind/callgrind.h>
int devicebench_on_valgrind(void) { return RUNNING_ON_VALGRIND; }
void devicebench_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void devicebench_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void devicebench_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void devicebench_dump(void) { CALLGRIND_DUMP_STATS; }
"""


def in_worker() -> bool:
    """Whether this process is the one devicebench started under Valgrind to count instructions."""
    return bool(os.environ.get(OUT_ENV))


def _summary(path: Path) -> int:
    """The instruction count (``Ir``) of one callgrind dump."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError(f"{path}: no summary line in callgrind's dump")


class Callgrind:
    """Callgrind's client requests, and its dumps as they come."""

    def __init__(self):
        self.lib = ctypes.CDLL(os.environ[CLIENT_ENV])
        self.dumps = os.environ[DUMPS_ENV]
        if not self.lib.devicebench_on_valgrind():
            raise RuntimeError("devicebench's instruction counter runs only under Valgrind")

    def count_call(self, call: Callable[[], Any]) -> int:
        """Instructions of one ``call()``: collection on around it, then a dump read and removed."""
        before = set(Path(self.dumps).parent.glob(Path(self.dumps).name + ".*"))
        self.lib.devicebench_toggle()
        call()
        self.lib.devicebench_toggle()
        self.lib.devicebench_dump()
        new = sorted(set(Path(self.dumps).parent.glob(Path(self.dumps).name + ".*")) - before, key=lambda p: int(p.suffix[1:]))
        if not new:
            raise RuntimeError("callgrind wrote no dump")
        count = _summary(new[-1])
        for path in new:
            path.unlink()
        return count


def count(nodeid: str, call: Callable[[], Any], setup: Callable[[], None] | None, synchronize: Callable[[], None], counted: str) -> None:
    """Count ``call``'s instructions (``setup`` before each call, uncounted) and add them to the run's counts."""
    callgrind = Callgrind()

    def prepared() -> None:
        if setup is not None:
            setup()
        synchronize()

    for _ in range(WARM_CALLS):
        prepared()
        call()
        synchronize()
    calls = []
    callgrind.lib.devicebench_start()
    try:
        # The first count after instrumentation starts is wrong (a third too few for the
        # matmul, or a wrapped-around number: measured): an empty call takes it.
        callgrind.count_call(lambda: None)
        for _ in range(int(os.environ.get(CALLS_ENV, "2"))):
            prepared()
            calls.append(callgrind.count_call(lambda: (call(), synchronize())))
    finally:
        callgrind.lib.devicebench_stop()
    out = Path(os.environ[OUT_ENV])
    counts = json.loads(out.read_text()) if out.exists() else {}
    counts[nodeid] = {"per_call": int(statistics.median(calls)), "calls": calls, "counted": counted}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(counts))
    tmp.replace(out)
