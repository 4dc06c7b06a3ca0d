"""NVIDIA's management library in miniature (``pynvml``'s calls the suite makes), for tests on a CPU.

A GPU at 1980 MHz drawing 500 W, whose energy counter (mJ) follows the wall clock and moves
only every 100 ms, as NVML's does. ``throttle_between=(t0, t1)`` reports a power cap for
readings taken t0..t1 seconds after the library was initialised.
"""

from __future__ import annotations

import time
import types


class NVMLError(Exception):
    pass


def make(
    throttle_between: tuple[float, float] | None = None, driver: bool = True, power_w: float = 500.0, processes=(), names: tuple[str, ...] = ("NVIDIA H100 80GB HBM3",)
) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    state = {"t0": None}

    def now() -> float:
        return time.perf_counter() - state["t0"]

    def init():
        if not driver:
            raise NVMLError("Driver Not Loaded")
        state["t0"] = time.perf_counter()

    def throttled() -> bool:
        return throttle_between is not None and throttle_between[0] <= now() <= throttle_between[1]

    nvml.NVMLError = NVMLError
    nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM, nvml.NVML_TEMPERATURE_GPU = 1, 2, 0
    nvml.nvmlInit = init
    nvml.nvmlShutdown = lambda: None
    nvml.nvmlDeviceGetCount = lambda: len(names)
    nvml.nvmlDeviceGetName = lambda h: names[h[1]]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)
    nvml.nvmlDeviceGetClockInfo = lambda h, kind: (1200 if throttled() else 1980) if kind == nvml.NVML_CLOCK_SM else 3201
    nvml.nvmlDeviceGetTemperature = lambda h, kind: 61
    nvml.nvmlDeviceGetPowerUsage = lambda h: int(power_w * 1000)
    nvml.nvmlDeviceGetTotalEnergyConsumption = lambda h: int(power_w * 1000 * (now() // 0.1) * 0.1)  # mJ, 10 updates a second
    nvml.nvmlDeviceGetCurrentClocksEventReasons = lambda h: 0x4 if throttled() else 0x0
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda h: [types.SimpleNamespace(pid=p) for p in processes]
    nvml.nvmlDeviceGetPersistenceMode = lambda h: 1
    nvml.nvmlDeviceGetPowerManagementLimit = lambda h: 700_000
    nvml.nvmlDeviceGetApplicationsClock = lambda h, kind: 1980 if kind == nvml.NVML_CLOCK_SM else 3201
    return nvml
