"""A smoke-size run of the real suite: what it runs, skips, and stores."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from devicebench.measure.data import DEBIAN_FASHION_MNIST

from .conftest import run_benches

CPU_BENCHMARKS = {
    "test_matmul[cpu-fp32]",
    "test_linear_regression[cpu-eager]",
    "test_linear_regression[cpu-fused]",
    "test_ceiling[cpu-copy]",
    "test_ceiling[cpu-matmul-fp32]",
    "test_cnn[cpu-loader]",
    "test_cnn[cpu-resident]",
    "test_data_pipeline[workers0-pageable]",
    "test_cnn[ddp:cpu-loader]",
    "test_cnn[ddp:cpu-resident]",
}
THROUGHPUT_UNITS = {"tflops", "gb_per_s", "steps_per_s", "samples_per_s"}


def test_run_passes_and_is_saved_under_the_machine_folder(smoke_run):
    assert smoke_run.ret == 0, smoke_run.output
    [path] = smoke_run.run_files()
    data = json.loads(path.read_text())
    assert path.parent.parent == smoke_run.storage
    assert path.name.startswith("0001_")
    assert data["machine_info"]["devicebench"]["fingerprint"]["slug"]


def test_every_cpu_benchmark_ran(smoke_run):
    names = {b["name"] for b in json.loads(smoke_run.run_files()[0].read_text())["benchmarks"]}
    assert CPU_BENCHMARKS <= names
    for name in CPU_BENCHMARKS:
        assert f"{name} PASSED" in smoke_run.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skips of a machine without CUDA")
def test_without_cuda_every_gpu_benchmark_is_skipped_with_its_reason(smoke_run):
    data = json.loads(smoke_run.run_files()[0].read_text())
    skipped = {s["name"]: s["reason"] for s in data["devicebench"]["skipped"]}
    gpu_names = [line.split("::")[1].split()[0] for line in smoke_run.stdout.splitlines() if ("[cuda:0-" in line or "[dp-" in line) and "::" in line]
    assert gpu_names
    for name in gpu_names:
        assert skipped[name] == "CUDA not available"
    assert "CUDA not available" in smoke_run.stdout.split("short test summary info")[1]
    assert skipped["test_matmul[mps-fp32]"].startswith("MPS not available")
    assert skipped["test_linear_regression[cpu-cudagraph]"] == "cudagraph needs CUDA graphs; cpu has none"
    assert {b["extra_info"]["device"] for b in data["benchmarks"]} == {"cpu", "ddp:cpu"}


def test_machine_info_has_the_devicebench_block(smoke_run):
    info = json.loads(smoke_run.run_files()[0].read_text())["machine_info"]["devicebench"]
    assert info["torch"] == torch.__version__
    for key in ("torchvision", "cuda", "cudnn", "gpu_count", "gpus", "cpu_model", "cpu_threads", "torch_threads"):
        assert key in info
    assert set(info["precision"]) >= {"float32_matmul_precision", "cuda_matmul_allow_tf32", "cudnn_allow_tf32", "cudnn_benchmark"}
    fp = info["fingerprint"]
    assert set(fp) >= {"cpu_model", "cpu_threads", "gpu_models", "gpu_count", "id"}
    assert fp["gpu_count"] == torch.cuda.device_count()


def test_every_result_carries_its_context_and_raw_times(smoke_run):
    data = json.loads(smoke_run.run_files()[0].read_text())
    assert data["devicebench"]["bench_size"] == "smoke"
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        for key in ("device", "workload", "variant", "size", "precision", "cold_start_s", "peak_memory_bytes"):
            assert key in info, (bench["name"], key)
        unit = info["throughput_unit"]
        assert unit in THROUGHPUT_UNITS and info[unit] > 0
        assert len(bench["stats"]["data"]) == bench["stats"]["rounds"] >= 3
        # The cold start is recorded apart; the steady rounds do not contain it.
        assert info["cold_start_s"] > 0


def test_every_key_a_result_stores_is_in_the_schema(smoke_run):
    """Writers are held to one list of stored keys (devicebench.reading.schema.KEYS), with their types."""
    from devicebench.reading import schema

    data = json.loads(smoke_run.run_files()[0].read_text())
    unknown = {b["name"]: schema.unknown_keys(b["extra_info"]) for b in data["benchmarks"]}
    assert {name: keys for name, keys in unknown.items() if keys} == {}


def test_every_stored_run_keeps_to_the_schema():
    """The runs in results/ and the golden runs: every key they store is one the schema lists."""
    from devicebench.reading import schema

    from .conftest import ROOT

    found = {}
    for path in [*ROOT.glob("results/**/*.json"), *ROOT.glob("tests/data/runs/**/*.json")]:
        data = json.loads(path.read_text())
        for bench in data.get("benchmarks", []):
            keys = schema.unknown_keys(bench.get("extra_info") or {})
            if keys:
                found[f"{path.name}::{bench['name']}"] = keys
    assert found == {}


def test_the_docs_reference_of_result_keys_is_made_from_the_schema():
    from devicebench.reading import schema

    from .conftest import ROOT

    page = (ROOT / "docs" / "reference" / "result-keys.md").read_text()
    assert page == schema.reference_markdown(), "regenerate it: see docs/architecture.md, Contributing"


def test_linear_regression_records_what_it_learned(smoke_run):
    data = json.loads(smoke_run.run_files()[0].read_text())
    for bench in data["benchmarks"]:
        if bench["extra_info"]["workload"] == "linear_regression":
            info = bench["extra_info"]
            assert abs(info["final_loss"] - 4.0) < 0.4
            assert info["learned_w"] == pytest.approx([2.0, -3.0], abs=0.05)
            assert info["learned_b"] == pytest.approx(10.0, abs=0.15)
            assert info["dataset"] == "synthetic"


def test_a_second_run_is_numbered_after_the_first_and_overwrites_nothing(tmp_path):
    first = run_benches("-k", "matmul and cpu", storage=tmp_path)
    before = {p: p.read_bytes() for p in first.run_files()}
    second = run_benches("-k", "matmul and cpu", storage=tmp_path)
    assert first.ret == second.ret == 0, second.output
    files = second.run_files()
    assert [p.name[:5] for p in files] == ["0001_", "0002_"]
    assert all(p.read_bytes() == content for p, content in before.items())


def test_cnn_records_where_the_time_goes_and_what_it_learned(smoke_run):
    data = json.loads(smoke_run.run_files()[0].read_text())
    cnn = [b for b in data["benchmarks"] if b["extra_info"]["workload"] == "cnn"]
    assert {b["extra_info"]["variant"] for b in cnn} >= {"loader", "resident"}
    expected_dataset = "FashionMNIST" if DEBIAN_FASHION_MNIST.is_dir() else "synthetic"
    for bench in cnn:
        info = bench["extra_info"]
        assert info["dataset"] == expected_dataset
        assert info["epoch_s"] == bench["stats"]["median"]
        assert info["samples_per_s"] == pytest.approx(info["samples"] / info["epoch_s"])
        assert 0 <= info["data_wait_s"] <= info["epoch_s"] and info["step_s"] == pytest.approx(info["epoch_s"] - info["data_wait_s"])
        assert info["first_batch_s"] > 0 and info["batch_size"] == 128 and info["parameters"] == 53_994
        # one accuracy per epoch: the cold one and each timed round
        assert len(info["accuracy_per_epoch"]) == 1 + bench["stats"]["rounds"]
        assert info["accuracy_per_epoch"][-1] == info["val_accuracy"] > 0.1
        for key in ("final_loss", "val_loss", "target_accuracy", "time_to_accuracy_s", "peak_memory_bytes"):
            assert key in info
    loader = next(b for b in cnn if b["extra_info"]["variant"] == "loader")["extra_info"]
    assert loader["workers"] == min(2, os.cpu_count())


def test_data_pipeline_counts_every_sample(smoke_run):
    data = json.loads(smoke_run.run_files()[0].read_text())
    [bench] = [b for b in data["benchmarks"] if b["name"] == "test_data_pipeline[workers0-pageable]"]
    assert bench["extra_info"]["samples"] == bench["extra_info"]["n_train"] == 512


def test_precision_in_force_is_recorded_per_benchmark(smoke_run):
    data = json.loads(smoke_run.run_files()[0].read_text())
    by_name = {b["name"]: b["extra_info"]["precision"] for b in data["benchmarks"]}
    # The CNN runs as the tutorial did, under PyTorch's defaults (cuDNN TF32 on); the rest is strict fp32.
    assert by_name["test_cnn[cpu-resident]"]["cudnn_allow_tf32"] is True
    assert by_name["test_linear_regression[cpu-eager]"]["float32_matmul_precision"] == "highest"
    assert by_name["test_matmul[cpu-fp32]"]["cudnn_allow_tf32"] is False


def test_a_smoke_run_is_not_stored_unless_asked(tmp_path):
    from .conftest import BENCHES, run_pytest

    run = run_pytest(str(BENCHES), "--benchmark-only", "--bench-size=smoke", "-k", "test_matmul and cpu", storage=tmp_path)
    assert run.ret == 0, run.output
    assert run.run_files() == []


def test_ddp_on_the_cpu_runs_two_gloo_ranks_timed_between_barriers(smoke_run):
    data = json.loads(smoke_run.run_files()[0].read_text())
    ddp = [b for b in data["benchmarks"] if b["extra_info"]["device"] == "ddp:cpu"]
    assert {b["extra_info"]["variant"] for b in ddp} == {"loader", "resident"}
    for bench in ddp:
        info = bench["extra_info"]
        assert info["backend"] == "gloo" and info["world_size"] == 2 and info["threads_per_rank"] >= 1
        assert sum(info["samples_per_rank"]) == info["samples"] == 1024
        assert len(info["per_rank_samples_per_s"]) == 2
        # Rank 0's barrier-to-barrier epoch lies inside the round the parent timed.
        assert len(info["rank0_epoch_s"]) == bench["stats"]["rounds"]
        assert all(0 < r0 <= round_s for r0, round_s in zip(info["rank0_epoch_s"], bench["stats"]["data"]))
        assert info["val_accuracy"] > 0.1


def test_ddp_and_one_process_do_the_same_work(smoke_run):
    """The same global batch and the same loader workers per process, stored with each result."""
    data = json.loads(smoke_run.run_files()[0].read_text())
    by = {b["name"]: b["extra_info"] for b in data["benchmarks"]}
    for variant in ("loader", "resident"):
        one, ddp = by[f"test_cnn[cpu-{variant}]"], by[f"test_cnn[ddp:cpu-{variant}]"]
        assert one["global_batch"] == ddp["global_batch"] == 128
        assert ddp["batch_per_rank"] * ddp["world_size"] == 128
        assert one["workers"] == ddp["workers"] == (min(2, os.cpu_count()) if variant == "loader" else 0)


def test_cnn_variants_train_a_fixed_number_of_epochs_under_the_same_settings(smoke_run):
    data = json.loads(smoke_run.run_files()[0].read_text())
    cnn = [b for b in data["benchmarks"] if b["extra_info"]["workload"] == "cnn"]
    assert {b["extra_info"]["epochs"] for b in cnn} == {4}
    assert all(len(b["extra_info"]["accuracy_per_epoch"]) == 4 and b["stats"]["rounds"] == 3 for b in cnn)
    assert len({json.dumps(b["extra_info"]["precision"], sort_keys=True) for b in cnn}) == 1
    assert all(b["extra_info"]["precision"]["cudnn_benchmark"] is False for b in cnn)


def test_setup_is_recorded_apart_and_counted_in_time_to_accuracy(smoke_run):
    data = json.loads(smoke_run.run_files()[0].read_text())
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if info["workload"] != "cnn":
            continue
        assert info["setup_s"] > 0
        if info["time_to_accuracy_s"] is not None:
            epochs = [info["cold_start_s"], *bench["stats"]["data"]][: info["epochs_to_accuracy"]]
            assert info["time_to_accuracy_s"] == pytest.approx(info["setup_s"] + sum(epochs))


def test_pytest_benchmark_tables_are_one_per_workload_and_every_benchmark_names_its_device(smoke_run):
    data = json.loads(smoke_run.run_files()[0].read_text())
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        assert bench["group"] == info["workload"], bench["name"]
        # The data pipeline runs on the host: its device is a parameter too, its name unchanged.
        assert bench["params"]["device"] == info["device"], bench["name"]
    names = {b["name"] for b in data["benchmarks"]}
    assert "test_data_pipeline[workers0-pageable]" in names
    # pytest-benchmark's own table, as it printed it at the end of the run: one per workload.
    for workload in ("matmul", "linear_regression", "cnn", "ceiling", "data_pipeline"):
        assert re.search(rf"benchmark '{workload}': \d+ tests", smoke_run.stdout), workload


def test_pytest_benchmark_list_and_compare_find_runs_with_the_machine_folder(smoke_run, tmp_path):
    """The manual's recipe (docs/getting-started.md): pytest-benchmark's --storage takes results/<machine> (devicebench info --folder)."""
    [run] = smoke_run.run_files()
    slug = json.loads(run.read_text())["machine_info"]["devicebench"]["fingerprint"]["slug"]
    folder = tmp_path / "results" / slug
    shutil.copytree(smoke_run.storage, folder)
    cli = [sys.executable, "-c", "from pytest_benchmark.cli import main; main()"]
    listed = subprocess.run([*cli, "--storage", str(folder), "list"], capture_output=True, text=True, cwd=tmp_path)
    assert listed.returncode == 0 and run.name in listed.stdout, listed.stdout + listed.stderr
    compared = subprocess.run(
        [*cli, "--storage", str(folder), "compare", "0001", "--group-by", "param:device", "--columns", "median"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert compared.returncode == 0, compared.stderr
    assert "benchmark 'device=cpu'" in compared.stdout and "test_data_pipeline[workers0-pageable]" in compared.stdout
    # One level up (results/), pytest-benchmark finds nothing: the reason the manual names the flag.
    above = subprocess.run([*cli, "--storage", str(tmp_path / "results"), "list"], capture_output=True, text=True, cwd=tmp_path)
    assert run.name not in above.stdout
    folder_line = subprocess.run([sys.executable, "-m", "devicebench", "info", "--folder"], capture_output=True, text=True, cwd=tmp_path)
    assert folder_line.returncode == 0 and folder_line.stdout == f"results/{slug}\n"
