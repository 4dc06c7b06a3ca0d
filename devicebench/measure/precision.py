"""Numeric settings that change what a GPU computes and how fast: set on purpose, recorded always.

PyTorch's defaults differ between cuBLAS (TF32 off) and cuDNN (TF32 on), and a user's own
code may have changed either. Every benchmark runs under :func:`settings`, which sets all of
them explicitly and restores them afterwards, and its result records what was in force.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass(frozen=True)
class Precision:
    float32_matmul_precision: str  # "highest" = IEEE fp32, "high" = TF32 on tensor cores
    cudnn_allow_tf32: bool
    cudnn_benchmark: bool  # autotuning picks different kernels per run: off unless a variant asks
    cudnn_deterministic: bool


# Strict fp32 everywhere: the CPU computes IEEE fp32, so a CPU/GPU speed-up compares like with like.
STRICT_FP32 = Precision("highest", cudnn_allow_tf32=False, cudnn_benchmark=False, cudnn_deterministic=False)
# What PyTorch does when nobody sets anything: cuBLAS strict, cuDNN convolutions in TF32.
# The tutorial's CNN ran this way, so its variants do too.
PYTORCH_DEFAULTS = Precision("highest", cudnn_allow_tf32=True, cudnn_benchmark=False, cudnn_deterministic=False)
# TF32 for matmuls and convolutions: what Ampere and later GPUs are built to run fast.
TF32 = Precision("high", cudnn_allow_tf32=True, cudnn_benchmark=False, cudnn_deterministic=False)


def current() -> dict:
    """The settings in force now, as a result records them."""
    return {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
    }


@contextlib.contextmanager
def settings(precision: Precision) -> Iterator[dict]:
    """Run a block under ``precision``; yields the settings as recorded, restores the old ones."""
    saved = (
        torch.get_float32_matmul_precision(),
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    torch.set_float32_matmul_precision(precision.float32_matmul_precision)
    torch.backends.cudnn.allow_tf32 = precision.cudnn_allow_tf32
    torch.backends.cudnn.benchmark = precision.cudnn_benchmark
    torch.backends.cudnn.deterministic = precision.cudnn_deterministic
    try:
        yield current()
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[1:]

