"""The speed-up matrix of one run: GPU over CPU, DataParallel over one GPU, and efficiency.

Every ratio compares the same work and names what it compared with:

- ``cuda:0`` over ``cpu``: against the CPU's figure of the same work. A GPU variant the CPU
  cannot run is set against the CPU variant that does the same work in the CPU's precision
  (each workload declares it, and each result records it: :func:`runs.read_against`): a tf32 or bf16 matmul against the fp32 one, the CUDA-graph
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

from . import kinds, work
from .runs import Result, Run, as_run, read_against


def _read_against(index: Index, workload: str, variant: str, key: str) -> str | None:
    """What the results of a (workload, variant) recorded they are read against (see :func:`runs.read_against`)."""
    for (w, v, _), result in index.items():
        if (w, v) == (workload, variant) and (value := read_against(result.info, key)) is not None:
            return value
    return None


@dataclass(frozen=True)
class Scaling:
    """A DataParallel or DDP device against one process of the same run."""

    median_s: float
    efficiency: float | None  # throughput over world x the reference's; None when not like for like
    world: int
    reference: str  # the device it is set against: cuda:0, or cpu for ddp:cpu
    note: str = ""  # why there is no efficiency


@dataclass(frozen=True)
class Accelerated:
    """One accelerator's figure of a row (``cuda:0``, ``mps``): its median, and its speed-up over the CPU."""

    median_s: float
    over_cpu: float | None
    efficiency: float | None
    note: str = ""  # why there is no speed-up although both ran
    throughput: float | None = None  # in the row's unit


@dataclass(frozen=True)
class Row:
    workload: str
    variant: str
    cpu_s: float | None
    cpu_reference: str | None  # the CPU result the accelerators were compared with, e.g. "cpu-resident"
    cpu_efficiency: float | None
    accelerators: dict[str, Accelerated]  # by device id, in the order devices list them
    dp_s: float | None
    dp_over_gpu: float | None
    dp_replicas: int | None
    scaling: dict[str, Scaling] = field(default_factory=dict)
    note: str = ""
    per_joule: dict[str, float] = field(default_factory=dict)  # device -> work per joule, where energy was measured
    unit: str | None = None  # the throughput unit the row's work is counted in
    ceiling: str | None = None  # the ceiling variant its efficiency is against (``matmul-fp32``)
    # Devices where this row beat its ceiling: the ceiling was not reached (a noisy or wrong
    # round), so no efficiency is given there; over 100% of a limit is never a figure.
    ceiling_not_reached: tuple[str, ...] = ()

    @property  # the first GPU's speed-up under the name the matrix always had
    def gpu_over_cpu(self) -> float | None:
        return self.accelerators["cuda:0"].over_cpu if "cuda:0" in self.accelerators else None

    @property
    def efficiency(self) -> dict[str, float]:
        """Device -> achieved / the same run's ceiling."""
        out = {"cpu": self.cpu_efficiency} if self.cpu_efficiency is not None else {}
        out.update({d: a.efficiency for d, a in self.accelerators.items() if a.efficiency is not None})
        return out


Index = dict[tuple[str, str, str], Result]


def _index(run: Run) -> Index:
    return {(r.workload, r.variant, r.device): r for r in run.results if r.workload and r.variant and r.device}


def _ratio(fast: Result | None, slow: Result | None) -> float | None:
    """How many times ``fast`` outruns ``slow``, by throughput (the work per call may differ a little)."""
    if not fast or not slow:
        return None
    if fast.throughput and slow.throughput and fast.unit == slow.unit:
        return fast.throughput / slow.throughput
    return slow.median_s / fast.median_s


def _unlike(a: Result | None, b: Result | None) -> str | None:
    if not a or not b:
        return None
    return work.unlike(a.info, b.info, work.SAME_THROUGHPUT_WORK)


def _world(result: Result) -> int:
    return result.world


