"""Benchmarks on a fake CUDA device, timed by ``devicebench.measure.timing`` through pytest-benchmark's real fixture.

Not collected by the harness tests: ``tests/test_timing.py`` runs this file in a pytest of its
own (``--noconftest``, benchmarks enabled, ``--benchmark-json``) and checks the JSON it
writes. Each probe stores what the fake hardware saw in ``extra_info``.
"""

import random
import sys
import time
from dataclasses import dataclass

from devicebench.harness.pytest_benchmark_internals import BenchmarkLoop
from devicebench.measure.config import Rounds
from devicebench.measure.sensors import Monitor
from devicebench.measure.timing import StopRule
from devicebench.measure.timing import measure as measure_loop
from tests.fake_cuda import FakeCudaDevice, FakeQueueCpu

SHORT_S = 200e-6  # a 200 us kernel: under timing.MIN_ROUND_S, so several calls make a round
LONG_S = 5e-3
SETUP_S = 0.05  # a setup's sleep and its queued work: far above a short round, even on a loaded machine
# Three warm-up calls: the fastest sets `iterations`, so one call that a busy machine
# preempted past MIN_ROUND_S does not turn the loop off.
WARMUP = 3
ROUNDS = Rounds.fixed(4, warmup=WARMUP)


def measure(benchmark, device, step, **kwargs):
    """``devicebench.measure.timing.measure`` on pytest-benchmark's fixture, as ``bench.run`` calls it."""
    return measure_loop(BenchmarkLoop(benchmark), device, step, **kwargs)


def _record(benchmark, device, calls):
    events = device.events[: 2 * ROUNDS.max_rounds]  # the rounds' pairs; the sync-cost probes follow
    benchmark.extra_info.update(
        probe_calls=len(calls),
        probe_launched=device.stream.launched,
        probe_pending_s=device.stream.pending_s(),
        probe_event_spans=[[start.launched, end.launched] for start, end in zip(events[::2], events[1::2])],
    )


def _launcher(device, seconds, calls):
    def step():
        device.stream.launch(seconds)
        calls.append(time.perf_counter())
        return len(calls)

    return step


def _steady(benchmark, seconds):
    """A step of ``seconds`` of device work, timed; what the fake device saw goes into extra_info."""
    device, calls = FakeCudaDevice(), []
    result = measure(benchmark, device, _launcher(device, seconds, calls), rounds=ROUNDS)
    benchmark.extra_info["probe_result"] = result
    _record(benchmark, device, calls)


def test_short_step(benchmark):
    _steady(benchmark, SHORT_S)


def test_short_step_one_slow_warmup(benchmark):
    """The last warm-up call is slow (the machine was busy): the fastest call still sets the loop."""
    device, calls = FakeCudaDevice(), []

    def step():
        device.stream.launch(LONG_S if len(calls) == WARMUP else SHORT_S)  # call 1 is the cold one
        calls.append(time.perf_counter())

    measure(benchmark, device, step, rounds=ROUNDS)


def test_long_step(benchmark):
    _steady(benchmark, LONG_S)


def test_setup_queues_work_and_sleeps(benchmark):
    device, calls = FakeCudaDevice(), []

    def setup():
        device.stream.launch(SETUP_S)  # must finish before the timer starts
        time.sleep(SETUP_S)

    measure(benchmark, device, _launcher(device, SHORT_S, calls), setup=setup, rounds=ROUNDS)
    _record(benchmark, device, calls)


