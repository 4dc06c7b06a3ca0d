"""Loaded with ``-p tests.plugins.slow_matmul``: every matmul step takes 20% longer (a busy wait)."""

import os
import time

from devicebench.workloads import matmul

SLOWDOWN = float(os.environ.get("DEVICEBENCH_TEST_SLOWDOWN", "0.20"))
_build = matmul.build


def _build_slower(device, variant, size, context=None):
    step = _build(device, variant, size, context)
    call = step.call

    def slower_call():
        start = time.perf_counter()
        result = call()
        until = start + (time.perf_counter() - start) * (1 + SLOWDOWN)
        while time.perf_counter() < until:
            pass
        return result

    step.call = slower_call
    return step


matmul.build = _build_slower
