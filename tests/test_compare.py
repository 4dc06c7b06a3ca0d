"""``devicebench compare`` on golden runs made by the real suite (``tests/data/make-golden``)."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from devicebench import cli, compare
from devicebench.runs import load_run

RUNS = Path(__file__).parent / "data" / "runs"


def golden(name: str) -> Path:
    return RUNS / f"{name}.json"


def run_cli(*args: str, capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(list(args))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, name: str, run: dict) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(run))
    return str(path)


def verdicts(base: str, cand: str, **settings) -> dict[str, compare.TimeVerdict]:
    result = compare.compare_runs(load_run(golden(base)), load_run(golden(cand)), compare.Settings(**settings))
    return {v.name: v for v in result.verdicts}


def test_an_unchanged_rerun_within_the_threshold_is_not_a_regression(capsys):
    code, out, _ = run_cli("compare", str(golden("seed-a")), str(golden("seed-b")), capsys=capsys)
    assert code == 0, out
    assert "no regression" in out
    assert all(v.status == "unchanged" for v in verdicts("seed-a", "seed-b").values())


def test_a_slowed_matmul_is_a_regression(capsys):
    code, out, _ = run_cli("compare", str(golden("seed-b")), str(golden("seed-slow")), capsys=capsys)
    assert code == 1
    assert "test_matmul[cpu-fp32] (slower)" in out.splitlines()[-1]
    matmul = verdicts("seed-b", "seed-slow")["test_matmul[cpu-fp32]"]
    assert matmul.method == "mann-whitney" and matmul.p_value < 0.01 and matmul.ratio > 1.2
    # Significant but smaller than the threshold: unchanged.
    assert verdicts("seed-a", "seed-b")["test_ceiling[cpu-copy]"].p_value < 0.01


def test_the_threshold_is_a_real_size():
    # The same evidence, asked for a 50% change, is no regression.
    assert verdicts("seed-b", "seed-slow", threshold=0.5)["test_matmul[cpu-fp32]"].status == "unchanged"


def test_too_few_rounds_fall_back_to_iqrs():
    cnn = verdicts("base", "rerun")["test_cnn[cpu-loader]"]
    assert cnn.method == "iqr" and "3 vs 3 rounds cannot reach p < 0.01" in cnn.note


def test_removed_and_added_benchmarks_are_listed_not_regressions():
    removed = verdicts("base", "only-matmul")
    assert removed["test_linear_regression[cpu-eager]"].status == "removed"
    assert removed["test_matmul[cpu-fp32]"].status in ("unchanged", "faster", "slower")
    added = verdicts("only-matmul", "base")
    assert added["test_cnn[cpu-resident]"].status == "added"
    assert not any(v.is_regression for v in removed.values() if v.status == "removed")


def test_a_skipped_benchmark_is_not_comparable_with_its_reason():
    result = verdicts("base", "dp-only")
    skipped = result["test_matmul[cpu-fp32]"]
    assert skipped.status == "not comparable"
    assert skipped.note == "candidate skipped it: not selected by --bench-devices=dp"
    assert result["test_cnn[cpu-loader]"].status == "removed"  # deselected by -k: no recorded reason


def test_no_raw_times_fall_back_to_medians_and_iqrs(tmp_path, capsys):
    runs = []
    for name in ("seed-b", "seed-slow"):
        run = load_run(golden(name))
        for bench in run["benchmarks"]:
            bench["stats"].pop("data")
        runs.append(write(tmp_path, name, run))
    code, out, _ = run_cli("compare", *runs, capsys=capsys)
    assert "note: no raw round times: IQRs must not overlap" in out
    assert "test_matmul[cpu-fp32]" in out and code in (0, 1)


def test_what_was_learned_and_used_is_compared(tmp_path, capsys):
    base = load_run(golden("base"))
    worse = copy.deepcopy(base)
    for bench in worse["benchmarks"]:
        info = bench["extra_info"]
        if info["workload"] == "cnn":
            info["val_accuracy"] -= 0.05
        if info["workload"] == "linear_regression":
            info["final_loss"] *= 1.5
    code, out, _ = run_cli("compare", write(tmp_path, "base", base), write(tmp_path, "worse", worse), capsys=capsys)
    assert code == 1
    assert "What the benchmarks learned and used" in out
    assert "test_cnn[cpu-loader] (val_accuracy)" in out and "test_linear_regression[cpu-eager] (final_loss)" in out


def test_peak_memory_growth_is_a_regression():
    base = load_run(golden("base"))
    grown = copy.deepcopy(base)
    base["benchmarks"][0]["extra_info"]["peak_memory_bytes"] = 1_000_000
    grown["benchmarks"][0]["extra_info"]["peak_memory_bytes"] = 1_200_000
    result = compare.compare_runs(base, grown)
    assert [(q.name, q.metric) for q in result.quality] == [(base["benchmarks"][0]["name"], "peak_memory_bytes")]


def test_different_hardware_is_refused_unless_allowed(tmp_path, capsys):
    other = load_run(golden("seed-b"))
    other["machine_info"]["devicebench"]["fingerprint"]["cpu_threads"] = 64
    other["machine_info"]["devicebench"]["fingerprint"]["gpu_models"] = ["NVIDIA H100 80GB HBM3"]
    path = write(tmp_path, "other", other)
    code, _, err = run_cli("compare", str(golden("seed-a")), path, capsys=capsys)
    assert code == 2 and err.count("\n") == 1
    assert "different machines" in err and "cpu_threads: 2 vs 64" in err and "gpu_models" in err
    code, out, _ = run_cli("compare", str(golden("seed-a")), path, "--allow-mismatch", capsys=capsys)
    assert code == 0 and "Different hardware (compared anyway): cpu_threads 2 -> 64" in out


def test_a_job_over_several_machines_is_other_hardware():
    base, two_nodes = load_run(golden("seed-a")), load_run(golden("seed-b"))
    assert compare.hardware_diff(base, two_nodes) == []
    two_nodes["machine_info"]["devicebench"]["fingerprint"]["nodes"] = 2
    assert compare.hardware_diff(base, two_nodes) == [("nodes", 1, 2)]


def test_changed_software_is_printed_first(tmp_path, capsys):
    newer = load_run(golden("rerun"))
    newer["machine_info"]["devicebench"]["torch"] = "9.9.9"
    code, out, _ = run_cli("compare", str(golden("base")), write(tmp_path, "newer", newer), capsys=capsys)
    lines = out.splitlines()
    assert lines[2].startswith("What changed between the runs: torch ") and lines[2].endswith("-> 9.9.9")


def test_plain_pytest_benchmark_runs_compare_with_a_warning(capsys):
    code, out, _ = run_cli("compare", str(golden("plain-a")), str(golden("plain-b")), capsys=capsys)
    assert code in (0, 1)
    assert "warning: the baseline has no devicebench machine block" in out
    assert "test_sum" in out


@pytest.mark.parametrize("fmt", ["markdown", "json"])
def test_formats(fmt, capsys):
    code, out, _ = run_cli("compare", str(golden("seed-b")), str(golden("seed-slow")), "--format", fmt, capsys=capsys)
    assert code == 1
    if fmt == "json":
        data = json.loads(out)
        assert "test_matmul[cpu-fp32] (slower)" in data["regressions"]
        assert {b["status"] for b in data["benchmarks"]} >= {"slower"}
    else:
        assert out.startswith("## devicebench compare") and "| `test_matmul[cpu-fp32]` |" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json", "other.json"], "missing.json: no such file, and not a run id"),
        (["0042", "latest"], "0042: no stored runs under"),
        (["--threshold", "-1", "a", "b"], "argument --threshold: -1 is not between 0 and 10"),
        (["--alpha", "x", "a", "b"], "argument --alpha: 'x' is not a number"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    code, _, err = run_cli("compare", "--results", str(tmp_path), *args, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and message in err


def test_bad_files_are_named(tmp_path, capsys):
    truncated = tmp_path / "truncated.json"
    truncated.write_text(golden("base").read_text()[:500])
    code, _, err = run_cli("compare", str(golden("base")), str(truncated), capsys=capsys)
    assert code == 2 and f"{truncated}: not valid JSON" in err


def test_run_ids_resolve_in_the_results_folder(tmp_path, capsys):
    machine = tmp_path / "some-machine" / "Linux-CPython-3.11-64bit"
    machine.mkdir(parents=True)
    (machine / "0001_abc_20260101_000000.json").write_text(golden("seed-b").read_text())
    (machine / "0002_def_20260102_000000.json").write_text(golden("seed-slow").read_text())
    code, out, _ = run_cli("compare", "--results", str(tmp_path), "1", "latest", capsys=capsys)
    assert code == 1 and "0001_abc" in out and "0002_def" in out
    code, _, err = run_cli("compare", "--results", str(tmp_path), "3", "latest", capsys=capsys)
    assert code == 2 and "3: no run 0003 under" in err


def test_pytest_benchmark_still_reads_every_stored_run():
    files = sorted(Path(__file__).parents[1].glob("results/*/*/*.json")) + sorted(RUNS.glob("*.json"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", *map(str, files)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "Failed to load" not in proc.stderr + proc.stdout
    assert "test_matmul[cpu-fp32]" in proc.stdout


def test_several_runs_a_side_are_merged_and_tested_over_their_medians(capsys):
    merged = compare.merge_runs([load_run(golden("seed-a")), load_run(golden("seed-b"))])
    assert merged["merged_runs"] == 2
    matmul = next(b for b in merged["benchmarks"] if b["name"] == "test_matmul[cpu-fp32]")
    medians = [next(b for b in load_run(golden(n))["benchmarks"] if b["name"] == "test_matmul[cpu-fp32]")["stats"]["median"] for n in ("seed-a", "seed-b")]
    assert matmul["run_medians"] == medians and matmul["stats"]["median"] == sum(medians) / 2
    assert len(matmul["stats"]["data"]) == matmul["stats"]["rounds"]

    code, out, _ = run_cli("compare", f"{golden('seed-a')},{golden('seed-b')}", f"{golden('seed-slow')},{golden('seed-slow')}", capsys=capsys)
    assert code == 1 and out.startswith("devicebench compare: 2 runs (seed, seed) -> 2 runs (seed, seed)")
    assert "note: 2 vs 2 runs cannot reach p < 0.01: every run must be on one side" in out
    verdict = next(line for line in out.splitlines() if line.startswith("test_matmul[cpu-fp32]"))
    assert "runs" in verdict and "SLOWER" in verdict


def test_runs_of_different_machines_are_not_merged(tmp_path, capsys):
    other = load_run(golden("seed-b"))
    other["machine_info"]["devicebench"]["fingerprint"]["cpu_model"] = "Another CPU"
    code, _, err = run_cli("compare", f"{golden('seed-a')},{write(tmp_path, 'other', other)}", str(golden("seed-slow")), capsys=capsys)
    assert code == 2 and "runs of different machines cannot be merged: cpu_model" in err


def interleaved(side: str) -> str:
    return ",".join(str(p) for p in sorted((RUNS / "interleaved" / side).glob("*.json")))


def test_interleaved_runs_gate_without_false_alarms(capsys):
    """7 unchanged runs a side, interleaved on the noisy 2-core machine: no regression either way."""
    for base, cand in (("A", "B"), ("B", "A")):
        code, out, _ = run_cli("compare", interleaved(base), interleaved(cand), capsys=capsys)
        assert code == 0, out
        assert out.startswith("devicebench compare: 7 runs")


def test_interleaved_runs_catch_the_slowed_matmul_and_nothing_else(capsys):
    code, out, _ = run_cli("compare", interleaved("A"), interleaved("S"), "--format", "json", capsys=capsys)
    assert code == 1
    data = json.loads(out)
    assert data["regressions"] == ["test_matmul[cpu-fp32] (slower)"]
    [matmul] = [b for b in data["benchmarks"] if b["name"] == "test_matmul[cpu-fp32]"]
    assert matmul["method"] == "mann-whitney over runs" and matmul["p_value"] < 0.001 and matmul["ratio"] > 1.2


def test_single_runs_of_the_same_data_would_cry_wolf():
    """Why the gate merges runs: the unchanged pairs, one run against one, do flag regressions."""
    pairs = zip(interleaved("A").split(","), interleaved("B").split(","))
    flagged = [compare.compare_runs(load_run(a), load_run(b)).regressions for a, b in pairs]
    assert sum(1 for regressions in flagged if regressions) >= 2


def test_runs_of_different_sizes_are_not_comparable():
    seed, smoke = load_run(golden("seed-a")), load_run(golden("base"))
    result = {v.name: v for v in compare.compare_runs(smoke, seed).verdicts}
    assert result["test_matmul[cpu-fp32]"].status == "not comparable"
    assert result["test_matmul[cpu-fp32]"].note == "sizes differ: smoke vs seed"


def test_a_ddp_benchmark_on_another_world_size_is_not_comparable(smoke_run):
    """torchrun gives ddp:cpu the launcher's world size: 2 ranks and 4 ranks are different work."""
    base = load_run(smoke_run.run_files()[0])
    cand = copy.deepcopy(base)
    for bench in cand["benchmarks"]:
        if bench["name"] == "test_cnn[ddp:cpu-resident]":
            bench["extra_info"]["world_size"] = 4
    result = {v.name: v for v in compare.compare_runs(base, cand).verdicts}
    assert result["test_cnn[ddp:cpu-resident]"].status == "not comparable"
    assert result["test_cnn[ddp:cpu-resident]"].note == "world sizes differ: 2 vs 4"
    assert result["test_cnn[ddp:cpu-loader]"].status != "not comparable"