def _spin(seconds: float) -> None:
    """CPU work: the process's CPU clock moves with the wall clock."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_seconds_of_the_step_not_of_its_setup(benchmark):
    """The step spins the CPU for LONG_S, its setup for SETUP_S: only the step's is the round's CPU time."""
    device = FakeQueueCpu()
    measure(benchmark, device, lambda: _spin(LONG_S), setup=lambda: _spin(SETUP_S), rounds=ROUNDS)


def test_queue_without_events(benchmark):
    device, calls = FakeQueueCpu(), []
    measure(benchmark, device, _launcher(device, SHORT_S, calls), rounds=ROUNDS)
    benchmark.extra_info.update(probe_calls=len(calls), probe_pending_s=device.stream.pending_s())


# --- rounds that stop when the median is known ------------------------------------------------

UNTIL_KNOWN = Rounds(warmup=WARMUP, min_rounds=3, max_rounds=100_000, max_time_s=20.0, min_time_s=0.2, within=0.01)


def _noisy_launcher(device, calls, low_s, high_s):
    rng = random.Random(0)

    def step():
        device.stream.launch(rng.uniform(low_s, high_s))
        calls.append(time.perf_counter())
        return len(calls)

    return step


def test_steady_step_until_known(benchmark):
    device, calls = FakeCudaDevice(), []
    measure(benchmark, device, _launcher(device, 3e-3, calls), rounds=UNTIL_KNOWN)
    _record(benchmark, device, calls)
    benchmark.extra_info["probe_events"] = len(device.events)


def test_short_steady_step_until_known(benchmark):
    device, calls = FakeCudaDevice(), []
    measure(benchmark, device, _launcher(device, SHORT_S, calls), rounds=UNTIL_KNOWN)
    benchmark.extra_info.update(probe_calls=len(calls), probe_events=len(device.events))


def test_noisy_step_until_the_time_limit(benchmark):
    device, calls = FakeCudaDevice(), []
    rounds = Rounds(warmup=1, min_rounds=3, max_rounds=100_000, max_time_s=0.6, min_time_s=0.1, within=0.001)
    measure(benchmark, device, _noisy_launcher(device, calls, 2e-3, 6e-3), rounds=rounds)


def test_noisy_step_until_the_round_limit(benchmark):
    device, calls = FakeCudaDevice(), []
    rounds = Rounds(warmup=1, min_rounds=3, max_rounds=7, max_time_s=60.0, min_time_s=0.0, within=0.001)
    measure(benchmark, device, _noisy_launcher(device, calls, 2e-3, 6e-3), rounds=rounds)


def test_sensors_read_around_the_rounds(benchmark, monkeypatch):
    from tests import fake_nvml

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make(throttle_between=(0.3, 0.7)))
    device, calls = FakeCudaDevice(), []
    rounds = Rounds(warmup=1, min_rounds=3, max_rounds=100_000, max_time_s=1.3, min_time_s=0.0, within=1e-6)
    measure(benchmark, device, _launcher(device, 10e-3, calls), rounds=rounds)


def test_energy_with_untimed_work_between_rounds(benchmark, monkeypatch):
    """20 ms of untimed setup before each 10 ms round, on a GPU drawing 500 W throughout."""
    from tests import fake_nvml

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make())
    device, calls = FakeCudaDevice(), []
    measure(benchmark, device, _launcher(device, 10e-3, calls), setup=lambda: time.sleep(0.02), rounds=Rounds.fixed(40, warmup=1))


# --- only the step is timed ------------------------------------------------------------------

BOOKKEEPING_S = 0.02  # each piece of work between rounds: 100x a short call


class SlowProgress:
    """Progress lines that take BOOKKEEPING_S to write."""

    def update(self, *args, **kwargs) -> None:
        time.sleep(BOOKKEEPING_S)


class SlowSensors(Monitor):
    """Sensors whose every read takes BOOKKEEPING_S (an NVML read is about a millisecond)."""

    def __init__(self):
        super().__init__("not recorded: a probe's sensors")

    def start(self) -> None:
        time.sleep(BOOKKEEPING_S)

    def round_done(self) -> None:
        time.sleep(BOOKKEEPING_S)


@dataclass(frozen=True)
class SlowSensorsDevice(FakeCudaDevice):
    def monitor(self) -> SlowSensors:
        return SlowSensors()


def _bookkeeping(benchmark, monkeypatch, slow: bool) -> None:
    """A short step, looped, with fast or slow work between its rounds: a slow stop rule, slow sensors, slow progress."""
    device, calls = (SlowSensorsDevice() if slow else FakeCudaDevice()), []
    if slow:
        decide = StopRule.is_finished
        monkeypatch.setattr(StopRule, "is_finished", lambda rule, *args: time.sleep(BOOKKEEPING_S) or decide(rule, *args))
    rounds = Rounds(warmup=WARMUP, min_rounds=8, max_rounds=12, max_time_s=60.0, min_time_s=0.0, within=1e-9)
    measure(benchmark, device, _launcher(device, SHORT_S, calls), rounds=rounds, progress=SlowProgress() if slow else None)
    benchmark.extra_info.update(probe_calls=len(calls), probe_pending_s=device.stream.pending_s())


def test_short_step_fast_bookkeeping(benchmark, monkeypatch):
    _bookkeeping(benchmark, monkeypatch, slow=False)


def test_short_step_slow_bookkeeping(benchmark, monkeypatch):
    _bookkeeping(benchmark, monkeypatch, slow=True)


LATE_WAKE_S = 3e-3


@dataclass(frozen=True)
class LateWakingDevice(FakeCudaDevice):
    """A device whose every sync returns LATE_WAKE_S after its work is done: the cost check-timing allows for."""

    def synchronize(self) -> None:
        super().synchronize()
        time.sleep(LATE_WAKE_S)


def test_late_waking_device(benchmark):
    device, calls = LateWakingDevice(), []
    measure(benchmark, device, _launcher(device, LONG_S, calls), rounds=Rounds.fixed(3, warmup=1))
