"""The figures a run stores, in one place: their key, unit, which way is better, and how a change is judged.

``compare`` judges with these rules, ``show``, ``speedup`` and ``report`` label with these
units; a new figure is one entry here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    key: str  # in a result's extra_info ("median" is pytest-benchmark's own, in stats)
    unit: str  # how a table labels it
    better: str  # "lower" or "higher"
    rule: str | None  # how compare judges a change: "time", "accuracy" (an absolute drop), "relative"; None: recorded only
    meaning: str
    unless: str | None = None  # judged only where this other figure is absent


FIGURES = {
    f.key: f
    for f in (
        Figure("median", "s", "lower", "time", "median seconds per call (per round, or per call of a looped round)"),
        Figure("tflops", "TFLOP/s", "higher", None, "trillion floating-point operations per second"),
        Figure("gb_per_s", "GB/s", "higher", None, "gigabytes (10^9 bytes, not bits) per second moved; a copy within a device counts read + write"),
        Figure("steps_per_s", "steps/s", "higher", None, "optimizer steps per second"),
        Figure("samples_per_s", "samples/s", "higher", None, "training or loading samples per second"),
        Figure("val_accuracy", "", "higher", "accuracy", "accuracy on the held-out test images after training"),
        Figure("val_loss", "", "lower", "relative", "loss on the held-out test images after training"),
        # A last training batch's loss is too noisy to judge where a validation loss exists.
        Figure("final_loss", "", "lower", "relative", "loss of the last training step", unless="val_loss"),
        Figure("peak_memory_bytes", "B", "lower", "relative", "peak device memory allocated"),
        Figure("setup_s", "s", "lower", None, "building the step: model and data on the device, a graph's capture"),
        Figure("cold_start_s", "s", "lower", None, "the first call, apart from the steady ones"),
        Figure("compile_s", "s", "lower", None, "the compiler's own seconds in the first call"),
        Figure("time_to_accuracy_s", "s", "lower", None, "seconds from setup until the target accuracy"),
    )
}
# Keys runs stored before a figure was renamed: read as the new key (``gbps`` read as gigabits).
RENAMED = {"gbps": "gb_per_s"}
THROUGHPUT_UNITS = tuple(k for k, f in FIGURES.items() if f.unit.endswith("/s"))
JUDGED = tuple(f for f in FIGURES.values() if f.rule in ("accuracy", "relative"))
# A bench of one's own counts its work in its own things: tokens_per_s, images_per_s,
# sequences_per_s. Lower-case words joined by "_", so that a unit read from a run file is
# never markup, whatever the output.
OWN_UNIT = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*_per_s")
OWN_THROUGHPUT = "<things>_per_s"  # how KEYS lists such a key


def is_throughput_unit(key: object) -> bool:
    """One of the suite's units (:data:`THROUGHPUT_UNITS`), or ``<things>_per_s`` that is no other stored key."""
    return key in THROUGHPUT_UNITS or (isinstance(key, str) and OWN_UNIT.fullmatch(key) is not None and key not in KEYS)


def unit_label(key: str) -> str:
    """How a table names the unit of a stored key: ``tflops`` -> ``TFLOP/s``, ``tokens_per_s`` ->
    ``tokens/s``; an unknown key as itself."""
    figure = FIGURES.get(key)
    if figure and figure.unit:
        return figure.unit
    if isinstance(key, str) and OWN_UNIT.fullmatch(key):
        return key.removesuffix("_per_s").replace("_", " ") + "/s"
    return key


@dataclass(frozen=True)
class Key:
    """One key a devicebench result may store in its ``extra_info``."""

    key: str
    type: str  # "float", "int", "str", "bool", "list", "dict"; a trailing "?" allows null
    unit: str  # "" where it has none
    meaning: str

    def accepts(self, value) -> bool:
        if value is None:
            return self.type.endswith("?")
        kind = self.type.rstrip("?")
        if kind == "float":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, {"int": int, "str": str, "bool": bool, "list": list, "dict": dict}[kind]) and not (kind == "int" and isinstance(value, bool))


def _keys(group: str, *rows: tuple[str, str, str, str]) -> dict[str, tuple[str, Key]]:
    return {key: (group, Key(key, kind, unit, meaning)) for key, kind, unit, meaning in rows}


