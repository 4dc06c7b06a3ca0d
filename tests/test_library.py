"""The library's pure parts: device ids, fingerprints, precision settings, the training guard."""

import math

import pytest
import torch

from devicebench import plugin
from devicebench.measure import config, devices, precision
from devicebench.reading import host, kinds
from devicebench.workloads import linreg


def test_device_list_is_checked():
    assert kinds.parse_device_list("cpu, dp,cpu") == ("cpu", "dp")
    with pytest.raises(ValueError, match="valid devices: cpu, cuda:0, dp, ddp:cpu, ddp:cuda, mps"):
        kinds.parse_device_list("cpu,cuda:1")


def test_device_params_mark_gpus_and_give_skip_reasons(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    params = {p.id: p for p in plugin.device_params(("cpu", "dp"))}
    assert list(params) == ["cpu", "cuda:0", "dp", "ddp:cpu", "ddp:cuda", "mps"]
    marks = {pid: {m.name: m for m in p.marks} for pid, p in params.items()}
    assert "gpu" not in marks["cpu"] and "skip" not in marks["cpu"]
    assert marks["cuda:0"]["skip"].kwargs["reason"] == "not selected by --bench-devices=cpu,dp"
    assert marks["dp"]["skip"].kwargs["reason"] == "CUDA not available"
    assert "gpu" in marks["cuda:0"] and "gpu" in marks["dp"]


def test_with_n_gpus_dp_and_ddp_get_a_ladder_of_1_to_n_gpus(monkeypatch):
    """The multi-GPU collection, as far as a machine without N GPUs can check it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    params = {p.id: {m.name: m for m in p.marks} for p in plugin.device_params(devices.DEVICE_IDS, gpu_count=3)}
    assert list(params) == ["cpu", "cuda:0", "dp:1", "dp:2", "dp", "ddp:cpu", "ddp:cuda:1", "ddp:cuda:2", "ddp:cuda", "mps"]
    multi = {pid for pid, marks in params.items() if "multi_gpu" in marks}
    assert multi == {"dp:2", "dp", "ddp:cuda:2", "ddp:cuda"}
    assert all("gpu" in params[pid] for pid in ("cuda:0", "dp:1", "dp", "ddp:cuda:1", "ddp:cuda"))
    # "dp" selects its ladder; a rung can be selected alone; the CPU-only machine skips them all.
    assert devices.is_selected("dp:2", ("dp",)) and not devices.is_selected("dp:2", ("ddp:cuda",))
    assert devices.is_selected("ddp:cuda:2", ("ddp:cuda",)) and not devices.is_selected("ddp:cpu", ("dp",))
    assert params["dp:2"]["skip"].kwargs["reason"] == "CUDA not available"
    one_gpu = [p.id for p in plugin.device_params(("dp:4",), gpu_count=1)]
    assert one_gpu == ["cpu", "cuda:0", "dp:4", "dp", "ddp:cpu", "ddp:cuda", "mps"]  # asked for by name: kept, as a skip


def test_ladder_ids_are_parsed_and_counted():
    assert kinds.parse_device_list("dp:2,ddp:cuda:4") == ("dp:2", "ddp:cuda:4")
    for bad in ("dp:0", "dp:x", "ddp:cpu:2", "cuda:1"):
        with pytest.raises(ValueError, match="dp:K, ddp:cuda:K"):
            kinds.parse_device_list(bad)
    assert [devices.gpus_used(d) for d in ("cpu", "ddp:cpu", "cuda:0", "dp:3", "ddp:cuda:2")] == [0, 0, 1, 3, 2]


def test_one_replica_dataparallel_says_so():
    dp = devices.BenchDevice(id="dp", torch_device=torch.device("cpu"), replicas=1)
    info = {k: v for k, v in dp.describe().items()}
    assert info["dp_replicas"] == 1 and "one-replica" in info["dp_note"]


def test_fingerprint_names_hardware_only():
    one = host.fingerprint("AMD EPYC 9454 48-Core Processor", 16, ["NVIDIA H100 80GB HBM3"])
    two = host.fingerprint("AMD EPYC 9454 48-Core Processor", 16, ["NVIDIA H100 80GB HBM3"] * 2)
    assert one["id"] != two["id"] and one["gpu_count"] == 1
    assert one["slug"].startswith("amd-epyc-9454-48-core-16t-nvidia-h100-80gb-hbm3-x1-")
    assert host.fingerprint("AMD EPYC", 2, [])["slug"].startswith("amd-epyc-2t-")
    # A torchrun job over two machines is other hardware than one of them; one machine's id is unchanged.
    two_nodes = host.fingerprint("AMD EPYC 9454 48-Core Processor", 16, ["NVIDIA H100 80GB HBM3"], nodes=2)
    assert two_nodes["id"] != one["id"] and two_nodes["nodes"] == 2 and "-x1-2-nodes-" in two_nodes["slug"]
    assert host.fingerprint("AMD EPYC 9454 48-Core Processor", 16, ["NVIDIA H100 80GB HBM3"], nodes=1) == one


def test_precision_is_set_and_restored():
    before = precision.current()
    with precision.settings(precision.TF32) as in_force:
        assert in_force["float32_matmul_precision"] == "high"
        assert in_force["cudnn_allow_tf32"] is True and in_force["cudnn_benchmark"] is False
    with precision.settings(precision.STRICT_FP32) as in_force:
        assert in_force["float32_matmul_precision"] == "highest" and in_force["cudnn_allow_tf32"] is False
    assert precision.current() == before


def test_sizes_are_checked():
    from devicebench.workloads import matmul

    assert config.get_size("seed").rounds == config.SEED_ROUNDS
    assert matmul.WORKLOAD.size("seed") == matmul.MatmulSize(10_000, 200, 10_000)
    assert linreg.WORKLOAD.size("seed").steps == linreg.WORKLOAD.size("smoke").steps == 500
    with pytest.raises(ValueError, match="valid sizes: smoke, seed"):
        config.get_size("big")


def test_linreg_guard():
    size = linreg.WORKLOAD.size("smoke")
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
    trainer = linreg.Trainer(devices.open_device("cpu"), variant, linreg.WORKLOAD.size("smoke"))
    trainer.reset()
    first = trainer.run().item()
    trainer.reset()
    second = trainer.run().item()
    assert first == second
    linreg.check(linreg.WORKLOAD.size("smoke"), second, *trainer.learned())


def test_a_generic_cpu_name_gains_its_generation_and_a_named_one_keeps_its_fingerprint():
    named = host.fingerprint("AMD EPYC 9454 48-Core Processor", 16, [], detail="family 25 model 17 stepping 1")
    assert named == host.fingerprint("AMD EPYC 9454 48-Core Processor", 16, [])  # unchanged ids for named CPUs
    generic = host.fingerprint("Intel(R) Xeon(R) Processor", 16, ["NVIDIA H200"], detail="family 6 model 143 stepping 8; amx_tile")
    other = host.fingerprint("Intel(R) Xeon(R) Processor", 16, ["NVIDIA H200"], detail="family 6 model 106 stepping 6")
    assert generic["id"] != other["id"] and generic["slug"].startswith("intel-xeon-f6m143-16t-nvidia-h200-x1-")
    # Without a detail (a machine with no /proc/cpuinfo) it is the old fingerprint.
    assert host.fingerprint("AMD EPYC", 2, [])["slug"] == "amd-epyc-2t-540f5fe3"
    for name, is_named in [
        ("AMD EPYC", False),
        ("Intel(R) Xeon(R) Processor", False),
        ("QEMU Virtual CPU version 2.5+", False),
        ("Intel Xeon Processor (Icelake)", False),
        ("AMD EPYC 9454 48-Core Processor", True),
        ("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", True),
    ]:
        assert host.cpu_is_named(name) is is_named, name


def test_cpu_detail_reads_cpuinfo_and_caches(tmp_path):
    cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\nstepping\t: 8\nflags\t\t: fpu avx2 avx512f amx_tile amx_bf16\n\nprocessor\t: 1\n"
    for index, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", "2048K"), ("3", "Unified", "107520K")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(value + "\n")
    detail = host.cpu_detail(cpuinfo, cache_root=tmp_path)
    assert detail == "family 6 model 143 stepping 8; avx2 avx512f amx_bf16 amx_tile; L2 2048K, L3 107520K"