RESULTS = Path(__file__).parents[1] / "results"
H200_RUN = RESULTS / "intel-xeon-16t-nvidia-h200-x1-6fb4e97f" / "Linux-CPython-3.12-64bit" / "0001_51ce617.json"


def test_accuracy_is_not_judged_between_models_trained_for_other_epochs(capsys):
    """The H200 run's cpu-resident trained 9 epochs (rounds then followed speed); the 2-core runs train 4."""
    [cpu_run] = RESULTS.glob("amd-epyc-2t-540f5fe3/*/0006_*.json")
    result = compare.compare_runs(load_run(cpu_run), load_run(H200_RUN))
    assert dict(result.quality_not_comparable)["test_cnn[cpu-resident]"] == "epochs 4 vs 9"
    assert not [q for q in result.quality if q.name == "test_cnn[cpu-resident]"]
    code, out, _ = run_cli("compare", str(cpu_run), str(H200_RUN), "--allow-mismatch", capsys=capsys)
    assert "Accuracy, loss and memory not compared (not like for like)" in out and "epochs 4 vs 9" in out


def test_accuracy_is_not_judged_across_data_sets_or_batches(tmp_path):
    base = load_run(golden("base"))
    other = copy.deepcopy(base)
    for bench in other["benchmarks"]:
        info = bench["extra_info"]
        if info["workload"] == "cnn":
            info["val_accuracy"] -= 0.2  # would be a regression, were it the same training
            info["dataset"] = "MNIST" if info["variant"] == "loader" else info["dataset"]
            info["batch_size"] = 256 if info["variant"] == "resident" else info["batch_size"]
    result = compare.compare_runs(base, other)
    verdicts = {v.name: v for v in result.verdicts}
    # Other data or another batch is other work: neither its time nor what it learned is compared.
    assert verdicts["test_cnn[cpu-loader]"].status == "not comparable"
    assert verdicts["test_cnn[cpu-loader]"].note.startswith("the work differs: dataset ")
    assert verdicts["test_cnn[cpu-resident]"].note == "the work differs: global batch 128 vs 256"
    assert not result.quality and not result.regressions


