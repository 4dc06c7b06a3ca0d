"""The speed-up matrix of one run: GPU over CPU, DataParallel over one GPU, and efficiency.

For each workload and variant: ``cuda:0`` over ``cpu`` (against the CPU's same variant, or,
where the CPU has no such variant, against the CPU's reference one: ``fp32`` matmul,
``eager`` regression, ``loader`` CNN, marked so), ``dp`` over ``cuda:0``, and efficiency =
achieved / the same run's ceiling on that device (matmul ``tflops`` over the matching
``matmul-<precision>`` ceiling), and for every DataParallel and DistributedDataParallel
device (``dp``, ``dp:K``, ``ddp:cpu``, ``ddp:cuda``, ``ddp:cuda:K``) its median and scaling
efficiency: its throughput over (GPUs or ranks) x one device's (``cuda:0``; ``cpu`` for
``ddp:cpu``) in the same run, so DP and DDP scaling sit side by side. Speed-ups are
throughput ratios.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The variant a GPU variant is compared with on the CPU when the CPU cannot run it.
CPU_REFERENCE = {"matmul": "fp32", "linear_regression": "eager", "cnn": "loader"}
# Which ceiling bounds which variant's throughput.
CEILING_FOR = {("matmul", "fp32"): "matmul-fp32", ("matmul", "tf32"): "matmul-tf32", ("matmul", "bf16"): "matmul-bf16"}


@dataclass(frozen=True)
class Row:
    workload: str
    variant: str
    cpu_s: float | None
    cuda_s: float | None
    dp_s: float | None
    cpu_variant: str | None  # the CPU variant the GPU was compared with, when not the same
    gpu_over_cpu: float | None
    dp_over_gpu: float | None
    efficiency: dict[str, float]  # device -> achieved / ceiling
    dp_replicas: int | None
    # DataParallel and DDP devices: median, scaling efficiency = throughput over world size x
    # one device's (cpu for ddp:cpu, cuda:0 for the others) in the same run, and world size.
    scaling: dict[str, tuple[float, float | None, int]] = field(default_factory=dict)


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


def _family(device_id: str) -> str:
    """``dp:2`` -> ``dp``; ``ddp:cuda:2`` -> ``ddp:cuda``; others are their own."""
    return ":".join(device_id.split(":")[: 2 if device_id.startswith("ddp") else 1])


def _world(bench: dict) -> int:
    info = bench["extra_info"]
    return info.get("world_size") or info.get("dp_replicas") or 1


def _scaling(index: dict, workload: str, variant: str) -> dict[str, tuple[float, float | None, int]]:
    found = [(d, b) for (w, v, d), b in index.items() if (w, v) == (workload, variant) and (d == "dp" or d.startswith(("dp:", "ddp:")))]
    out = {}
    for device_id, bench in sorted(found, key=lambda db: (db[0].startswith("ddp"), _family(db[0]), _world(db[1]))):
        world = _world(bench)
        ratio = _ratio(bench, index.get((workload, variant, "cpu" if device_id == "ddp:cpu" else "cuda:0")))
        out[device_id] = (bench["stats"]["median"], ratio / world if ratio is not None else None, world)
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
        cpu, cuda, dp = (index.get((workload, variant, d)) for d in ("cpu", "cuda:0", "dp"))
        cpu_variant = None
        if cpu is None and workload in CPU_REFERENCE:
            reference = index.get((workload, CPU_REFERENCE[workload], "cpu"))
            if reference is not None and cuda is not None:
                cpu, cpu_variant = reference, CPU_REFERENCE[workload]
        efficiency = {}
        ceiling_variant = CEILING_FOR.get((workload, variant))
        for device, bench in (("cpu", index.get((workload, variant, "cpu"))), ("cuda:0", cuda)):
            value = _efficiency(bench, index.get(("ceiling", ceiling_variant, device)) if ceiling_variant else None)
            if value is not None:
                efficiency[device] = value
        cpu_s, cuda_s, dp_s = _median(cpu), _median(cuda), _median(dp)
        rows.append(
            Row(
                workload,
                variant,
                cpu_s,
                cuda_s,
                dp_s,
                cpu_variant,
                _ratio(cuda, cpu),
                _ratio(dp, cuda),
                efficiency,
                dp["extra_info"].get("dp_replicas") if dp else None,
                _scaling(index, workload, variant),
            )
        )
    return rows
