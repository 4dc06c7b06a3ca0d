"""What the hardware itself says while a benchmark runs: clocks, throttling, temperature, power, energy.

On NVIDIA GPUs, NVIDIA's management library (NVML, through ``nvidia-ml-py``'s ``pynvml``);
on the CPU, the kernel's RAPL energy counters (``/sys/class/powercap``) where it exposes
them. Where neither is there (no driver, no library, a VM without RAPL, a counter only root
may read), every figure is "not recorded" with the reason, never a guess.

Sensor limits, stated where the figures are used (docs/how-it-measures.md, "What the GPU did"):
- NVML's energy counter (millijoules since the driver loaded) updates about every 100 ms:
  energy is read around all the timed rounds together and divided among them, never per
  round, and a window shorter than :data:`MIN_ENERGY_WINDOW_S` is not reported.
- On A100/H100-class GPUs the power sensor samples part of the time (NVIDIA documents the
  averaging window as a fraction of each period), so short bursts can be missed; energy over
  seconds is the figure to trust, a single power reading is not.
- Clocks and throttle reasons are read at most every :data:`SAMPLE_EVERY_S` (reading costs
  tens of microseconds), and a reading speaks for the rounds since the one before.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

SAMPLE_EVERY_S = 0.1
MIN_ENERGY_WINDOW_S = 1.0

# NVML's clock-event ("throttle") reasons, by bit. Those in SLOWDOWNS hold the clocks below
# what the workload asks for; the others are states (idle, an application-clock setting).
REASONS = {
    0x1: "idle",
    0x2: "application clocks setting",
    0x4: "power cap",
    0x8: "hardware slowdown",
    0x10: "sync boost",
    0x20: "software thermal slowdown",
    0x40: "hardware thermal slowdown",
    0x80: "power brake",
    0x100: "display clock setting",
}
SLOWDOWNS = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


def decode(mask: int) -> list[str]:
    """The reasons set in an NVML clock-event bitmask, in words."""
    return [word for bit, word in REASONS.items() if mask & bit]


class Monitor:
    """What nothing reads: every figure "not recorded", with why."""

    def __init__(self, reason: str):
        self.reason = reason

    def start(self) -> None:
        pass

    def round_done(self) -> None:
        pass

    def stop(self, rounds: int, calls_per_round: int, timed_s: float | None = None) -> dict:
        return {"sensors": f"not recorded: {self.reason}"}


def _nvml():
    """The pynvml module, initialised; raises RuntimeError saying why not."""
    try:
        import pynvml
    except ImportError:
        raise RuntimeError("nvidia-ml-py is not installed") from None
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
        raise RuntimeError(f"no NVIDIA driver answers ({exc})") from None
    return pynvml


class GpuMonitor(Monitor):
    """NVML around a benchmark's timed rounds, for the GPUs it runs on."""

    def __init__(self, nvml, handles: list):
        super().__init__("")
        self.nvml, self.handles = nvml, handles
        self.samples: list[tuple[int, int, int, float, int]] = []  # sm MHz, mem MHz, temp C, power W, reasons
        self.throttled_rounds = 0
        self.pending_rounds = 0
        self.last = 0.0
        self.energy0: float | None = None
        self.began = 0.0
        self.mask = 0

    def _energy_mj(self) -> float | None:
        try:
            return float(sum(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles))
        except Exception:  # older GPUs have no energy counter
            return None

    def _reasons(self, handle) -> int:
        get = getattr(self.nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        return int(get(handle))

    def _sample(self) -> None:
        nvml = self.nvml
        for h in self.handles:
            reasons = self._reasons(h)
            self.samples.append(
                (
                    int(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM)),
                    int(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM)),
                    int(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
                    nvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
                    reasons,
                )
            )
            self.mask |= reasons
        if any(sample[4] & SLOWDOWNS for sample in self.samples[-len(self.handles) :]):
            self.throttled_rounds += self.pending_rounds  # the rounds since the last reading ran throttled
        self.pending_rounds = 0
        self.last = time.perf_counter()

    def start(self) -> None:
        self.energy0 = self._energy_mj()
        self.began = time.perf_counter()
        self._sample()

    def round_done(self) -> None:
        self.pending_rounds += 1
        if time.perf_counter() - self.last >= SAMPLE_EVERY_S:
            self._sample()

    def stop(self, rounds: int, calls_per_round: int, timed_s: float | None = None) -> dict:
        self._sample()
        window = time.perf_counter() - self.began
        energy1 = self._energy_mj()
        sm, mem, temp, power, _ = zip(*self.samples) if self.samples else ((), (), (), (), ())
        out: dict[str, Any] = {
            "sensors": "nvml",
            "gpu_sm_clock_mhz_min": min(sm, default=None),
            "gpu_sm_clock_mhz_median": statistics.median(sm) if sm else None,
            "gpu_memory_clock_mhz_min": min(mem, default=None),
            "gpu_memory_clock_mhz_median": statistics.median(mem) if mem else None,
            "gpu_temperature_c_max": max(temp, default=None),
            "gpu_power_w_median": statistics.median(power) if power else None,
            "clock_event_reasons": decode(self.mask),
            "throttled_rounds": min(self.throttled_rounds, rounds),
        }
        out.update(_energy(self.energy0, energy1, window, rounds, calls_per_round, "the GPU's energy counter", timed_s))
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            pass
        return out


