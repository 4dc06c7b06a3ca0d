"""What is timed: each workload is one declared :class:`Workload` in a module of its own.

A workload says, in one place, its name, its variants (with their numeric settings, what
they need of a device, the CPU variant that does the same work, and the ceiling that bounds
them), its sizes for each ``--bench-size``, how to build its step (:class:`Step`: the call,
an untimed setup, the work per call, what to read back and check afterwards) and its
throughput unit. :func:`registry` finds them; ``speedup``, the collection tests and the fault
messages read it instead of tables of their own. Adding a workload is one module here and
one thin file in ``benches/``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from devicebench.measure.backends import FEATURES
from devicebench.measure.config import DIST_TIMEOUT_S, Rounds
from devicebench.measure.precision import STRICT_FP32, Precision

DDP_ONLY_TRAINING = "DistributedDataParallel is measured on the CNN's training epochs"
# DataParallel copies its module to each GPU on every forward and runs the copies on threads:
# a compiled module is not what it replicates, and reduce-overhead's graphs cannot run on threads.
COMPILE_NO_DP = "torch.compile is not measured through DataParallel (it replicates the module on every call, on threads); compile runs on cpu and cuda:0"
COMPILE_NO_DDP = "torch.compile under DistributedDataParallel is not measured yet; ddp runs loader and resident"


@dataclass(frozen=True)
class Variant:
    name: str
    precision: Precision = STRICT_FP32
    needs: frozenset[str] = frozenset()  # device features (backends.FEATURES)
    cpu_reference: str | None = None  # the CPU variant doing the same work, where the CPU cannot run this one
    ceiling: str | None = None  # the ceiling variant bounding this one's throughput
    no_dp: str | None = None  # why DataParallel cannot run it
    no_ddp: str | None = None  # why DDP ranks do not run it
    compile_mode: str | None = None  # torch.compile's mode, for a compiled variant (devicebench.measure.compiling)
    eager_reference: str | None = None  # the eager variant doing the same work: a compiled one's speed-up is over it
    graph_reference: str | None = None  # the hand-captured CUDA-graph variant reduce-overhead is also set against

    def __post_init__(self):
        unknown = set(self.needs) - set(FEATURES)
        if unknown:
            raise ValueError(f"variant {self.name}: unknown device features {sorted(unknown)}; known: {', '.join(FEATURES)}")


def compiled_variants(eager: str, precision: Precision, no_ddp: str | None = None) -> tuple[Variant, Variant]:
    """``compile`` and ``compile-reduce-overhead``: the ``eager`` variant's work under torch.compile,
    each set against ``eager`` on its own device; reduce-overhead (CUDA graphs through the
    compiler) also against the hand-captured ``cudagraph``, and against ``eager`` on the CPU."""
    return (
        Variant("compile", precision, compile_mode="default", eager_reference=eager, no_dp=COMPILE_NO_DP, no_ddp=no_ddp),
        Variant(
            "compile-reduce-overhead",
            precision,
            needs=frozenset({"graphs"}),
            cpu_reference=eager,
            compile_mode="reduce-overhead",
            eager_reference=eager,
            graph_reference="cudagraph",
            no_dp=COMPILE_NO_DP,
            no_ddp=no_ddp,
        ),
    )


@dataclass
class Step:
    """What one benchmark times and records.

    ``call`` is one timed call (it queues its work and returns); ``setup`` runs, untimed,
    before every call; ``work`` is the work of one call in the workload's unit (per second
    of median, the throughput). ``info`` is recorded with the result. After timing,
    ``finish(timed)`` reads results back (never inside a call: a read is a sync), checks
    them (an AssertionError fails the benchmark) and returns more to record; ``close``
    releases what the step holds (processes, say). ``rounds`` is the step's own round
    budget where the size's does not fit (a training epoch per round).
    """

    call: Callable[[], Any]
    work: float | None = None
    setup: Callable[[], None] | None = None
    info: dict = field(default_factory=dict)
    rounds: Rounds | None = None
    finish: Callable[[Timed], dict] | None = None
    close: Callable[[], None] | None = None
    unit: str | None = None  # where a variant's unit is not the workload's (a ceiling's copy: gb_per_s)
    # What the figures ``finish`` reads are after, where not the calls the step got (a setup
    # that restarts training before every call: each figure is after one call from the same start).
    quality_after: str | None = None
    # The work counters' call (devicebench.measure.counting), after everything is read: the step
    # itself unless ``count`` is a shorter stand-in of its work, which ``counted`` names;
    # ``not_counted`` says why its work cannot be counted in this process.
    count: Callable[[], Any] | None = None
    counted: str | None = None
    not_counted: str | None = None


@dataclass(frozen=True)
class Timed:
    """What timing gave a step's ``finish``: the last timed call's result and the times."""

    last: Any
    round_s: list[float]  # each timed round (empty when timing was disabled)
    call_s: list[float]  # every call in order: the cold one, the warm-up ones, the rounds
    median_s: float | None
    setup_s: float


@dataclass(frozen=True)
class Context:
    """What a step may need beyond its device and size: the images, the run's options."""

    images: Callable[[], Any]  # the MNIST-format data, loaded on first use
    size_name: str = "seed"
    data_root: Any = None
    dist_timeout_s: float = DIST_TIMEOUT_S


