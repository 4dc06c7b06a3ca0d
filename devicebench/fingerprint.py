"""What a machine is and what software it runs: the context every number carries.

:func:`machine_info` is the ``devicebench`` block that pytest-benchmark's
``machine_info`` gains; its ``fingerprint`` names the hardware only (CPU model and threads,
GPU models and count), which is what comparisons key on. Software (torch, CUDA, driver) is
recorded beside it, since a change there is what a comparison should report, not refuse.
"""

from __future__ import annotations

import hashlib
import platform
import re
from pathlib import Path

import torch

from . import backends, env, precision, sensors
from .env import cpu_threads

FORMAT_VERSION = 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


# Names a hypervisor gives every CPU generation alike ("Intel(R) Xeon(R) Processor",
# "AMD EPYC", "QEMU Virtual CPU version 2.5+", "Common KVM processor"): no model number.
_GENERIC_CPU = re.compile(r"qemu|kvm|virtual", re.IGNORECASE)
# Instruction-set flags that change how fast torch's CPU kernels run.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_bf16", "amx_tile", "sve", "asimd")


def cpu_is_named(name: str) -> bool:
    """Whether a CPU's name tells its generation apart: it carries a model number, and no hypervisor's word."""
    bare = re.sub(r"\((r|tm)\)|@\s*[\d.]+\s*ghz", " ", name, flags=re.IGNORECASE)
    return bool(re.search(r"\d", bare)) and not _GENERIC_CPU.search(name)


def cpu_detail(cpuinfo: str | None = None, cache_root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> str | None:
    """Family, model and stepping, the flags in :data:`CPU_FLAGS`, and cache sizes: what tells
    CPUs apart when their name does not (``family 25 model 17 stepping 1; avx2 avx512f ...; L2 1024K, L3 32768K``)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
        elif not line.strip() and fields:
            break  # the first processor's block is enough
    ids = " ".join(f"{label} {fields[key]}" for key, label in (("cpu family", "family"), ("model", "model"), ("stepping", "stepping")) if key in fields)
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    caches = []
    for index in sorted(cache_root.glob("index*")) if cache_root.is_dir() else []:
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        if kind != "Instruction" and level in ("2", "3"):
            caches.append(f"L{level} {size}")
    parts = [ids, " ".join(f for f in CPU_FLAGS if f in flags), ", ".join(caches)]
    text = "; ".join(p for p in parts if p)
    return text or None


def nvidia_driver_version() -> str | None:
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", text)
    return match.group(1) if match else text.splitlines()[0].strip()


def gpus() -> list[dict]:
    """Every accelerator of this machine, as its backend describes it."""
    return [gpu for backend in backends.accelerators() if backend.unavailable() is None for gpu in backend.describe()]


def fingerprint(cpu: str, threads: int, gpu_names: list[str], nodes: int = 1, detail: str | None = None) -> dict:
    """The hardware a run's figures belong to; ``nodes`` > 1 for a torchrun job over several machines (rank 0's is described).

    ``detail`` (:func:`cpu_detail`) is part of it only where the CPU's name does not tell its
    generation apart: a properly named CPU keeps the fingerprint it always had.
    """
    hardware = {"cpu_model": cpu, "cpu_threads": threads, "gpu_models": sorted(gpu_names), "gpu_count": len(gpu_names)}
    if nodes > 1:  # absent for one machine, so that single-machine fingerprints stay as they were
        hardware["nodes"] = nodes
    if detail and not cpu_is_named(cpu):
        hardware["cpu_detail"] = detail
    digest = hashlib.sha256(repr(sorted(hardware.items())).encode()).hexdigest()[:10]
    return {**hardware, "id": digest, "slug": slug(hardware, digest)}


def slug(hardware: dict, digest: str) -> str:
    """A folder name a person can read: ``amd-epyc-2t-3f9c1a2b7d`` or ``...-nvidia-h100-80gb-hbm3-x1-...``."""
    parts = [hardware["cpu_model"]]
    family_model = re.match(r"family (\d+) model (\d+)", hardware.get("cpu_detail", ""))
    if family_model:  # a generic name: say which generation
        parts.append(f"f{family_model.group(1)}m{family_model.group(2)}")
    parts.append(f"{hardware['cpu_threads']}t")
    if hardware["gpu_count"]:
        parts += [hardware["gpu_models"][0], f"x{hardware['gpu_count']}"]
    if hardware.get("nodes", 1) > 1:
        parts.append(f"{hardware['nodes']} nodes")
    text = re.sub(r"\((r|tm)\)|\bcpu\b|@.*?ghz|\bprocessor\b", " ", " ".join(parts).lower())
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return f"{text[:60].rstrip('-')}-{digest[:8]}"


def machine_info() -> dict:
    """The ``devicebench`` block of a run's ``machine_info``."""
    cpu, threads, found = cpu_model(), cpu_threads(), gpus()
    launch = env.current()
    nodes = launch.nodes if launch is not None else 1
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    try:
        import torchvision

        torchvision_version = torchvision.__version__
    except Exception:  # torchvision is optional for the workloads that do not need images
        torchvision_version = None
    return {
        "format_version": FORMAT_VERSION,
        "torch": torch.__version__,
        "torchvision": torchvision_version,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "nvidia_driver": nvidia_driver_version(),
        "python": platform.python_version(),
        "cuda_available": backends.BACKENDS["cuda"].unavailable() is None,
        "gpu_count": len(found),
        "gpus": found,
        "cpu_model": cpu,
        "cpu_threads": threads,
        "torch_threads": torch.get_num_threads(),
        "precision": precision.current(),
        "cpu_detail": cpu_detail(),
        "fingerprint": fingerprint(cpu, threads, [g["name"] for g in found], nodes, cpu_detail()),
        # Persistence mode, power limit, application clocks and other processes, where NVML answers.
        "gpu_state": sensors.gpu_state() if backends.BACKENDS["cuda"].unavailable() is None else "not recorded: no CUDA GPU",
    }
