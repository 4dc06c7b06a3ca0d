"""What ``pytest benches`` collects: one parametrized function per workload, readable ids, marks."""

import re

import torch

from devicebench.measure import devices
from devicebench.reading.runs import load_run
from devicebench.reading.schema import RENAMED
from devicebench.workloads import registry

from .conftest import ROOT, run_benches

EXPECTED_IDS = {
    "test_matmul.py::test_matmul": ["cpu-fp32", "cuda:0-fp32", "cuda:0-tf32", "cuda:0-bf16", "dp-fp32", "dp-bf16"],
    "test_linear_regression.py::test_linear_regression": ["cpu-eager", "cpu-fused", "cpu-cudagraph", "cuda:0-cudagraph", "dp-eager"],
    "test_ceilings.py::test_ceiling": ["cpu-copy", "cpu-matmul-fp32", "cuda:0-copy", "cuda:0-matmul-bf16"],
    "test_transfer.py::test_transfer": ["cuda:0-h2d-pinned", "cuda:0-d2h-pageable"],
    "test_cnn.py::test_cnn": ["cpu-loader", "cpu-resident", "cuda:0-bf16", "cuda:0-cudagraph", "dp-loader", "ddp:cpu-resident", "ddp:cuda-loader"],
    "test_cnn.py::test_data_pipeline": ["workers0-pageable", "workers2-pinned", "workers8-pageable"],
}


def collected(run) -> list[str]:
    return [line.strip() for line in run.stdout.splitlines() if "::" in line]


def test_every_workload_is_parametrized_by_device_then_variant(tmp_path):
    run = run_benches("--collect-only", "-q", storage=tmp_path)
    assert run.ret == 0, run.output
    ids = collected(run)
    for function, params in EXPECTED_IDS.items():
        for param in params:
            assert f"benches/{function}[{param}]" in ids
    # Every declared variant of every workload on every device of this machine (cpu, cuda:0,
    # dp, ddp:cpu, ddp:cuda, mps, and the dp:K, ddp:cuda:K ladders of a machine with several
    # GPUs), and the host workloads' variants once: nothing is left out silently.
    expected = sum(len(w.variants) * (1 if w.devices == "host" else len(devices.all_ids())) for w in registry().values())
    assert len(ids) == expected
    assert len(devices.all_ids()) == len(devices.DEVICE_IDS) + 2 * max(0, torch.cuda.device_count() - 1)


def test_every_benchmark_ever_stored_is_still_collected(tmp_path):
    """History stays comparable: each stored run's benchmark names are ids the suite still has."""
    run = run_benches("--collect-only", "-q", storage=tmp_path)
    names = {line.split("::", 1)[1] for line in collected(run)}
    stored = [p for p in (ROOT / "results").rglob("[0-9][0-9][0-9][0-9]_*.json")]
    assert stored
    for path in stored:
        missing = {b["name"] for b in load_run(path)["benchmarks"]} - names
        assert not missing, f"{path.name}: {sorted(missing)}"


def test_every_figure_a_stored_run_has_is_still_recorded(smoke_run):
    """The keys each workload records now include every key the stored runs have (new ones may join)."""
    now: dict[str, set[str]] = {}
    for bench in load_run(smoke_run.run_files()[0])["benchmarks"]:
        now.setdefault(bench["extra_info"]["workload"], set()).update(bench["extra_info"])
    for path in (ROOT / "results").rglob("[0-9][0-9][0-9][0-9]_*.json"):
        for bench in load_run(path)["benchmarks"]:
            info = bench["extra_info"]
            keys = {RENAMED.get(k, k) for k in info}  # a renamed figure is recorded under its new key
            if info["workload"] in now and info["device"] in ("cpu", "ddp:cpu"):  # what a CPU machine records
                assert keys - RUN_ONLY <= now[info["workload"]], (path.name, bench["name"], keys - now[info["workload"]])


# Recorded only where a GPU ran: its name and events, DataParallel's replicas, a one-GPU DDP note.
RUN_ONLY = {"device_name", "cuda_event_median_s", "cuda_event_q1_s", "cuda_event_q3_s", "sync_overhead_max_s", "dp_replicas", "dp_note", "ddp_note"}


def test_gpu_params_carry_the_gpu_marker(tmp_path):
    gpu = collected(run_benches("--collect-only", "-q", "-m", "gpu", storage=tmp_path))
    not_gpu = collected(run_benches("--collect-only", "-q", "-m", "not gpu", storage=tmp_path))
    assert gpu and all(re.search(r"\[(cuda:0|mps|dp(:\d+)?|ddp:cuda(:\d+)?)-", nodeid) for nodeid in gpu)
    assert not_gpu and all(re.search(r"\[(cpu|ddp:cpu|workers\d)-", nodeid) for nodeid in not_gpu)


def test_narrowed_devices_are_skipped_with_the_reason(tmp_path):
    run = run_benches("-k", "test_matmul", "--bench-devices=cpu", "-rs", storage=tmp_path)
    assert run.ret == 0, run.output
    assert "not selected by --bench-devices=cpu" in run.stdout
    skipped = {s["name"]: s["reason"] for s in run.json()["devicebench"]["skipped"]}
    assert skipped["test_matmul[cuda:0-fp32]"] == "not selected by --bench-devices=cpu"
    assert skipped["test_matmul[dp-bf16]"] == "not selected by --bench-devices=cpu"
    assert run.json()["devicebench"]["bench_devices"] == ["cpu"]
    if not torch.cuda.is_available():
        assert [b["name"] for b in run.json()["benchmarks"]] == ["test_matmul[cpu-fp32]"]
