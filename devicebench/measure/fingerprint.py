"""What a machine is and what software it runs: the context every number carries.

:func:`machine_info` is the ``devicebench`` block that pytest-benchmark's
``machine_info`` gains; its ``fingerprint`` names the hardware only (CPU model and threads,
GPU models and count), which is what comparisons key on. Software (torch, CUDA, driver) is
recorded beside it, since a change there is what a comparison should report, not refuse.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

import torch

from devicebench.reading.host import cpu_detail, cpu_model, cpu_threads, fingerprint, process_settings

from . import backends, env, precision, sensors

FORMAT_VERSION = 1


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
        "process_settings": process_settings(),
        "precision": precision.current(),
        "cpu_detail": cpu_detail(),
        "fingerprint": fingerprint(cpu, threads, [g["name"] for g in found], nodes, cpu_detail()),
        # Persistence mode, power limit, application clocks and other processes, where NVML answers.
        "gpu_state": sensors.gpu_state() if backends.BACKENDS["cuda"].unavailable() is None else "not recorded: no CUDA GPU",
    }
