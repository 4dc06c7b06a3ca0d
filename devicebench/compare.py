"""Did a run regress against another? Pure functions from two runs to verdicts; no printing.

A benchmark is a regression ("slower") only when both hold:

- a real size: its median grew by more than ``threshold`` (default 10%);
- statistical evidence: a one-sided Mann-Whitney U test on the raw round times gives
  p < ``alpha`` (default 0.01). Where the runs have no raw times, or too few rounds for the
  test to ever reach ``alpha`` (3 against 3 rounds cannot go below p = 0.05), the evidence
  is instead that the interquartile ranges do not overlap, and the verdict says so.

Given several runs a side (:func:`merge_runs`), the test is over the runs' medians instead:
on a shared machine one process's rounds agree with each other far better than with the
next process's, and only repeated runs measure that spread. With too few runs for the test
to reach ``alpha``, every candidate run must be slower than every baseline run.

"faster" is the mirror image. Anything else is "unchanged". What a benchmark learned and
used is compared too: a drop in validation accuracy, a worse loss, or peak memory grown past
the threshold is a regression of its own. Benchmarks skipped on one side are "not
comparable" with the recorded reason; present on one side only, for no recorded reason,
they are "added" or "removed".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import work
from .runs import quartiles

HARDWARE_KEYS = ("cpu_model", "cpu_threads", "cpu_detail", "gpu_models", "gpu_count", "nodes")
SOFTWARE_KEYS = ("torch", "torchvision", "cuda", "cudnn", "nvidia_driver", "python")

FASTER, SLOWER, UNCHANGED = "faster", "slower", "unchanged"
NOT_COMPARABLE, ADDED, REMOVED, FAILED = "not comparable", "added", "removed", "failed"


@dataclass(frozen=True)
class Settings:
    threshold: float = 0.10  # a change smaller than this is noise on any machine we have measured
    alpha: float = 0.01  # one false alarm in a hundred unchanged benchmarks, at most
    accuracy_drop: float = 0.01  # one point of validation accuracy
    # A new torch, CUDA, cuDNN, driver or Python between the runs is not the change under
    # test: its slowdowns are the environment's unless the user says the change is that.
    allow_env_change: bool = False


@dataclass(frozen=True)
class TimeVerdict:
    name: str
    fullname: str
    status: str
    baseline_s: float | None = None
    candidate_s: float | None = None
    p_value: float | None = None
    method: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline_s and self.candidate_s:
            return self.candidate_s / self.baseline_s
        return None

    @property
    def is_regression(self) -> bool:
        return self.status in (SLOWER, FAILED)


@dataclass(frozen=True)
class QualityChange:
    name: str
    metric: str
    baseline: float
    candidate: float
    note: str


@dataclass
class Comparison:
    verdicts: list[TimeVerdict]
    quality: list[QualityChange]
    hardware_diff: list[tuple[str, object, object]]
    software_changes: list[tuple[str, object, object]]
    warnings: list[str] = field(default_factory=list)
    # Benchmarks whose accuracy, loss and memory were not judged, and why (other epochs, data, batch).
    quality_not_comparable: list[tuple[str, str]] = field(default_factory=list)
    allow_env_change: bool = False

    @property
    def environment_changed(self) -> bool:
        """Software differs between the runs, and the user did not say that is the change under test."""
        return bool(self.software_changes) and not self.allow_env_change

    def _worse(self) -> list[str]:
        slow = [f"{v.name} ({v.status})" for v in self.verdicts if v.is_regression]
        return slow + [f"{q.name} ({q.metric})" for q in self.quality]

    @property
    def regressions(self) -> list[str]:
        """What got slower or worse and is the change's: nothing, when the environment changed under it."""
        return [] if self.environment_changed else self._worse()

    @property
    def environment_regressions(self) -> list[str]:
        """What got slower or worse while the environment changed: not attributable to the change."""
        return self._worse() if self.environment_changed else []


def _stats(bench: dict) -> dict:
    return bench["stats"]


def _raw(bench: dict) -> list[float] | None:
    data = _stats(bench).get("data")
    return list(data) if data and len(data) >= 2 else None


