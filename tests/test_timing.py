"""Timing is GPU-correct: every timed interval waits for the device; setup and warm-up are not timed.

The probes in ``tests/probes/timing_probes.py`` run ``devicebench.measure.timing.measure`` through
pytest-benchmark's real fixture (its ``pedantic``, its extra call after looped rounds, its
JSON) on a fake CUDA device: only the hardware is faked.
"""

import json
from dataclasses import dataclass

import pytest

from devicebench.measure.config import Rounds
from devicebench.measure.timing import MIN_ROUND_S, sync_overheads

from .conftest import ROOT, run_benches, run_pytest
from .plugins.slow_sync import DELAY_S
from .probes.timing_probes import BOOKKEEPING_S, LATE_WAKE_S, SETUP_S, LateWakingDevice

PROBES = ROOT / "tests" / "probes" / "timing_probes.py"
SHORT_S, LONG_S = 200e-6, 5e-3
COLD_AND_WARMUP = 4  # one cold call and three warm-up calls before the timed rounds (probes' WARMUP)
ROUNDS = 4


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("probes")
    out = tmp / "probes.json"
    run = run_pytest(
        str(PROBES), "--noconftest", "-W", "error", "--benchmark-save-data", f"--benchmark-json={out}", storage=tmp / "storage"
    )
    assert run.ret == 0, run.output
    return {b["name"]: b for b in json.loads(out.read_text())["benchmarks"]}


def test_a_short_step_runs_several_calls_per_round_stored_per_call(probes):
    bench = probes["test_short_step"]
    info, stats = bench["extra_info"], bench["stats"]
    iterations = info["iterations"]
    assert SHORT_S < MIN_ROUND_S  # the step is short ...
    assert iterations > 1 and iterations == stats["iterations"]  # ... so several calls make a round
    assert len(stats["data"]) == ROUNDS
    # Per call, as pytest-benchmark stores a looped round: never less than the queued work,
    # and far less than the round (a stored round would be `iterations` times the call).
    assert SHORT_S <= min(stats["data"]) and max(stats["data"]) < SHORT_S * iterations / 2
    # Exactly the timed calls after the cold and warm-up ones: no call after the rounds, none left queued.
    assert info["probe_calls"] == info["calls"] == COLD_AND_WARMUP + ROUNDS * iterations
    assert info["probe_pending_s"] == 0.0


def test_work_between_looped_rounds_is_not_timed(probes):
    """A slow stop rule, slow sensors and slow progress (20 ms each, a round's work is about
    2 ms) leave the median of a looped short step where it was: they run between rounds,
    outside pytest-benchmark's timer. Timed, they would add 60 ms / iterations to every call."""
    fast, slow = probes["test_short_step_fast_bookkeeping"], probes["test_short_step_slow_bookkeeping"]
    iterations = slow["extra_info"]["iterations"]
    assert iterations > 1 and slow["stats"]["rounds"] >= 8
    bookkeeping_per_call = 3 * BOOKKEEPING_S / iterations
    assert bookkeeping_per_call > 10 * SHORT_S  # what timing the bookkeeping would add is unmistakable
    assert slow["stats"]["median"] < SHORT_S + bookkeeping_per_call / 5
    assert slow["stats"]["median"] < 3 * fast["stats"]["median"]
    assert slow["extra_info"]["probe_calls"] == COLD_AND_WARMUP + slow["stats"]["rounds"] * iterations


def test_cprofile_profiles_a_benchmark_whose_rounds_stop_when_known(tmp_path):
    out = tmp_path / "profiled.json"
    run = run_pytest(
        str(PROBES), "--noconftest", "-W", "error", "-k", "steady_step_until_known", "--benchmark-cprofile=tottime",
        f"--benchmark-json={out}", storage=tmp_path / "storage",
    )
    assert run.ret == 0, run.output
    benchmarks = json.loads(out.read_text())["benchmarks"]
    assert {b["name"] for b in benchmarks} == {"test_steady_step_until_known", "test_short_steady_step_until_known"}
    for bench in benchmarks:
        assert bench["extra_info"]["stop_reason"] == "converged"
        profiled = {row["function_name"] for row in bench["cprofile"]}
        assert any("step" in name for name in profiled), profiled  # the probe's own step was profiled
        # The profiled round was neither timed nor counted among the rounds' calls.
        assert len(bench["stats"]["data"]) == bench["stats"]["rounds"]


