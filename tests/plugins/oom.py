"""Loaded with ``-p tests.plugins.oom``: the matmul step runs out of device memory."""

import torch

from devicebench.workloads import matmul


def _build_that_runs_out(device, variant, size):
    def step():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    return step


matmul.build = _build_that_runs_out
