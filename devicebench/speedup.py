"""The speed-up matrix of one run: GPU over CPU, DataParallel over one GPU, and efficiency.

Every ratio compares the same work and names what it compared with:

- ``cuda:0`` over ``cpu``: against the CPU's figure of the same work. A GPU variant the CPU
  cannot run is set against the CPU variant that does the same work in the CPU's precision
  (:data:`CPU_REFERENCE`): a tf32 or bf16 matmul against the fp32 one, the CUDA-graph
  regression against eager (the same Adam update), and the CNN's ``bf16`` and ``cudagraph``
  epochs, which keep the data on the device, against ``resident``, never against ``loader``;
- ``dp`` over ``cuda:0``, the same variant;
- efficiency = achieved / the same run's ceiling on that device (matmul ``tflops`` over the
  matching ``matmul-<precision>`` ceiling);
- for every DataParallel and DistributedDataParallel device (``dp``, ``dp:K``, ``ddp:cpu``,
  ``ddp:cuda``, ``ddp:cuda:K``): its median and scaling efficiency, its throughput over
  (GPUs or ranks) x one process's (``cuda:0``; ``cpu`` for ``ddp:cpu``) in the same run.

A ratio between results whose work differs (global batch, loader workers per process,
dataset: see :mod:`devicebench.work`) is not computed; the row says how they differ.
Speed-ups are throughput ratios.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import work

# The CPU variant each GPU-only variant is compared with: the same work in the CPU's precision.
CPU_REFERENCE = {
    ("matmul", "tf32"): "fp32",
    ("matmul", "bf16"): "fp32",
    ("linear_regression", "cudagraph"): "eager",
    ("cnn", "bf16"): "resident",
    ("cnn", "cudagraph"): "resident",
}
# Which ceiling bounds which variant's throughput.
CEILING_FOR = {("matmul", "fp32"): "matmul-fp32", ("matmul", "tf32"): "matmul-tf32", ("matmul", "bf16"): "matmul-bf16"}


@dataclass(frozen=True)
class Scaling:
    """A DataParallel or DDP device against one process of the same run."""

    median_s: float
    efficiency: float | None  # throughput over world x the reference's; None when not like for like
    world: int
    reference: str  # the device it is set against: cuda:0, or cpu for ddp:cpu
    note: str = ""  # why there is no efficiency


@dataclass(frozen=True)
class Row:
    workload: str
    variant: str
    cpu_s: float | None
    cuda_s: float | None
    dp_s: float | None
    cpu_reference: str | None  # the CPU result the GPU was compared with, e.g. "cpu-resident"
    gpu_over_cpu: float | None
    dp_over_gpu: float | None
    efficiency: dict[str, float]  # device -> achieved / ceiling
    dp_replicas: int | None
    scaling: dict[str, Scaling] = field(default_factory=dict)
    note: str = ""  # why a GPU/CPU ratio is missing although both ran


def _index(run: dict) -> dict[tuple[str, str, str], dict]:
    out = {}
    for bench in run["benchmarks"]:
        info = bench.get("extra_info", {})
        if {"workload", "variant", "device"} <= set(info):
            out[(info["workload"], info["variant"], info["device"])] = bench
    return out


def _median(bench: dict | None) -> float | None:
    return bench["stats"]["median"] if bench else None


def _ratio(fast: dict | None, slow: dict | None) -> float | None:
    """How many times ``fast`` outruns ``slow``, by throughput (the work per call may differ a little)."""
    if not fast or not slow:
        return None
    unit = fast["extra_info"].get("throughput_unit")
    a, b = fast["extra_info"].get(unit), slow["extra_info"].get(unit)
    if a and b and unit == slow["extra_info"].get("throughput_unit"):
        return a / b
    return slow["stats"]["median"] / fast["stats"]["median"]


def _unlike(a: dict | None, b: dict | None) -> str | None:
    if not a or not b:
        return None
    return work.unlike(a.get("extra_info", {}), b.get("extra_info", {}), work.SAME_THROUGHPUT_WORK)


def _family(device_id: str) -> str:
    """``dp:2`` -> ``dp``; ``ddp:cuda:2`` -> ``ddp:cuda``; others are their own."""
    return ":".join(device_id.split(":")[: 2 if device_id.startswith("ddp") else 1])


def _world(bench: dict) -> int:
    info = bench["extra_info"]
    return info.get("world_size") or info.get("dp_replicas") or 1


def _scaling(index: dict, workload: str, variant: str) -> dict[str, Scaling]:
    found = [(d, b) for (w, v, d), b in index.items() if (w, v) == (workload, variant) and (d == "dp" or d.startswith(("dp:", "ddp:")))]
    out = {}
    for device_id, bench in sorted(found, key=lambda db: (db[0].startswith("ddp"), _family(db[0]), _world(db[1]))):
        world = _world(bench)
        reference_id = "cpu" if device_id == "ddp:cpu" else "cuda:0"
        reference = index.get((workload, variant, reference_id))
        unlike = _unlike(bench, reference)
        ratio = None if unlike else _ratio(bench, reference)
        note = f"not like for like: {unlike}" if unlike else "" if reference else f"no {reference_id} result"
        out[device_id] = Scaling(bench["stats"]["median"], ratio / world if ratio is not None else None, world, reference_id, note)
    return out


def _efficiency(bench: dict | None, ceiling: dict | None) -> float | None:
    if not bench or not ceiling:
        return None
    unit = bench["extra_info"].get("throughput_unit")
    achieved, best = bench["extra_info"].get(unit), ceiling["extra_info"].get(unit)
    return achieved / best if achieved and best else None


def matrix(run: dict) -> list[Row]:
    index = _index(run)
    rows = []
    for workload, variant in sorted({(w, v) for w, v, _ in index if w != "ceiling"}):
        cuda, dp = index.get((workload, variant, "cuda:0")), index.get((workload, variant, "dp"))
        cpu_variant = variant if (workload, variant, "cpu") in index else CPU_REFERENCE.get((workload, variant))
        cpu = index.get((workload, cpu_variant, "cpu")) if cpu_variant else None
        unlike = _unlike(cuda, cpu)
        efficiency = {}
        ceiling_variant = CEILING_FOR.get((workload, variant))
        for device, bench in (("cpu", index.get((workload, variant, "cpu"))), ("cuda:0", cuda)):
            value = _efficiency(bench, index.get(("ceiling", ceiling_variant, device)) if ceiling_variant else None)
            if value is not None:
                efficiency[device] = value
        rows.append(
            Row(
                workload,
                variant,
                _median(cpu),
                _median(cuda),
                _median(dp),
                f"cpu-{cpu_variant}" if cpu else None,
                None if unlike else _ratio(cuda, cpu),
                None if _unlike(dp, cuda) else _ratio(dp, cuda),
                efficiency,
                dp["extra_info"].get("dp_replicas") if dp else None,
                _scaling(index, workload, variant),
                "; ".join(
                    f"{label} not like for like: {why}"
                    for label, why in ((f"cuda:0 vs cpu-{cpu_variant}", unlike), ("dp vs cuda:0", _unlike(dp, cuda)))
                    if why
                ),
            )
        )
    return rows
