"""The data pipeline alone: one pass over the training set through torch's DataLoader.

The tutorial's advice is to "use more processes when data preparation is the bottleneck";
this measures it: the same ``ToTensor`` dataset for 0, 2, 4 and 8 worker processes (where
the machine has the cores), with pageable and pinned batches. Nothing trains: each batch
is only produced, which is what a training loop waits for. It runs on the host, so it has
no device parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from devicebench.measure import backends
from devicebench.measure.config import Rounds
from devicebench.reading.host import cpu_threads

from . import Step, Variant, Workload

WORKERS = (0, 2, 4, 8)
MEMORY = ("pageable", "pinned")


@dataclass(frozen=True)
class DataPipelineSize:
    """One pass over the training set through the DataLoader, for each worker count that fits."""

    n_train: int
    rounds: Rounds
    batch_size: int = 128


def _parse(variant: Variant) -> tuple[int, bool]:
    workers, memory = variant.name.split("-")
    return int(workers.removeprefix("workers")), memory == "pinned"


def skip(device, variant: Variant) -> str | None:
    workers, pinned = _parse(variant)
    if pinned:
        takers = [b for b in backends.accelerators() if b.supports("pinned_memory")]
        if not any(b.unavailable() is None for b in takers):
            return f"pinned memory needs a CUDA device ({'; '.join(filter(None, (b.unavailable() for b in takers)))})"
    if workers > cpu_threads():
        return f"needs {workers} cores for {workers} workers; this machine has {cpu_threads()}"
    return None


def build(device, variant: Variant, size: DataPipelineSize, context) -> Step:
    workers, pinned = _parse(variant)
    data = context.images()
    train_set = torch.utils.data.Subset(data.train, range(min(size.n_train, len(data.train))))
    loader = torch.utils.data.DataLoader(train_set, batch_size=size.batch_size, shuffle=True, num_workers=workers, pin_memory=pinned)
    def one_pass() -> int:
        samples = 0
        for images, _ in loader:
            samples += images.shape[0]
        return samples

    return Step(
        call=one_pass,
        work=len(train_set),
        rounds=size.rounds,
        info={"dataset": data.name, "n_train": len(train_set), "batch_size": size.batch_size, "workers": workers, "pin_memory": pinned},
        finish=lambda timed: {"samples": timed.last},
        # A pass is too long to count whole (each sample's transform passes the counters in Python): its first batch.
        count=lambda: next(iter(loader)),
        counted=f"the first of a pass's {len(loader)} batches",
        not_counted="the batches are made in DataLoader's worker processes, which are not counted" if workers else None,
    )


WORKLOAD = Workload(
    name="data_pipeline",
    variants=tuple(Variant(f"workers{w}-{m}") for m in MEMORY for w in WORKERS),
    sizes={
        # A pass takes 2-4 s on 2 cores: the limit gives it a few rounds; worker start-up is in every pass.
        "seed": DataPipelineSize(n_train=60_000, rounds=Rounds(warmup=0, min_rounds=3, max_rounds=10, max_time_s=8.0)),
        "smoke": DataPipelineSize(n_train=512, rounds=Rounds.fixed(3)),
    },
    unit="samples_per_s",
    build=lambda *args: build(*args),
    devices="host",
    skip=skip,
)
