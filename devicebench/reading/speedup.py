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

- a compiled variant (``torch.compile``) over the eager variant doing the same work on the same
  device (``1.8x vs cuda:0-eager``), with the interval both medians' intervals give, and its
  break-even: ``compile_s / (eager per call - compiled per call)`` calls, "never" where the
  compiled call is not faster; reduce-overhead also over the hand-captured ``cudagraph``.

A ratio between results whose work differs (global batch, loader workers per process,
dataset: see :mod:`devicebench.reading.work`) is not computed; the row says how they differ.
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
class CompileGain:
    """A compiled variant on one device against the eager variant of the same work there."""

    reference: str  # the eager result it is set against: cuda:0-eager
    ratio: float | None  # how many times the compiled one's throughput; None when not like for like
    low: float | None  # the ratio's interval from both medians' 95% intervals (None: too few rounds)
    high: float | None
    compile_s: float | None  # the compiler's seconds in the first call (torch's own accounting)
    break_even: float | None  # calls until compiling has paid for itself; None: never, or not known
    break_even_low: float | None
    break_even_high: float | None  # None with a low: within the intervals it may never pay off
    never: bool = False  # the compiled call is not faster: compiling never pays off
    recompiles_in_rounds: int | None = None  # compiles inside the timed rounds (they timed the compiler)
    work_per_call: float | None = None  # in the row's unit without "/s": steps or samples per call
    graph_reference: str | None = None  # reduce-overhead's hand-captured counterpart: cuda:0-cudagraph
    graph_ratio: float | None = None
    note: str = ""


def ratio_interval(fast: Result, slow: Result, value: float) -> tuple[float | None, float | None]:
    """The interval of ``value`` (``fast`` over ``slow``) that both medians' 95% intervals give."""
    fi, si = fast.median_interval(), slow.median_interval()
    if not fi or not si:
        return None, None
    return value * (si[0] / slow.median_s) * (fast.median_s / fi[1]), value * (si[1] / slow.median_s) * (fast.median_s / fi[0])


def break_even(compile_s: float, eager: Result, compiled: Result) -> tuple[float | None, float | None, float | None, bool]:
    """(calls, low, high, never): ``compile_s / (eager per call - compiled per call)``, with the interval the
    medians' intervals give; ``never`` when the compiled call is not faster, a high of None where it may not be."""
    gain = eager.median_s - compiled.median_s
    if gain <= 0:
        return None, None, None, True
    low = high = None
    ei, ci = eager.median_interval(), compiled.median_interval()
    if ei and ci:
        best, worst = ei[1] - ci[0], ei[0] - ci[1]
        low = compile_s / best
        high = compile_s / worst if worst > 0 else None
    return compile_s / gain, low, high, False


def _compile_gain(index: Index, workload: str, variant: str, device_id: str) -> CompileGain | None:
    compiled = index.get((workload, variant, device_id))
    eager_variant = _read_against(index, workload, variant, "eager_reference")
    if compiled is None or not eager_variant:
        return None
    reference = f"{device_id}-{eager_variant}"
    eager = index.get((workload, eager_variant, device_id))
    recompiles = compiled.info.get("recompiles_in_rounds")
    recompiles = recompiles if isinstance(recompiles, int) and not isinstance(recompiles, bool) else None
    flag = f"recompiled {recompiles}x in its timed rounds: they timed the compiler" if recompiles else ""
    if eager is None:
        return CompileGain(reference, None, None, None, compiled.figure("compile_s"), None, None, None, recompiles_in_rounds=recompiles, note="; ".join(filter(None, [f"no {reference} result", flag])))
    unlike = _unlike(compiled, eager)
    value = None if unlike else _ratio(compiled, eager)
    low, high = ratio_interval(compiled, eager, value) if value is not None else (None, None)
    compile_s = compiled.figure("compile_s")
    calls = calls_low = calls_high = None
    never = False
    if value is not None and compile_s is not None:
        calls, calls_low, calls_high, never = break_even(compile_s, eager, compiled)
    per_call = compiled.throughput * compiled.median_s if compiled.throughput else None
    graph_variant = _read_against(index, workload, variant, "graph_reference")
    graph = index.get((workload, graph_variant, device_id)) if graph_variant else None
    graph_ratio = _ratio(compiled, graph) if graph and not _unlike(compiled, graph) else None
    return CompileGain(
        reference,
        value,
        low,
        high,
        compile_s,
        calls,
        calls_low,
        calls_high,
        never,
        recompiles,
        per_call,
        f"{device_id}-{graph_variant}" if graph is not None else None,
        graph_ratio,
        "; ".join(filter(None, [f"not like for like: {unlike}" if unlike else "", flag])),
    )


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
    # A compiled variant: on each device, its speed-up over eager there and its break-even.
    compiled: dict[str, CompileGain] = field(default_factory=dict)

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
                compiled={d: g for d in ["cpu", *accelerator_ids()] if (g := _compile_gain(index, workload, variant, d)) is not None},
            )
        )
    return rows
