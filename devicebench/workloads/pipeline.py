"""The data pipeline alone: one pass over the training set through torch's DataLoader.

The tutorial's advice is to "use more processes when data preparation is the bottleneck";
this measures it: the same ``ToTensor`` dataset for 0, 2, 4 and 8 worker processes (where
the machine has the cores), with pageable and pinned batches. Nothing trains: each batch
is only produced, which is what a training loop waits for.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..config import DataPipelineSize
from ..data import ImageData
from ..fingerprint import cpu_threads

WORKERS = (0, 2, 4, 8)
MEMORY = ("pageable", "pinned")


def unsupported(workers: int, memory: str) -> str | None:
    if memory == "pinned" and not torch.cuda.is_available():
        return "pinned memory needs a CUDA device (CUDA not available)"
    if workers > cpu_threads():
        return f"needs {workers} cores for {workers} workers; this machine has {cpu_threads()}"
    return None


def build(data: ImageData, size: DataPipelineSize, workers: int, pinned: bool) -> Callable[[], int]:
    train_set = torch.utils.data.Subset(data.train, range(min(size.n_train, len(data.train))))
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=size.batch_size, shuffle=True, num_workers=workers, pin_memory=pinned
    )

    def one_pass() -> int:
        samples = 0
        for images, _ in loader:
            samples += images.shape[0]
        return samples

    return one_pass
