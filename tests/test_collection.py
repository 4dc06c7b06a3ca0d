"""What ``pytest benches`` collects: one parametrized function per workload, readable ids, marks."""

import re

import torch

from devicebench import devices

from .conftest import run_benches

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
    # cpu, cuda:0, dp, ddp:cpu and ddp:cuda (and the dp:K, ddp:cuda:K ladders of a machine
    # with several GPUs) for every variant of every workload, and the data pipeline's 4
    # worker counts x 2 memory kinds: nothing is left out silently.
    assert len(devices.all_ids()) == 5 + 2 * max(0, torch.cuda.device_count() - 1)
    assert len(ids) == len(devices.all_ids()) * (3 + 3 + 4 + 4 + 4) + 4 * 2


def test_gpu_params_carry_the_gpu_marker(tmp_path):
    gpu = collected(run_benches("--collect-only", "-q", "-m", "gpu", storage=tmp_path))
    not_gpu = collected(run_benches("--collect-only", "-q", "-m", "not gpu", storage=tmp_path))
    assert gpu and all(re.search(r"\[(cuda:0|dp(:\d+)?|ddp:cuda(:\d+)?)-", nodeid) for nodeid in gpu)
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