def _min_p(n: int, m: int) -> float:
    """The smallest one-sided p-value an exact rank test can give with n and m rounds."""
    return 1 / math.comb(n + m, n)


def _rank_test(baseline: list[float], candidate: list[float], alternative: str) -> float:
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(candidate, baseline, alternative=alternative).pvalue)


def time_verdict(name: str, fullname: str, base: dict, cand: dict, settings: Settings) -> TimeVerdict:
    b, c = _stats(base), _stats(cand)
    b_med, c_med = b["median"], c["median"]
    if not (b_med > 0 and c_med > 0):
        return TimeVerdict(name, fullname, NOT_COMPARABLE, b_med, c_med, note="a median is not positive")
    ratio = c_med / b_med
    direction = SLOWER if ratio > 1 + settings.threshold else FASTER if ratio < 1 / (1 + settings.threshold) else None
    b_runs, c_runs = base.get("run_medians") or [], cand.get("run_medians") or []
    b_raw, c_raw = _raw(base), _raw(cand)
    if len(b_runs) >= 2 and len(c_runs) >= 2:
        # Several runs a side: each run's median is one observation, so the spread between
        # processes (often larger than within one) is in the test instead of hidden by it.
        if _min_p(len(b_runs), len(c_runs)) < settings.alpha:
            method, note = "mann-whitney over runs", ""
            p = _rank_test(b_runs, c_runs, "greater" if ratio >= 1 else "less")
            evident = p < settings.alpha
        else:
            method, p = "runs", None
            note = f"{len(b_runs)} vs {len(c_runs)} runs cannot reach p < {settings.alpha}: every run must be on one side"
            evident = min(c_runs) > max(b_runs) if ratio >= 1 else max(c_runs) < min(b_runs)
    elif b_raw and c_raw and _min_p(len(b_raw), len(c_raw)) < settings.alpha:
        method = "mann-whitney"
        p = _rank_test(b_raw, c_raw, "greater" if ratio >= 1 else "less")
        evident = p < settings.alpha
        note = ""
    else:
        method, p = "iqr", None
        if b_raw and c_raw:
            note = f"{len(b_raw)} vs {len(c_raw)} rounds cannot reach p < {settings.alpha}: IQRs must not overlap"
        else:
            note = "no raw round times: IQRs must not overlap"
        evident = c["q1"] > b["q3"] if ratio >= 1 else c["q3"] < b["q1"]
    status = direction if direction and evident else UNCHANGED
    return TimeVerdict(name, fullname, status, b_med, c_med, p, method, note)


def _quality(name: str, base: dict, cand: dict, settings: Settings) -> list[QualityChange]:
    bi, ci = base.get("extra_info", {}), cand.get("extra_info", {})
    changes = []
    if quality_unlike(base, cand):
        return changes
    if _both_numbers(bi, ci, "val_accuracy") and ci["val_accuracy"] < bi["val_accuracy"] - settings.accuracy_drop:
        changes.append(
            QualityChange(name, "val_accuracy", bi["val_accuracy"], ci["val_accuracy"], f"dropped by more than {settings.accuracy_drop}")
        )
    # The validation loss where there is one: a last training batch's loss is too noisy to judge.
    loss_key = "val_loss" if _both_numbers(bi, ci, "val_loss") else "final_loss"
    if _both_numbers(bi, ci, loss_key) and ci[loss_key] > bi[loss_key] * (1 + settings.threshold):
        changes.append(QualityChange(name, loss_key, bi[loss_key], ci[loss_key], f"worse by more than {settings.threshold:.0%}"))
    if _both_numbers(bi, ci, "peak_memory_bytes") and ci["peak_memory_bytes"] > bi["peak_memory_bytes"] * (1 + settings.threshold):
        changes.append(
            QualityChange(
                name, "peak_memory_bytes", bi["peak_memory_bytes"], ci["peak_memory_bytes"], f"grew by more than {settings.threshold:.0%}"
            )
        )
    return changes


QUALITY_KEYS = ("val_accuracy", "val_loss", "final_loss", "peak_memory_bytes")


def quality_unlike(base: dict, cand: dict) -> str | None:
    """Why two results' accuracy, loss and memory cannot be compared (other epochs, data or batch), or None."""
    bi, ci = base.get("extra_info", {}), cand.get("extra_info", {})
    if not any(_both_numbers(bi, ci, key) for key in QUALITY_KEYS):
        return None
    return work.unlike(bi, ci, work.SAME_TRAINING)