# Every key a result of the suite (or of a bench of one's own) stores, by group: the one list
# writers are held to (tests: no result of the suite stores a key that is not here) and the
# docs' reference of result keys is made from (docs/reference/result-keys.md).
KEYS = {
    **_keys(
        "what ran",
        ("device", "str", "", "the device id: cpu, cuda:0, dp, dp:K, ddp:cpu, ddp:cuda, ddp:cuda:K, mps"),
        ("device_type", "str", "", "torch's device type (cpu, cuda, mps)"),
        ("device_name", "str", "", "the device's own name (an NVIDIA H200)"),
        ("workload", "str", "", "the workload (matmul, cnn, ...; for a bench of one's own, the test function's name unless given)"),
        ("variant", "str", "", "the variant (fp32, resident, ...; for one's own, the test's other parameters, or default)"),
        ("size", "str", "", "--bench-size: seed or smoke"),
        ("precision", "dict", "", "the numeric settings in force: TF32 flags, matmul precision, cuDNN settings"),
        ("cpu_reference", "str?", "", "the CPU variant doing the same work, where the CPU cannot run this one (speedup's reference)"),
        ("ceiling", "str?", "", "the ceiling variant bounding this one's throughput (efficiency's reference)"),
        ("dataset", "str", "", "MNIST, FashionMNIST or synthetic"),
        ("dtype", "str", "", "the tensors' dtype"),
    ),
    **_keys(
        "sizes and work",
        ("m", "int", "", "matmul rows of a"),
        ("k", "int", "", "matmul columns of a, rows of b"),
        ("n", "int", "", "matmul columns of b; linear regression: points"),
        ("flops", "int", "FLOP", "floating-point operations of one call"),
        ("nbytes", "int", "B", "bytes of the tensor copied"),
        ("bytes_moved", "int", "B", "bytes a copy reads and writes"),
        ("bytes_counted", "str", "", "what a GB/s counts (read + write)"),
        ("steps", "int", "", "optimizer steps per call"),
        ("lr", "float", "", "learning rate"),
        ("n_train", "int", "", "training images"),
        ("n_test", "int", "", "held-out test images"),
        ("samples", "int", "", "samples per call (an epoch's, all ranks)"),
        ("batch_size", "int", "", "the workload's batch size"),
        ("global_batch", "int", "", "samples per optimizer step over all processes and replicas"),
        ("batch_per_rank", "int", "", "a DDP rank's share of the global batch"),
        ("workers", "int", "", "DataLoader worker processes per process"),
        ("pin_memory", "bool", "", "pinned host memory for copies to the device"),
        ("epochs", "int", "", "training epochs (fixed per size)"),
        ("parameters", "int", "", "the model's parameters"),
    ),
    **_keys(
        "timing",
        ("cold_start_s", "float", "s", "the first call, apart from the steady ones"),
        ("warmup_rounds", "int", "", "warm-up calls, not counted"),
        ("warmup_s", "list", "s", "each warm-up call's seconds"),
        ("iterations", "int", "", "calls per timed round (short steps are looped; the round is divided by it)"),
        ("calls", "int", "", "every call the step got: cold, warm-up, timed, and those of --benchmark-cprofile's round"),
        ("stop_reason", "str", "", "why the rounds stopped: converged, time limit, round limit"),
        ("median_ci_low_s", "float?", "s", "the median's distribution-free 95% interval, low end"),
        ("median_ci_high_s", "float?", "s", "the median's distribution-free 95% interval, high end"),
        ("median_precision", "float?", "", "the interval's half-width over the median"),
        ("target_precision", "float?", "", "the half-width the rounds aimed at (--bench-precision); null for a fixed count"),
        ("timed_rounds_s", "float", "s", "seconds spent in timed rounds"),
        ("setup_s", "float", "s", "building the step: model and data on the device, a graph's capture"),
        ("cpu_median_s", "float", "s", "median process CPU seconds per call of the timed rounds (all threads, spinning ones too), read between rounds"),
        ("cuda_event_median_s", "float", "s", "median per call by CUDA events around the same calls"),
        ("cuda_event_q1_s", "float", "s", "first quartile by CUDA events"),
        ("cuda_event_q3_s", "float", "s", "third quartile by CUDA events"),
        ("sync_overhead_max_s", "float", "s", "the most an empty synchronized round cost beyond its device work"),
    ),
    **_keys(
        "torch.compile",
        ("compile_mode", "str", "", "torch.compile's mode (default, reduce-overhead, ...); eager for the eager side of a compile_mode axis"),
        ("eager_reference", "str?", "", "the eager variant doing the same work on the same device (a compiled speed-up's reference)"),
        ("graph_reference", "str?", "", "the hand-captured CUDA-graph variant reduce-overhead is also set against"),
        ("compile_cache", "str", "", "the compiler's cache: cold (an empty folder of the benchmark's own), or the user's TORCHINDUCTOR_CACHE_DIR"),
        ("compiler_startup_s", "float", "s", "the compiler's one-time start in this process for this device kind, paid before the first compiled benchmark"),
        ("compile_s", "float?", "s", "the compiler's own seconds in the first call (torch's accounting); part of cold_start_s"),
        ("compile_total_s", "float?", "s", "the compiler's seconds over the whole benchmark"),
        ("compile_warm_s", "float?", "s", "the same compile again from the benchmark's cache, now warm (the suite's workloads, after timing)"),
        ("compile_graphs", "int?", "", "graphs the compiler made (torch's counter)"),
        ("compile_graph_breaks", "int?", "", "graph breaks (torch's counter)"),
        ("compile_recompiles", "int?", "", "recompiles: compiles of a frame that had compiled before"),
        ("recompiles_in_rounds", "int?", "", "compiles inside the timed rounds (then the rounds timed the compiler: flagged)"),
    ),
    **_keys(
        "throughput",
        ("throughput_unit", "str", "", "which key holds the throughput"),
        ("tflops", "float", "TFLOP/s", "trillion floating-point operations per second"),
        ("gb_per_s", "float", "GB/s", "10^9 bytes per second moved (a copy within a device counts read + write)"),
        ("gbps", "float", "GB/s", "the old name of gb_per_s (runs before 2026-11-29), read as gb_per_s"),
        ("steps_per_s", "float", "steps/s", "optimizer steps per second"),
        ("samples_per_s", "float", "samples/s", "training or loading samples per second"),
        (
            OWN_THROUGHPUT,
            "float",
            "<things>/s",
            "a bench of one's own: its throughput in a unit of its own (tokens_per_s, images_per_s), named by throughput_unit",
        ),
    ),
    **_keys(
        "what it learned",
        ("quality", "dict", "", "the declared quality figures: {name: {value, better, rule, after}} (devicebench.reading.quality)"),
        ("final_loss", "float", "", "loss of the last training step"),
        ("val_loss", "float", "", "loss on the held-out images"),
        ("val_accuracy", "float", "", "accuracy on the held-out images"),
        ("accuracy_per_epoch", "list", "", "validation accuracy after each epoch"),
        ("learned_w", "list", "", "the linear regression's learned weights"),
        ("learned_b", "float", "", "the linear regression's learned bias"),
        ("target_accuracy", "float", "", "the accuracy time_to_accuracy_s waits for"),
        ("time_to_accuracy_s", "float?", "s", "seconds from setup until the target accuracy; null if not reached"),
        ("epochs_to_accuracy", "int?", "", "epochs until the target accuracy; null if not reached"),
        ("peak_memory_bytes", "int?", "B", "peak device memory allocated; null on the CPU"),
    ),
    **_keys(
        "the CNN's epoch",
        ("epoch_s", "float", "s", "median seconds of a timed epoch"),
        ("data_wait_s", "float", "s", "of which the host waited for data"),
        ("step_s", "float", "s", "of which the training steps: epoch_s - data_wait_s"),
        ("first_batch_s", "float", "s", "until the first batch of the cold epoch arrived (worker start-up included)"),
        ("first_batch_steady_s", "float", "s", "until the first batch arrived, median of the timed epochs"),
    ),
    **_keys(
        "several devices",
        ("dp_replicas", "int", "", "DataParallel replicas"),
        ("dp_note", "str", "", "a one-replica DataParallel says so"),
        ("world_size", "int", "", "DDP ranks"),
        ("backend", "str", "", "the DDP collective backend: gloo, nccl"),
        ("ddp_note", "str", "", "a world of one rank says so"),
        ("samples_per_rank", "list", "", "each rank's samples per epoch"),
        ("threads_per_rank", "int", "", "torch threads of each rank"),
        ("per_rank_samples_per_s", "list", "samples/s", "each rank's throughput"),
        ("rank0_epoch_s", "list", "s", "rank 0's own epoch times"),
        ("launcher", "str", "", "torchrun, where it started the ranks"),
        ("nodes", "int", "", "machines of a torchrun job"),
        ("ranks_per_node", "int", "", "ranks on each machine"),
        ("rdzv_run_id", "str", "", "torchrun's rendezvous id"),
        ("hosts", "list", "", "each rank's host name"),
        ("node_software", "list", "", "each rank's torch, CUDA, NCCL, device and threads"),
    ),
    **_keys(
        "exact work",
        (
            "work",
            "dict",
            "",
            "the step's work counted in one more call after everything was read (devicebench.measure.counting): "
            "ops (aten operator -> calls), op_calls, flops, host_reads (aten._local_scalar_dense: .item(), bool(t); a sync each on a GPU), "
            "h2d_copies, h2d_bytes, d2h_copies, d2h_bytes, allocated_bytes, seconds (the counted call's, counters on), "
            "counted (what call was counted), note (what the counters could not see); on CUDA also cuda_kernels, cuda_copies, "
            "cuda_syncs, cuda_allocated_bytes",
        ),
        ("work_note", "str", "", "why the step's work was not counted (DDP ranks, loader workers: other processes)"),
        (
            "instructions",
            "dict",
            "",
            "--bench-instructions: CPU instructions per call under Valgrind's callgrind, one thread: per_call (the median), "
            "calls (each counted call's), tool, threads",
        ),
        ("instructions_note", "str", "", "why --bench-instructions did not count this benchmark"),
    ),
    **_keys(
        "what the device did",
        ("sensors", "str", "", "where the sensors came from (nvml, rapl), or why not recorded"),
        ("gpu_sm_clock_mhz_min", "float?", "MHz", "lowest SM clock over the rounds"),
        ("gpu_sm_clock_mhz_median", "float?", "MHz", "median SM clock over the rounds"),
        ("gpu_memory_clock_mhz_min", "float?", "MHz", "lowest memory clock"),
        ("gpu_memory_clock_mhz_median", "float?", "MHz", "median memory clock"),
        ("gpu_temperature_c_max", "float?", "C", "highest GPU temperature"),
        ("gpu_power_w_median", "float?", "W", "median GPU power"),
        ("clock_event_reasons", "list", "", "why the clocks were held back (decoded NVML reasons)"),
        ("throttled_rounds", "int", "", "rounds during which a clock was held back"),
        ("energy_j", "float", "J", "energy of the timed calls (the window's mean power for their seconds)"),
        ("energy_per_call_j", "float", "J", "energy per timed call"),
        ("power_w", "float", "W", "mean power over the window"),
        ("energy_window_s", "float", "s", "seconds between the counter's two readings"),
        ("energy_window_j", "float", "J", "the counter's whole difference over the window"),
        ("energy_note", "str", "", "why energy was not measured"),
    ),
}


