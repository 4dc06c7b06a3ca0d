"""check-timing, check-targets and .ci/gpu-check fail when they should, on the stored H200 run.

The run under ``results/`` is never changed; a test that needs other figures edits a copy of
it in ``tmp_path``.
"""

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest

from devicebench.reading import targets
from devicebench.reading.runs import load_run
from devicebench.reading.targets import check_against_events

from .test_compare import run_cli

ROOT = Path(__file__).resolve().parents[1]
H200_RUN = ROOT / "results" / "intel-xeon-16t-nvidia-h200-x1-6fb4e97f" / "Linux-CPython-3.12-64bit" / "0001_51ce617.json"
SHORT_KERNELS = {
    "test_matmul[cuda:0-tf32]",
    "test_matmul[cuda:0-bf16]",
    "test_matmul[dp-tf32]",
    "test_matmul[dp-bf16]",
    "test_ceiling[cuda:0-copy]",
}


def h200() -> dict:
    return load_run(H200_RUN)


def edited(tmp_path: Path, run: dict, name: str = "edited") -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(run))
    return str(path)


def bench(run: dict, name: str) -> dict:
    return next(b for b in run["benchmarks"] if b["name"] == name)


def test_the_h200_run_taken_before_looped_short_steps_disagrees_on_its_short_kernels(capsys):
    code, out, err = run_cli("check-timing", str(H200_RUN), capsys=capsys)
    assert code == 1
    disagree = {c.name for c in check_against_events(h200()) if not c.agrees}
    assert disagree == SHORT_KERNELS  # 115-535 us kernels, 13-20 us (4-11%) above their events
    assert f"{len(SHORT_KERNELS)} of 26 disagree with CUDA events" in err


def test_a_noisy_benchmark_is_not_excused_by_its_own_spread(tmp_path, capsys):
    run = h200()
    eager = bench(run, "test_linear_regression[cuda:0-eager]")
    assert eager["stats"]["iqr"] / eager["stats"]["median"] > 0.3  # rounds between 0.25 and 0.52 s
    eager["extra_info"]["cuda_event_median_s"] = eager["stats"]["median"] / 1.11  # 11% off, inside its IQR
    [check] = [c for c in check_against_events(run) if c.name == eager["name"]]
    assert not check.agrees and check.allowance == "3%"


def test_the_sync_cost_measured_in_the_run_is_allowed_per_call(tmp_path):
    run = h200()
    tf32 = bench(run, "test_matmul[cuda:0-tf32]")  # 241.3 us against events of 227.0 us: 14.3 us
    tf32["extra_info"]["sync_overhead_max_s"] = 20e-6
    [check] = [c for c in check_against_events(run) if c.name == tf32["name"]]
    assert check.agrees and check.allowance == "sync cost 20 us"
    tf32["extra_info"]["iterations"] = 10  # ten calls a round share one sync: 2 us each
    [check] = [c for c in check_against_events(run) if c.name == tf32["name"]]
    assert not check.agrees


def converged(run: dict, noisy: tuple[str, ...] = ()) -> dict:
    """The run as one whose GPU rounds stopped on their own would say it: converged but for ``noisy``."""
    for b in run["benchmarks"]:
        if not b["extra_info"]["device"].startswith(("cpu", "ddp")) and b["extra_info"]["workload"] != "cnn":
            b["extra_info"].update(target_precision=0.01, stop_reason="time limit" if b["name"] in noisy else "converged")
    return run


def test_the_speed_targets_hold_on_the_h200_run(capsys):
    code, out, err = run_cli("check-targets", str(H200_RUN), capsys=capsys)
    assert out.count("holds") == len(targets.TARGETS) - 1 == 4
    assert "40.1 of 50.9 TFLOP/s = 79%" in out
    # Taken before rounds stopped on their own, it cannot say how many medians converged.
    assert code == 1 and "no GPU result says how its rounds stopped" in out


def test_nine_in_ten_gpu_medians_must_converge(tmp_path, capsys):
    gpu = [b["name"] for b in h200()["benchmarks"] if not b["extra_info"]["device"].startswith(("cpu", "ddp")) and b["extra_info"]["workload"] != "cnn"]
    code, out, _ = run_cli("check-targets", edited(tmp_path, converged(h200(), noisy=tuple(gpu[:1]))), capsys=capsys)
    assert code == 0 and f"{len(gpu) - 1} of {len(gpu)}" in out
    code, out, _ = run_cli("check-targets", edited(tmp_path, converged(h200(), noisy=tuple(gpu[:4]))), capsys=capsys)
    assert code == 1 and "90% of GPU medians converged" in out and "FAILS" in out