def _both_numbers(a: dict, b: dict, key: str) -> bool:
    return isinstance(a.get(key), (int, float)) and isinstance(b.get(key), (int, float))


def _devicebench(run: dict) -> dict | None:
    return run.get("machine_info", {}).get("devicebench")


def hardware_diff(base: dict, cand: dict) -> list[tuple[str, object, object]]:
    b, c = _devicebench(base), _devicebench(cand)
    if not b or not c:
        return []
    # A fingerprint names "nodes" only for a torchrun job over several machines.
    bf, cf = ({"nodes": 1, **run.get("fingerprint", {})} for run in (b, c))
    # A generic CPU name gains "cpu_detail"; a run stored before that has none, which is
    # unknown, not different (compare_runs warns).
    unknown = {"cpu_detail"} if None in (bf.get("cpu_detail"), cf.get("cpu_detail")) else set()
    return [(k, bf.get(k), cf.get(k)) for k in HARDWARE_KEYS if k not in unknown and bf.get(k) != cf.get(k)]


def _cpu_detail_unknown(base: dict, cand: dict) -> str | None:
    details = [((_devicebench(run) or {}).get("fingerprint") or {}).get("cpu_detail") for run in (base, cand)]
    if (details[0] is None) != (details[1] is None):
        side = "baseline" if details[0] is None else "candidate"
        return (
            f"the {side} run does not record which CPU generation its generic CPU name stands for "
            f"(stored before devicebench did): the other is {details[1] or details[0]}"
        )
    return None


def software_changes(base: dict, cand: dict) -> list[tuple[str, object, object]]:
    b, c = _devicebench(base), _devicebench(cand)
    if not b or not c:
        return []
    return [(k, b.get(k), c.get(k)) for k in SOFTWARE_KEYS if b.get(k) != c.get(k)]


def _reasons(run: dict, key: str, field_name: str) -> dict[str, str]:
    return {r["fullname"]: r[field_name] for r in run.get("devicebench", {}).get(key, []) if "fullname" in r}


def _unlike(b: dict, c: dict) -> str | None:
    """Why two results of one benchmark measure different work (size, or processes/GPUs), or None."""
    bi, ci = b.get("extra_info", {}), c.get("extra_info", {})
    if bi.get("size") != ci.get("size"):
        return f"sizes differ: {bi.get('size')} vs {ci.get('size')}"
    # Under torchrun the same ddp benchmark may run on 2 ranks or on 16 (another node count).
    worlds = [info.get("world_size") or info.get("dp_replicas") for info in (bi, ci)]
    if worlds[0] != worlds[1]:
        return f"world sizes differ: {worlds[0]} vs {worlds[1]}"
    unlike = work.unlike(bi, ci, work.SAME_THROUGHPUT_WORK)
    if unlike:
        return f"the work differs: {unlike}"
    # TF32, cuDNN autotuning and the like change what is computed and how fast.
    bp, cp = bi.get("precision"), ci.get("precision")
    if isinstance(bp, dict) and isinstance(cp, dict) and bp != cp:
        changed = ", ".join(f"{k} {bp.get(k)} vs {cp.get(k)}" for k in sorted(set(bp) | set(cp)) if bp.get(k) != cp.get(k))
        return f"settings differ: {changed}"
    return None