def _one_process(device_id: str) -> str:
    """The single-process device a DataParallel or DDP device is set against: ``cuda:0``, or ``cpu`` for ``ddp:cpu``."""
    backend = kinds.kind_of(device_id).backend if kinds.is_known(device_id) else "cuda"
    return next(k.id for k in kinds.KINDS if k.backend == backend and k.mode == "single")


def _scaling(index: Index, workload: str, variant: str) -> dict[str, Scaling]:
    found = [(d, r) for (w, v, d), r in index.items() if (w, v) == (workload, variant) and kinds.is_known(d) and kinds.kind_of(d).mode != "single"]
    out = {}
    for device_id, result in sorted(found, key=lambda dr: (dr[0].startswith("ddp"), kinds.kind_of(dr[0]).id, _world(dr[1]))):
        world = _world(result)
        reference_id = _one_process(device_id)
        reference = index.get((workload, variant, reference_id))
        unlike = _unlike(result, reference)
        ratio = None if unlike else _ratio(result, reference)
        note = f"not like for like: {unlike}" if unlike else "" if reference else f"no {reference_id} result"
        out[device_id] = Scaling(result.median_s, ratio / world if ratio is not None else None, world, reference_id, note)
    return out


def _efficiency(result: Result | None, ceiling: Result | None) -> float | None:
    if not result or not ceiling or not result.throughput or not ceiling.throughput or result.unit != ceiling.unit:
        return None
    return result.throughput / ceiling.throughput


def accelerator_ids() -> list[str]:
    """The single-device accelerator ids, in the order devices list them: ``cuda:0``, ``mps``."""
    return kinds.single_accelerators()


def matrix(run: dict | Run) -> list[Row]:
    run = as_run(run)
    index = _index(run)
    rows = []
    for workload, variant in sorted({(w, v) for w, v, _ in index if w != "ceiling"}):
        cpu_variant = variant if (workload, variant, "cpu") in index else _read_against(index, workload, variant, "cpu_reference")
        cpu = index.get((workload, cpu_variant, "cpu")) if cpu_variant else None
        ceiling_variant = _read_against(index, workload, variant, "ceiling")

        not_reached: list[str] = []

        def efficiency(device_id: str) -> float | None:
            own = index.get((workload, variant, device_id))
            value = _efficiency(own, index.get(("ceiling", ceiling_variant, device_id))) if ceiling_variant else None
            if value is not None and value > 1:  # past a physical limit: the ceiling's figure is what is wrong
                not_reached.append(device_id)
                return None
            return value

        accelerated, notes = {}, []
        for device_id in accelerator_ids():
            result = index.get((workload, variant, device_id))
            if result is None:
                continue
            unlike = _unlike(result, cpu)
            if unlike:
                notes.append(f"{device_id} vs cpu-{cpu_variant} not like for like: {unlike}")
            accelerated[device_id] = Accelerated(result.median_s, None if unlike else _ratio(result, cpu), efficiency(device_id), throughput=result.throughput)
        dp, cuda = index.get((workload, variant, "dp")), index.get((workload, variant, "cuda:0"))
        if _unlike(dp, cuda):
            notes.append(f"dp vs cuda:0 not like for like: {_unlike(dp, cuda)}")
        rows.append(
            Row(
                workload,
                variant,
                cpu.median_s if cpu else None,
                f"cpu-{cpu_variant}" if cpu else None,
                efficiency("cpu"),
                accelerated,
                dp.median_s if dp else None,
                None if _unlike(dp, cuda) else _ratio(dp, cuda),
                dp.info.get("dp_replicas") if dp else None,
                _scaling(index, workload, variant),
                "; ".join(notes),
                {
                    d: r.per_joule
                    for d in ["cpu", *accelerator_ids()]
                    if (r := index.get((workload, cpu_variant if d == "cpu" else variant, d))) is not None and r.per_joule
                },
                next((r.unit for r in (cpu, *(index.get((workload, variant, d)) for d in accelerated)) if r is not None), None),
                ceiling=ceiling_variant,
                ceiling_not_reached=tuple(not_reached),
            )
        )
    return rows
