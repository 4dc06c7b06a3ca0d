"""What work a stored result did, read the same way by every comparison: like is compared with like.

A ratio between two results (a speed-up, a scaling efficiency, a change of accuracy between
runs) means something only when both did the same work. These read that work off a
result's ``extra_info``, including from runs stored before the keys existed, and say in one
line how two results differ.
"""

from __future__ import annotations


def world(info: dict) -> int:
    """Processes or replicas a result ran on: DDP's world size, DataParallel's replicas, else 1."""
    value = info.get("world_size") or info.get("dp_replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def global_batch(info: dict) -> int | None:
    """Samples per optimizer step over all processes and replicas.

    Runs before ``global_batch`` was stored gave every DDP rank the whole ``batch_size``, so
    their global batch was ``batch_size`` x world size; DataParallel splits one batch.
    """
    if isinstance(info.get("global_batch"), int):
        return info["global_batch"]
    batch = info.get("batch_size")
    if not isinstance(batch, int):
        return None
    world = info.get("world_size") if str(info.get("device", "")).startswith("ddp") else 1
    return batch * (world if isinstance(world, int) else 1)


def epochs(info: dict) -> int | None:
    """Training epochs behind a result's quality figures (older runs: one accuracy per epoch)."""
    if isinstance(info.get("epochs"), int):
        return info["epochs"]
    accuracies = info.get("accuracy_per_epoch")
    return len(accuracies) if isinstance(accuracies, list) and accuracies else None


# Each: what it is called in a message, and how to read it.
_WORK = {
    "dataset": ("dataset", lambda info: info.get("dataset")),
    "global_batch": ("global batch", global_batch),
    "workers": ("loader workers per process", lambda info: info.get("workers")),
    "epochs": ("epochs", epochs),
}
# What must match for a throughput ratio (speed-up, scaling), and for quality figures.
SAME_THROUGHPUT_WORK = ("dataset", "global_batch", "workers")
SAME_TRAINING = ("dataset", "global_batch", "epochs")


def unlike(a: dict, b: dict, keys: tuple[str, ...]) -> str | None:
    """How two results' work differs in ``keys`` ("global batch 256 vs 128; ..."), or None when alike."""
    parts = []
    for key in keys:
        label, read = _WORK[key]
        left, right = read(a), read(b)
        if left != right:
            parts.append(f"{label} {left} vs {right}")
    return "; ".join(parts) or None