def compare_runs(base: dict, cand: dict, settings: Settings = Settings()) -> Comparison:
    warnings = []
    for label, run in (("baseline", base), ("candidate", cand)):
        if not _devicebench(run):
            warnings.append(f"the {label} has no devicebench machine block (plain pytest-benchmark?): its machine cannot be checked")
        if run.get("devicebench", {}).get("interrupted"):
            warnings.append(f"the {label} run was interrupted: benchmarks it did not reach show as added or removed")
    unknown_cpu = _cpu_detail_unknown(base, cand)
    if unknown_cpu:
        warnings.append(unknown_cpu)
    b_by, c_by = {x["fullname"]: x for x in base["benchmarks"]}, {x["fullname"]: x for x in cand["benchmarks"]}
    b_skip, c_skip = _reasons(base, "skipped", "reason"), _reasons(cand, "skipped", "reason")
    b_fail, c_fail = _reasons(base, "failed", "error"), _reasons(cand, "failed", "error")
    verdicts, quality, quality_skipped = [], [], []
    for fullname in sorted(set(b_by) | set(c_by) | set(c_fail)):
        name = fullname.rsplit("::", 1)[-1]
        b, c = b_by.get(fullname), c_by.get(fullname)
        unlike = _unlike(b, c) if b and c else None
        if unlike:
            verdicts.append(TimeVerdict(name, fullname, NOT_COMPARABLE, _median(b), _median(c), note=unlike))
        elif b and c:
            verdicts.append(time_verdict(name, fullname, b, c, settings))
            quality.extend(_quality(name, b, c, settings))
            why = quality_unlike(b, c)
            if why:
                quality_skipped.append((name, why))
        elif fullname in c_fail:
            verdicts.append(TimeVerdict(name, fullname, FAILED, _median(b), None, note=f"failed in the candidate: {c_fail[fullname]}"))
        elif b and fullname in c_skip:
            verdicts.append(TimeVerdict(name, fullname, NOT_COMPARABLE, _median(b), None, note=f"candidate skipped it: {c_skip[fullname]}"))
        elif c and fullname in b_skip:
            verdicts.append(TimeVerdict(name, fullname, NOT_COMPARABLE, None, _median(c), note=f"baseline skipped it: {b_skip[fullname]}"))
        elif c and fullname in b_fail:
            verdicts.append(TimeVerdict(name, fullname, NOT_COMPARABLE, None, _median(c), note=f"failed in the baseline: {b_fail[fullname]}"))
        elif b:
            verdicts.append(TimeVerdict(name, fullname, REMOVED, _median(b), None))
        else:
            verdicts.append(TimeVerdict(name, fullname, ADDED, None, _median(c)))
    return Comparison(
        verdicts, quality, hardware_diff(base, cand), software_changes(base, cand), warnings, quality_skipped, settings.allow_env_change
    )


def _median(bench: dict | None) -> float | None:
    return bench["stats"]["median"] if bench else None


def merge_runs(runs: list[dict]) -> dict:
    """Several runs of one machine as one: per benchmark, its runs' medians and pooled rounds.

    The merged ``stats.median`` is the median of the runs' medians, ``q1``/``q3`` their
    quartiles; ``run_medians`` keeps them all for :func:`time_verdict`. Numbers in
    ``extra_info`` become their median over the runs. Raises ValueError when the runs come
    from different hardware.
    """
    if len(runs) == 1:
        return runs[0]
    first = runs[0]
    for other in runs[1:]:
        diff = hardware_diff(first, other)
        if diff:
            raise ValueError("runs of different machines cannot be merged: " + "; ".join(f"{k}: {a!r} vs {b!r}" for k, a, b in diff))
    by_name: dict[str, list[dict]] = {}
    for run in runs:
        for bench in run["benchmarks"]:
            by_name.setdefault(bench["fullname"], []).append(bench)
    merged = []
    for fullname, benches in by_name.items():
        medians = [b["stats"]["median"] for b in benches]
        q1, med, q3 = quartiles(medians)
        pooled = [x for b in benches for x in (b["stats"].get("data") or [])]
        stats = {**benches[0]["stats"], "median": med, "q1": q1, "q3": q3, "iqr": q3 - q1, "rounds": sum(b["stats"]["rounds"] for b in benches)}
        stats["data"] = pooled or None
        info = dict(benches[0].get("extra_info", {}))
        for key, value in info.items():
            values = [b["extra_info"].get(key) for b in benches]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and all(isinstance(v, (int, float)) for v in values):
                info[key] = quartiles(values)[1]
        merged.append({**benches[0], "stats": stats, "extra_info": info, "run_medians": medians})
    block = {"skipped": [], "failed": []}
    for run in runs:
        for key in block:
            block[key] += run.get("devicebench", {}).get(key, [])
    return {**first, "benchmarks": merged, "devicebench": {**first.get("devicebench", {}), **block}, "merged_runs": len(runs)}
