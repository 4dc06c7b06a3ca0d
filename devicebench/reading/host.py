"""This machine's hardware as a run's fingerprint names it, read without torch.

A run is stored under ``results/<slug>/`` of its hardware :func:`fingerprint` (CPU model and
threads, GPU models and count). The reading commands find "this machine's runs" (``latest``,
``3``) without importing torch: the CPU's part is read from ``/proc``, the GPUs' from the
NVIDIA driver (NVML, as ``CUDA_VISIBLE_DEVICES`` narrows them); where a GPU is not NVIDIA's,
or the visible set cannot be read, the stored runs whose CPU matches stand in
(:meth:`Host.matches`). :mod:`devicebench.measure.fingerprint` adds the software and the GPUs as
torch sees them when a run is stored.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path


def cpu_threads() -> int:
    """Hardware threads this process may run on (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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


# What a process's environment sets that moves its timings from one process to the next
# (docs/comparing.md, "Less noise at its source"): recorded in each run, so that two runs
# timed under different settings are seen to be.
NOISE_ENV = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "KMP_BLOCKTIME",
    "THP_MEM_ALLOC_ENABLE",
    "MALLOC_ARENA_MAX",
    "GLIBC_TUNABLES",
    "PYTHONHASHSEED",
)
ADDR_NO_RANDOMIZE = 0x0040000  # personality(2)'s flag, what `setarch -R` sets


def _bracketed(path: str) -> str | None:
    """The chosen one of a sysfs choice list (``always [madvise] never`` -> ``madvise``)."""
    try:
        match = re.search(r"\[(\w+)\]", Path(path).read_text())
    except OSError:
        return None
    return match.group(1) if match else None


def process_settings() -> dict:
    """This process's settings that change how alike its timings are to the next process's."""
    settings = {name: os.environ[name] for name in NOISE_ENV if name in os.environ}
    preload = os.environ.get("LD_PRELOAD")
    if preload:
        settings["LD_PRELOAD"] = " ".join(Path(part).name for part in preload.split())  # names, not paths
    settings["transparent_hugepage"] = _bracketed("/sys/kernel/mm/transparent_hugepage/enabled")
    try:
        personality = int(Path("/proc/self/personality").read_text(), 16)
        settings["aslr"] = not personality & ADDR_NO_RANDOMIZE
    except (OSError, ValueError):
        settings["aslr"] = None
    return settings


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


def visible_nvidia_gpus() -> list[str] | None:
    """Names of the NVIDIA GPUs CUDA would show this process, from the driver (NVML); [] without
    a driver; None where the accelerators cannot be told without torch: UUIDs or MIG slices in
    ``CUDA_VISIBLE_DEVICES``, or a machine whose GPUs are not NVIDIA's (Apple's MPS, AMD's ROCm)."""
    if _other_accelerators():
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no package, no driver, no GPU: CUDA would see none either
        return []
    try:
        names = [_text(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return names
    chosen = []
    for item in visible.split(","):
        item = item.strip()
        if not item.isdigit():  # CUDA stops at the first entry it cannot read; a UUID or MIG name: not told here
            return chosen if item in ("", "-1") else None
        if int(item) >= len(names):
            break
        chosen.append(names[int(item)])
    return chosen


def _other_accelerators() -> bool:
    """Apple's GPUs (MPS) or AMD's (ROCm, which torch shows as CUDA): the driver NVML reads is not theirs."""
    return platform.system() == "Darwin" or Path("/dev/kfd").exists()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Host:
    """This machine, as read without torch; ``gpu_names`` None where they cannot be."""

    cpu_model: str
    cpu_threads: int
    cpu_detail: str | None
    gpu_names: tuple[str, ...] | None

    @classmethod
    @functools.cache
    def read(cls) -> Host:
        """This machine, read once per process (a command naming several runs asks for each)."""
        gpus = visible_nvidia_gpus()
        return cls(cpu_model(), cpu_threads(), cpu_detail(), None if gpus is None else tuple(gpus))

    @property
    def slug(self) -> str | None:
        """The results folder this machine's runs go to, where its GPUs could be read."""
        if self.gpu_names is None:
            return None
        return fingerprint(self.cpu_model, self.cpu_threads, list(self.gpu_names), detail=self.cpu_detail)["slug"]

    def matches(self, stored: dict) -> bool:
        """Whether a stored run's fingerprint can be this machine's: the same CPU (its detail where
        the fingerprint keeps one), one machine, and the same GPUs where those could be read."""
        if not isinstance(stored, dict):
            return False
        mine = fingerprint(self.cpu_model, self.cpu_threads, list(self.gpu_names or ()), detail=self.cpu_detail)
        keys = ["cpu_model", "cpu_threads", "cpu_detail"] + (["gpu_models", "gpu_count"] if self.gpu_names is not None else [])
        return stored.get("nodes", 1) == 1 and all(stored.get(k) == mine.get(k) for k in keys)