@dataclass(frozen=True)
class Workload:
    name: str  # what results record as ``extra_info.workload``
    variants: tuple[Variant, ...]
    sizes: Mapping[str, Any]  # per --bench-size: the workload's own size object
    unit: str  # throughput key and unit: tflops, gb_per_s, steps_per_s, samples_per_s
    build: Callable[..., Step]  # build(device, variant, size, context) -> Step
    devices: str = "single"  # "single": cpu, accelerators, DataParallel; "training": DDP too; "host": no device parameter
    no_dp: str | None = None  # why DataParallel does not apply to the whole workload
    skip: Callable[..., str | None] | None = None  # a workload's own reason to skip a (device, variant)
    size_keys: tuple[str, ...] = ()  # what a result records of its size, in the order a message names them

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise ValueError(f"{self.name} has no variant {name!r}; variants: {', '.join(self.variant_names)}")

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    def size(self, size_name: str) -> Any:
        try:
            return self.sizes[size_name]
        except KeyError:
            raise ValueError(f"{self.name} has no size {size_name!r}; sizes: {', '.join(self.sizes)}") from None

    def size_fields(self, size_name: str) -> dict:
        """The size as a result records it (``m``, ``k``, ``n``, ``steps``, ...): its ``size_keys``."""
        size = self.size(size_name)
        return {key: getattr(size, key) for key in self.size_keys if hasattr(size, key)}

    def unsupported(self, device, variant: Variant) -> str | None:
        """Why ``variant`` does not run on ``device``, or None."""
        if device is not None:
            if device.is_ddp and self.devices != "training":
                return DDP_ONLY_TRAINING
            if device.is_ddp and variant.no_ddp:
                return variant.no_ddp
            if device.is_dp and (self.no_dp or variant.no_dp):
                return self.no_dp or variant.no_dp
            missing = [f for f in sorted(variant.needs) if not device.supports(f)]
            if missing:
                return f"{variant.name} needs {' and '.join(FEATURES[f] for f in missing)}; {device.id} has none"
            if variant.compile_mode is not None:
                from devicebench.measure import compiling

                reason = compiling.unavailable(device, variant.compile_mode)
                if reason:
                    return reason
        return self.skip(device, variant) if self.skip else None


_REGISTERED: dict[str, Workload] = {}


def register(workload: Workload) -> Workload:
    """Add a workload declared outside this package (a project's own, through its plugin)."""
    _REGISTERED[workload.name] = workload
    return workload


def registry() -> dict[str, Workload]:
    """Every declared workload by name: each module of this package that declares a ``WORKLOAD``,
    then those registered from outside. A module's ``WORKLOAD`` is read on every call, so a
    test plugin that replaces one is seen."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        workload = getattr(importlib.import_module(f"{__name__}.{info.name}"), "WORKLOAD", None)
        if isinstance(workload, Workload):
            found[workload.name] = workload
    found.update(_REGISTERED)
    return found