def test_a_changed_environment_is_not_the_changes_regression(tmp_path, capsys):
    slow = load_run(golden("seed-slow"))
    slow["machine_info"]["devicebench"]["torch"] = "9.9.9"
    path = write(tmp_path, "newer-torch", slow)
    code, out, err = run_cli("compare", str(golden("seed-b")), path, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "not comparable: the environment changed" in err
    assert "The environment changed: what is slower or worse below is not counted" in out
    assert "slower (environment changed)" in out and "--allow-env-change counts them" in out
    code, out, _ = run_cli("compare", str(golden("seed-b")), path, "--allow-env-change", capsys=capsys)
    assert code == 1 and "test_matmul[cpu-fp32] (slower)" in out.splitlines()[-1]
    # A changed environment with nothing slower is no regression and says what changed.
    code, out, _ = run_cli("compare", str(golden("seed-a")), write(tmp_path, "b", {**load_run(golden("seed-b")), "machine_info": slow["machine_info"]}), capsys=capsys)
    assert code == 0 and "What changed between the runs: torch" in out


def test_a_generic_cpu_name_compares_with_its_generation(tmp_path, capsys):
    base, cand = load_run(golden("seed-a")), load_run(golden("seed-b"))
    genoa = "family 25 model 17 stepping 1; avx2 avx512f; L2 1024K, L3 32768K"
    milan = "family 25 model 1 stepping 1; avx2; L2 512K, L3 32768K"
    for run, detail in ((base, genoa), (cand, milan)):
        run["machine_info"]["devicebench"]["fingerprint"]["cpu_detail"] = detail
    assert compare.hardware_diff(base, cand) == [("cpu_detail", genoa, milan)]
    # A run stored before the detail existed is unknown, not different: compared, with a warning.
    del base["machine_info"]["devicebench"]["fingerprint"]["cpu_detail"]
    result = compare.compare_runs(base, cand)
    assert result.hardware_diff == []
    assert any("does not record which CPU generation" in w for w in result.warnings)
