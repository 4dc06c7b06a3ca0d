"""The suite's own speed targets on a CUDA machine, checked on one stored run (``devicebench check-targets``).

Each target compares two figures of the same run. A target whose figures are missing (the
benchmark failed, was skipped or never ran) cannot be computed, and that is a failure too:
a check that silently drops what it cannot see would pass a broken GPU run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

FP32_MATMUL_EFFICIENCY = 0.75  # of the same GPU's fp32 matmul ceiling
LINREG_GRAPH_OVER_EAGER = 4.0
CNN_GRAPH_OVER_RESIDENT = 3.0


@dataclass(frozen=True)
class Outcome:
    target: str
    passed: bool
    detail: str  # the figures, or what is missing


@dataclass(frozen=True)
class _Target:
    name: str
    needs: tuple[str, ...]  # benchmark names
    judge: Callable[[dict[str, dict]], tuple[bool, str]]


def _throughput(bench: dict) -> float | None:
    info = bench.get("extra_info", {})
    value = info.get(info.get("throughput_unit"))
    return value if isinstance(value, (int, float)) and value > 0 else None


def _median(bench: dict) -> float:
    return bench["stats"]["median"]


def _matmul(b: dict[str, dict]) -> tuple[bool, str]:
    achieved, ceiling = _throughput(b["test_matmul[cuda:0-fp32]"]), _throughput(b["test_ceiling[cuda:0-matmul-fp32]"])
    if achieved is None or ceiling is None:
        return False, "no TFLOP/s recorded"
    share = achieved / ceiling
    return share >= FP32_MATMUL_EFFICIENCY, f"{achieved:.1f} of {ceiling:.1f} TFLOP/s = {share:.0%}"


def _ratio(slow: str, fast: str, at_least: float) -> Callable[[dict[str, dict]], tuple[bool, str]]:
    def judge(b: dict[str, dict]) -> tuple[bool, str]:
        ratio = _median(b[slow]) / _median(b[fast])
        return ratio >= at_least, f"{_median(b[slow]):.4g} s / {_median(b[fast]):.4g} s = {ratio:.2f}x"

    return judge


TARGETS = (
    _Target(f"fp32 matmul >= {FP32_MATMUL_EFFICIENCY:.0%} of the fp32 ceiling", ("test_matmul[cuda:0-fp32]", "test_ceiling[cuda:0-matmul-fp32]"), _matmul),
    _Target(
        f"linear regression: cudagraph >= {LINREG_GRAPH_OVER_EAGER:g}x eager",
        ("test_linear_regression[cuda:0-eager]", "test_linear_regression[cuda:0-cudagraph]"),
        _ratio("test_linear_regression[cuda:0-eager]", "test_linear_regression[cuda:0-cudagraph]", LINREG_GRAPH_OVER_EAGER),
    ),
    _Target(
        f"CNN epoch: cudagraph >= {CNN_GRAPH_OVER_RESIDENT:g}x resident",
        ("test_cnn[cuda:0-resident]", "test_cnn[cuda:0-cudagraph]"),
        _ratio("test_cnn[cuda:0-resident]", "test_cnn[cuda:0-cudagraph]", CNN_GRAPH_OVER_RESIDENT),
    ),
    _Target(
        "CNN epoch: resident faster than loader",
        ("test_cnn[cuda:0-loader]", "test_cnn[cuda:0-resident]"),
        _ratio("test_cnn[cuda:0-loader]", "test_cnn[cuda:0-resident]", 1.0 + 1e-9),
    ),
)


def check(run: dict) -> list[Outcome]:
    by_name = {b["name"]: b for b in run["benchmarks"]}
    failed = {f.get("name"): f.get("error", "") for f in run.get("devicebench", {}).get("failed", []) if isinstance(f, dict)}
    skipped = {s.get("name"): s.get("reason", "") for s in run.get("devicebench", {}).get("skipped", []) if isinstance(s, dict)}
    outcomes = []
    for target in TARGETS:
        missing = [name for name in target.needs if name not in by_name]
        if missing:
            why = "; ".join(
                f"{n} failed: {failed[n]}" if n in failed else f"{n} skipped: {skipped[n]}" if n in skipped else f"{n} not in the run"
                for n in missing
            )
            outcomes.append(Outcome(target.name, False, f"cannot be computed: {why}"))
            continue
        passed, detail = target.judge(by_name)
        outcomes.append(Outcome(target.name, passed, detail))
    return outcomes