def test_a_target_that_cannot_be_computed_fails(tmp_path, capsys):
    run = h200()
    run["benchmarks"] = [b for b in run["benchmarks"] if b["name"] != "test_cnn[cuda:0-cudagraph]"]
    run["devicebench"]["failed"].append({"name": "test_cnn[cuda:0-cudagraph]", "fullname": "x", "error": "CUDA error: capture failed"})
    code, out, err = run_cli("check-targets", edited(tmp_path, run), capsys=capsys)
    assert code == 1
    assert "cannot be computed: test_cnn[cuda:0-cudagraph] failed: CUDA error: capture failed" in out
    assert "2 of 5 targets fail or cannot be computed: CNN epoch: cudagraph >= 3x resident" in err


def test_a_target_that_is_missed_fails(tmp_path, capsys):
    run = h200()
    bench(run, "test_linear_regression[cuda:0-cudagraph]")["stats"]["median"] = 0.1  # 3.2x eager
    code, out, _ = run_cli("check-targets", edited(tmp_path, run), "--format", "markdown", capsys=capsys)
    assert code == 1
    assert "| linear regression: cudagraph >= 4x eager | 0.3166 s / 0.1 s = 3.17x | FAILS |" in out


def gpu_check(tmp_path: Path, run_path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GPU_CHECK_RUN": run_path, "OUT": str(tmp_path / "out")}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(["bash", str(ROOT / ".ci" / "gpu-check")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def agreeing(run: dict) -> dict:
    """The H200 run as a complete run whose medians agree with their events would look."""
    run = converged(copy.deepcopy(run))
    run["devicebench"]["interrupted"] = False
    for b in run["benchmarks"]:
        if "cuda_event_median_s" in b["extra_info"]:
            b["extra_info"]["cuda_event_median_s"] = b["stats"]["median"]
    return run


def test_gpu_check_passes_a_run_where_everything_holds(tmp_path):
    proc = gpu_check(tmp_path, edited(tmp_path, agreeing(h200())))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gpu-check: every check held" in proc.stdout


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("as stored", "check-timing: medians disagree with CUDA events"),
        ("interrupted", "the run was interrupted or has failed benchmarks"),
        ("missing", "check-targets: a target fails or cannot be computed"),
        ("slower", "check-targets: a target fails or cannot be computed"),
    ],
)
def test_gpu_check_fails_when_a_check_fails(tmp_path, damage, problem):
    run = h200() if damage == "as stored" else agreeing(h200())
    if damage == "interrupted":
        run["devicebench"]["interrupted"] = True
    elif damage == "missing":
        run["benchmarks"] = [b for b in run["benchmarks"] if b["name"] != "test_ceiling[cuda:0-matmul-fp32]"]
    elif damage == "slower":
        bench(run, "test_cnn[cuda:0-resident]")["stats"]["median"] = 2.0  # slower than loader
    proc = gpu_check(tmp_path, str(H200_RUN) if damage == "as stored" else edited(tmp_path, run))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"gpu-check: {problem}" in proc.stderr


@pytest.mark.parametrize("recompiles", [0, 2])
def test_gpu_check_fails_a_compiled_variant_that_recompiled_while_timed(tmp_path, recompiles):
    run = agreeing(h200())
    compiled = copy.deepcopy(bench(run, "test_linear_regression[cuda:0-eager]"))
    compiled["name"] = "test_linear_regression[cuda:0-compile]"
    compiled["fullname"] = compiled["fullname"].replace("cuda:0-eager", "cuda:0-compile")
    compiled["extra_info"].update(variant="compile", compile_mode="default", eager_reference="eager", compile_s=12.5, recompiles_in_rounds=recompiles)
    run["benchmarks"].append(compiled)
    proc = gpu_check(tmp_path, edited(tmp_path, run))
    if recompiles:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "gpu-check: compiled variants on cuda:0: test_linear_regression[cuda:0-compile] recompiled 2x inside its timed rounds" in proc.stderr
    else:  # a stored run made before the other compiled variants existed is not held to them
        assert proc.returncode == 0, proc.stdout + proc.stderr
