"""The library's pure parts: device ids, fingerprints, precision settings, the training guard."""

import math

import pytest
import torch

from devicebench import config, devices, fingerprint, precision
from devicebench.workloads import linreg


def test_device_list_is_checked():
    assert devices.parse_device_list("cpu, dp,cpu") == ("cpu", "dp")
    with pytest.raises(ValueError, match="valid devices: cpu, cuda:0, dp, ddp:cpu, ddp:cuda"):
        devices.parse_device_list("cpu,cuda:1")


def test_device_params_mark_gpus_and_give_skip_reasons(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    params = {p.id: p for p in devices.device_params(("cpu", "dp"))}
    assert list(params) == ["cpu", "cuda:0", "dp", "ddp:cpu", "ddp:cuda"]
    marks = {pid: {m.name: m for m in p.marks} for pid, p in params.items()}
    assert "gpu" not in marks["cpu"] and "skip" not in marks["cpu"]
    assert marks["cuda:0"]["skip"].kwargs["reason"] == "not selected by --bench-devices=cpu,dp"
    assert marks["dp"]["skip"].kwargs["reason"] == "CUDA not available"
    assert "gpu" in marks["cuda:0"] and "gpu" in marks["dp"]


def test_one_replica_dataparallel_says_so():
    dp = devices.BenchDevice(id="dp", torch_device=torch.device("cpu"), replicas=1)
    info = {k: v for k, v in dp.describe().items()}
    assert info["dp_replicas"] == 1 and "one-replica" in info["dp_note"]


def test_fingerprint_names_hardware_only():
    one = fingerprint.fingerprint("AMD EPYC 9454 48-Core Processor", 16, ["NVIDIA H100 80GB HBM3"])
    two = fingerprint.fingerprint("AMD EPYC 9454 48-Core Processor", 16, ["NVIDIA H100 80GB HBM3"] * 2)
    assert one["id"] != two["id"] and one["gpu_count"] == 1
    assert one["slug"].startswith("amd-epyc-9454-48-core-16t-nvidia-h100-80gb-hbm3-x1-")
    assert fingerprint.fingerprint("AMD EPYC", 2, [])["slug"].startswith("amd-epyc-2t-")


def test_precision_is_set_and_restored():
    before = precision.current()
    with precision.settings(precision.TF32) as in_force:
        assert in_force["float32_matmul_precision"] == "high"
        assert in_force["cudnn_allow_tf32"] is True and in_force["cudnn_benchmark"] is False
    with precision.settings(precision.STRICT_FP32) as in_force:
        assert in_force["float32_matmul_precision"] == "highest" and in_force["cudnn_allow_tf32"] is False
    assert precision.current() == before


def test_sizes_are_checked():
    assert config.get_size("seed").matmul == config.MatmulSize(10_000, 200, 10_000)
    assert config.get_size("seed").linreg.steps == config.get_size("smoke").linreg.steps == 500
    with pytest.raises(ValueError, match="valid sizes: smoke, seed"):
        config.get_size("big")


def test_linreg_guard():
    size = config.SMOKE.linreg
    linreg.check(size, 4.01, [2.0, -3.0], 10.0)
    for loss, w, b, message in [
        (math.nan, [2.0, -3.0], 10.0, "diverged"),
        (4.0, [2.0, math.inf], 10.0, "diverged"),
        (9.0, [2.0, -3.0], 10.0, "not near the noise variance"),
        (4.0, [1.5, -3.0], 10.0, "learned w"),
        (4.0, [2.0, -3.0], 9.0, "learned w"),
    ]:
        with pytest.raises(AssertionError, match=message):
            linreg.check(size, loss, w, b)


@pytest.mark.parametrize("variant", ["eager", "fused"])
def test_every_round_trains_from_the_same_start(variant):
    trainer = linreg.Trainer(devices.open_device("cpu"), variant, config.SMOKE.linreg)
    trainer.reset()
    first = trainer.run().item()
    trainer.reset()
    second = trainer.run().item()
    assert first == second
    linreg.check(config.SMOKE.linreg, second, *trainer.learned())