def unknown_keys(info: dict) -> list[str]:
    """The keys of a result's extra_info that :data:`KEYS` does not list, or lists with another
    type; a bench's own throughput key (``tokens_per_s``, named by ``throughput_unit``) is listed
    as :data:`OWN_THROUGHPUT`."""
    unit = info.get("throughput_unit")
    own = unit if is_throughput_unit(unit) and unit not in KEYS else None
    listed = {k: KEYS.get(OWN_THROUGHPUT if k == own else k) for k in info}
    return sorted(k for k, v in info.items() if listed[k] is None or not listed[k][1].accepts(v))


_RULES = {
    "time": "the run-level test of the median (the gate)",
    "accuracy": "down by more than the accuracy drop (runs stored before quality figures were declared)",
    "relative": "worse by more than the threshold (a declared quality figure; before, by its key)",
}


def _better(key: str) -> str:
    figure = FIGURES.get(key)
    return figure.better if figure else ""


# Keys that must match between two results for compare or speedup to set them side by side (devicebench.reading.work).
MUST_MATCH = ("size", "dataset", "batch_size", "global_batch", "workers", "epochs", "world_size", "dp_replicas")


def _judged(key: str) -> str:
    if key in MUST_MATCH:
        return "must match on both sides, else not comparable"
    if key == "quality":
        return "each declared figure by its rule, where both sides did the same work"
    figure = FIGURES.get(key)
    return _RULES.get(figure.rule, "recorded only") if figure else "recorded only"


def reference_markdown() -> str:
    """The docs' reference of result keys, made from :data:`KEYS` (docs/reference/result-keys.md)."""
    out = [
        "# Result keys",
        "",
        "Every key a devicebench result stores in its pytest-benchmark `extra_info`, made from",
        "`devicebench.reading.schema.KEYS` (a test holds this page to it). A type ending in `?` may be null.",
        "A bench of one's own adds what it puts in `bench.info` beside these.",
        "",
    ]
    groups: dict[str, list[Key]] = {}
    for group, key in KEYS.values():
        groups.setdefault(group, []).append(key)
    for group, keys in groups.items():
        out += [f"## {group[0].upper()}{group[1:]}", "", "| key | type | unit | better | how compare judges it | meaning |", "| --- | --- | --- | --- | --- | --- |"]
        out += [f"| `{k.key}` | {k.type} | {k.unit} | {_better(k.key)} | {_judged(k.key)} | {k.meaning} |" for k in keys]
        out.append("")
    return "\n".join(out)