def test_one_slow_warm_up_call_does_not_turn_the_loop_off(probes):
    bench = probes["test_short_step_one_slow_warmup"]
    assert bench["extra_info"]["warmup_s"][-1] >= LONG_S  # the last warm-up call was the slow one
    assert bench["extra_info"]["iterations"] > 1
    assert bench["stats"]["median"] < LONG_S


def test_the_events_cover_exactly_the_timed_calls(probes):
    info = probes["test_short_step"]["extra_info"]
    iterations = info["iterations"]
    spans = info["probe_event_spans"]
    assert len(spans) == ROUNDS
    # Each round's events enclose its `iterations` calls, round after round, starting after
    # the cold and warm-up calls and ending before the extra call.
    expected = [[COLD_AND_WARMUP + r * iterations, COLD_AND_WARMUP + (r + 1) * iterations] for r in range(ROUNDS)]
    assert spans == expected
    assert SHORT_S <= info["cuda_event_median_s"] <= probes["test_short_step"]["stats"]["median"]
    # What an empty synchronized round costs beyond its events, for check-timing's allowance:
    # recorded on every run with events, from this device (test_late_waking_... checks the figure).
    assert "sync_overhead_max_s" in info and "sync_overhead_max_s" not in probes["test_queue_without_events"]["extra_info"]


def test_a_late_waking_devices_sync_cost_is_recorded(probes):
    info = probes["test_late_waking_device"]["extra_info"]
    assert info["sync_overhead_max_s"] >= LATE_WAKE_S


class SecondLongEvent:
    """An event pair that says one second of device work lay between them."""

    def record(self) -> None:
        pass

    def elapsed_time(self, end) -> float:
        return 1e3


@dataclass(frozen=True)
class BusyBetweenEvents(LateWakingDevice):
    def timing_event(self) -> SecondLongEvent:
        return SecondLongEvent()


def test_sync_overheads_are_the_wall_time_beyond_the_events():
    # The wake-up after the device finished is overhead (lower bounds only: sleeps never end early) ...
    assert min(sync_overheads(LateWakingDevice(), rounds=3)) >= LATE_WAKE_S
    # ... and the device's own time between the events is not: it is subtracted, never below zero.
    assert sync_overheads(BusyBetweenEvents(), rounds=3) == [0.0, 0.0, 0.0]


def test_a_long_step_runs_once_per_round(probes):
    bench = probes["test_long_step"]
    info = bench["extra_info"]
    assert info["iterations"] == 1
    assert info["probe_calls"] == COLD_AND_WARMUP + ROUNDS  # no extra call without a loop
    assert info["probe_event_spans"] == [[COLD_AND_WARMUP + r, COLD_AND_WARMUP + r + 1] for r in range(ROUNDS)]
    assert min(bench["stats"]["data"]) >= LONG_S
    assert info["probe_result"] == COLD_AND_WARMUP + ROUNDS  # what the last timed call returned
    assert info["cold_start_s"] >= LONG_S and info["warmup_rounds"] == COLD_AND_WARMUP - 1


def test_setup_is_not_timed_and_its_work_finishes_first(probes):
    bench = probes["test_setup_queues_work_and_sleeps"]
    info = bench["extra_info"]
    assert info["iterations"] == 1  # pytest-benchmark takes no setup with iterations
    # Setup sleeps 50 ms and queues 50 ms of work: a round that timed either would be longer.
    assert max(bench["stats"]["data"]) < SETUP_S
    assert min(bench["stats"]["data"]) >= SHORT_S


def test_each_rounds_cpu_seconds_are_the_steps_read_outside_the_timer(probes):
    bench = probes["test_cpu_seconds_of_the_step_not_of_its_setup"]
    cpu = bench["extra_info"]["cpu_median_s"]
    assert LONG_S <= cpu < SETUP_S  # the spinning step's CPU time, not the setup's spin before it
    assert cpu <= bench["stats"]["median"] * 1.5
    # A step whose work is the (fake) device's waits without spinning the CPU: little CPU time.
    assert probes["test_long_step"]["extra_info"]["cpu_median_s"] < LONG_S / 2


