"""Loaded with ``-p tests.plugins.oom``: the matmul step runs out of device memory."""

import torch

from devicebench.workloads import Step, matmul


def _build_that_runs_out(device, variant, size, context=None):
    def step():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    return Step(call=step, work=size.flops / 1e12)


matmul.build = _build_that_runs_out