def _energy(before_mj, after_mj, window_s: float, rounds: int, calls_per_round: int, what: str, timed_s: float | None = None) -> dict:
    """Energy of the timed calls, per call, and the mean power; or why not.

    The counter is read before the first round and after the last, so its window also holds
    the untimed work between rounds (a CNN's evaluation after each epoch, a re-initialised
    model). The timed calls are given the window's mean power for their own ``timed_s``
    seconds: ``energy_j``; ``energy_window_j`` is the counter's whole difference.
    """
    if before_mj is None or after_mj is None:
        return {"energy_note": f"not measured: {what} cannot be read"}
    if window_s < MIN_ENERGY_WINDOW_S or rounds == 0:
        return {"energy_note": f"not measured: {window_s:.2f} s of rounds is too short for {what} (about 10 updates a second)"}
    window_j = (after_mj - before_mj) / 1000.0
    power_w = window_j / window_s
    joules = window_j if timed_s is None else power_w * min(timed_s, window_s)
    calls = rounds * calls_per_round
    return {
        "energy_j": joules,
        "energy_per_call_j": joules / calls,
        "power_w": power_w,
        "energy_window_s": window_s,
        "energy_window_j": window_j,
    }


def gpu_monitor(indices: list[int]) -> Monitor:
    """An NVML monitor of the GPUs with these CUDA indices, or a :class:`Monitor` saying why there is none."""
    try:
        nvml = _nvml()
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
    except Exception as exc:
        return Monitor(str(exc) if isinstance(exc, RuntimeError) else f"NVML answered {exc}")
    return GpuMonitor(nvml, handles)


def gpu_state() -> list[dict] | str:
    """Before a run: per GPU, the processes on it, persistence mode, power limit, application clocks;
    or why they cannot be read."""
    try:
        nvml = _nvml()
        found = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            procs = [int(p.pid) for p in nvml.nvmlDeviceGetComputeRunningProcesses(h)]
            found.append(
                {
                    "index": i,
                    "processes": procs,
                    "other_processes": [p for p in procs if p != os.getpid()],
                    "persistence_mode": bool(nvml.nvmlDeviceGetPersistenceMode(h)),
                    "power_limit_w": nvml.nvmlDeviceGetPowerManagementLimit(h) / 1000.0,
                    "applications_clocks_mhz": {
                        "sm": int(nvml.nvmlDeviceGetApplicationsClock(h, nvml.NVML_CLOCK_SM)),
                        "memory": int(nvml.nvmlDeviceGetApplicationsClock(h, nvml.NVML_CLOCK_MEM)),
                    },
                }
            )
        nvml.nvmlShutdown()
        return found
    except Exception as exc:
        return f"not recorded: {exc}"


# --- the CPU's energy --------------------------------------------------------------------------

POWERCAP = Path("/sys/class/powercap")


def _rapl_packages(root: Path = POWERCAP) -> list[Path]:
    """The package-level RAPL domains (``intel-rapl:0``, ``intel-rapl:1``; AMD's kernels use the same names)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1 and (p / "energy_uj").exists())


class CpuMonitor(Monitor):
    """RAPL package energy around the timed rounds (wrap-around handled)."""

    def __init__(self, packages: list[Path]):
        super().__init__("")
        self.packages = packages
        self.before: list[int] | None = None
        self.began = 0.0

    def _read(self) -> list[int]:
        return [int((p / "energy_uj").read_text()) for p in self.packages]

    def start(self) -> None:
        self.before = self._read()
        self.began = time.perf_counter()

    def stop(self, rounds: int, calls_per_round: int, timed_s: float | None = None) -> dict:
        window = time.perf_counter() - self.began
        after = self._read()
        total_uj = 0
        for p, b, a in zip(self.packages, self.before or after, after):
            span = int((p / "max_energy_range_uj").read_text()) if (p / "max_energy_range_uj").exists() else 0
            total_uj += a - b if a >= b else a - b + span
        out = {"sensors": "rapl"}
        out.update(_energy(0.0, total_uj / 1000.0, window, rounds, calls_per_round, "RAPL", timed_s))
        return out


def cpu_monitor(root: Path = POWERCAP) -> Monitor:
    packages = _rapl_packages(root)
    if not packages:
        return Monitor("the kernel exposes no RAPL energy counters here (a VM, or not an x86 CPU)")
    try:
        CpuMonitor(packages)._read()
    except OSError as exc:
        return Monitor(f"RAPL cannot be read ({exc.strerror or exc}; it is root-only on many kernels)")
    return CpuMonitor(packages)