def test_a_device_without_events_still_waits_for_its_queue(probes):
    bench = probes["test_queue_without_events"]
    assert bench["extra_info"]["iterations"] > 1
    assert "cuda_event_median_s" not in bench["extra_info"]
    assert min(bench["stats"]["data"]) >= SHORT_S and bench["extra_info"]["probe_pending_s"] == 0.0


def test_a_fixed_count_stays_fixed_whatever_the_precision():
    rounds = Rounds.fixed(3)
    assert rounds.min_rounds == rounds.max_rounds == 3 and rounds.within is None
    assert rounds.aiming_within(0.05) == rounds


def test_every_real_benchmark_waits_for_the_device(tmp_path):
    """The real benches, on a fake device that finishes its work only on sync. The compiled
    variants are timed by the same Measurement as their eager references and are left out
    here (their compiles cost half a minute); tests/test_compile.py checks their rounds."""
    run = run_benches("-p", "tests.plugins.slow_sync", "-k", "not compile", storage=tmp_path)
    assert run.ret == 0, run.output
    benchmarks = run.json()["benchmarks"]
    assert benchmarks
    for bench in benchmarks:
        assert min(bench["stats"]["data"]) >= DELAY_S, f"{bench['name']} returned before the device finished"
        assert bench["extra_info"]["cold_start_s"] >= DELAY_S


def test_a_steady_step_stops_once_its_median_is_known(probes):
    bench = probes["test_steady_step_until_known"]
    info, stats = bench["extra_info"], bench["stats"]
    assert info["stop_reason"] == "converged" and info["median_precision"] <= 0.01 == info["target_precision"]
    assert 6 <= stats["rounds"] < 1000  # it stopped: far fewer rounds than 20 s of 3 ms rounds
    assert info["median_ci_low_s"] <= stats["median"] <= info["median_ci_high_s"]
    # Exactly the timed rounds are in pytest-benchmark's statistics, each under its pair of events.
    assert len(stats["data"]) == stats["rounds"]
    assert info["probe_events"] == 2 * stats["rounds"] + 2 * 25  # the rounds' pairs, then the sync-cost probes


def test_a_short_step_stops_between_looped_rounds(probes):
    bench = probes["test_short_steady_step_until_known"]
    info, stats = bench["extra_info"], bench["stats"]
    assert info["iterations"] > 1 and info["stop_reason"] == "converged"
    # No extra call: the loop ended before a round's work, which pytest-benchmark then never timed.
    assert info["probe_calls"] == COLD_AND_WARMUP + stats["rounds"] * info["iterations"]
    assert info["probe_events"] == 2 * stats["rounds"] + 2 * 25


def test_a_noisy_step_stops_at_its_limits_and_says_so(probes):
    by_time, by_rounds = probes["test_noisy_step_until_the_time_limit"], probes["test_noisy_step_until_the_round_limit"]
    assert by_time["extra_info"]["stop_reason"] == "time limit" and by_time["extra_info"]["median_precision"] > 0.001
    assert 0.6 <= by_time["extra_info"]["timed_rounds_s"] < 2.0
    assert by_rounds["extra_info"]["stop_reason"] == "round limit" and by_rounds["stats"]["rounds"] == 7


def test_energy_per_call_leaves_out_the_untimed_work_between_rounds(probes):
    bench = probes["test_energy_with_untimed_work_between_rounds"]
    info, stats = bench["extra_info"], bench["stats"]
    # The counter saw the setup's sleeps too; the calls are charged only their own seconds.
    assert info["energy_window_j"] > 2 * info["energy_j"]
    assert info["energy_per_call_j"] == pytest.approx(info["power_w"] * stats["mean"], rel=1e-6)
    assert info["energy_per_call_j"] == pytest.approx(500 * stats["mean"], rel=0.15)  # the fake GPU's 500 W


def test_the_gpus_sensors_are_read_around_the_timed_rounds(probes):
    info = probes["test_sensors_read_around_the_rounds"]["extra_info"]
    assert info["sensors"] == "nvml" and info["gpu_sm_clock_mhz_median"] == 1980 and info["gpu_sm_clock_mhz_min"] == 1200
    assert info["clock_event_reasons"] == ["power cap"] and info["throttled_rounds"] > 0
    assert info["energy_j"] > 0 and info["energy_per_call_j"] * probes["test_sensors_read_around_the_rounds"]["stats"]["rounds"] == pytest.approx(info["energy_j"])
