"""What the hardware says, read through a fake NVIDIA management library and fake RAPL files."""

import sys
import time

from devicebench.measure import sensors

from . import fake_nvml


def run_rounds(monitor, rounds: int, each_s: float) -> dict:
    monitor.start()
    for _ in range(rounds):
        time.sleep(each_s)
        monitor.round_done()
    return monitor.stop(rounds=rounds, calls_per_round=1)


def test_clocks_temperature_power_and_energy_over_the_timed_rounds(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make())
    out = run_rounds(sensors.gpu_monitor([0]), rounds=12, each_s=0.1)
    assert out["sensors"] == "nvml"
    assert out["gpu_sm_clock_mhz_min"] == out["gpu_sm_clock_mhz_median"] == 1980
    assert out["gpu_memory_clock_mhz_median"] == 3201 and out["gpu_temperature_c_max"] == 61 and out["gpu_power_w_median"] == 500
    assert out["throttled_rounds"] == 0 and out["clock_event_reasons"] == []
    # Energy over the whole window (about 1.2 s at 500 W), divided among the rounds' calls.
    assert 450 <= out["energy_j"] / out["energy_window_s"] <= 550 and out["energy_per_call_j"] == out["energy_j"] / 12


def test_rounds_read_while_throttled_are_counted_and_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make(throttle_between=(0.25, 0.55)))
    out = run_rounds(sensors.gpu_monitor([0]), rounds=10, each_s=0.1)
    assert 1 <= out["throttled_rounds"] <= 5
    assert out["clock_event_reasons"] == ["power cap"] and out["gpu_sm_clock_mhz_min"] == 1200


def test_a_window_too_short_for_the_energy_counter_is_not_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make())
    out = run_rounds(sensors.gpu_monitor([0]), rounds=5, each_s=0.01)
    assert "energy_j" not in out and "too short" in out["energy_note"]


def test_without_the_library_or_the_driver_nothing_is_guessed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # an import of it fails
    assert sensors.gpu_monitor([0]).stop(1, 1) == {"sensors": "not recorded: nvidia-ml-py is not installed"}
    assert sensors.gpu_state() == "not recorded: nvidia-ml-py is not installed"
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make(driver=False))
    assert sensors.gpu_monitor([0]).stop(1, 1)["sensors"].startswith("not recorded: no NVIDIA driver answers (Driver Not Loaded)")


def test_the_gpu_state_before_a_run_names_other_processes(monkeypatch):
    import os

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make(processes=(os.getpid(), 4242)))
    [gpu] = sensors.gpu_state()
    assert gpu["other_processes"] == [4242] and gpu["persistence_mode"] is True and gpu["power_limit_w"] == 700
    assert gpu["applications_clocks_mhz"] == {"sm": 1980, "memory": 3201}


def test_decoding_the_reasons():
    assert sensors.decode(0x4 | 0x40) == ["power cap", "hardware thermal slowdown"]


def test_cpu_energy_from_rapl_counters_wrapping_around(tmp_path):
    package = tmp_path / "intel-rapl:0"
    package.mkdir()
    (package / "max_energy_range_uj").write_text("1000000\n")
    (package / "energy_uj").write_text("999000\n")
    monitor = sensors.cpu_monitor(tmp_path)
    monitor.start()
    time.sleep(1.05)
    (package / "energy_uj").write_text("49000\n")  # wrapped: 50,000 uJ later
    out = monitor.stop(rounds=10, calls_per_round=1)
    assert out["sensors"] == "rapl" and abs(out["energy_j"] - 0.05) < 1e-9 and out["energy_per_call_j"] == out["energy_j"] / 10
    assert sensors.cpu_monitor(tmp_path / "none").stop(1, 1)["sensors"].startswith("not recorded: the kernel exposes no RAPL")
