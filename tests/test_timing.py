"""Timing is GPU-correct: every timed interval waits for the device; setup and warm-up are not timed."""

import json
import time
from dataclasses import dataclass

import pytest
import torch

from devicebench.config import Rounds
from devicebench.devices import BenchDevice
from devicebench.timing import measure

from .conftest import run_benches
from .plugins.slow_sync import DELAY_S

WORK_S = 0.02


@dataclass(frozen=True)
class QueueDevice(BenchDevice):
    """A device whose work is queued by a step and done only when the host synchronizes."""

    def synchronize(self):
        pending = QUEUE.pop("pending", 0.0)
        time.sleep(pending)


QUEUE: dict = {}


def launch():
    """Queue WORK_S of device work and return at once, as a CUDA kernel launch does."""
    QUEUE["pending"] = QUEUE.get("pending", 0.0) + WORK_S


class PedanticStandIn:
    """Times like pytest-benchmark's pedantic: setup untimed, perf_counter around the target."""

    disabled = False

    def __init__(self):
        self.extra_info = {}
        self.rounds = []
        self.calls = 0

    def pedantic(self, target, setup=None, rounds=1, warmup_rounds=0, iterations=1):
        assert not (setup and iterations > 1)  # pytest-benchmark refuses it
        result = None
        for _ in range(rounds):
            if setup:
                setup()
            start = time.perf_counter()
            for _ in range(iterations):
                result = target()
            self.rounds.append((time.perf_counter() - start) / iterations)  # per call, as pytest-benchmark stores it
        return result if iterations == 1 else None


def fake_device() -> QueueDevice:
    return QueueDevice(id="cpu", torch_device=torch.device("cpu"))


def test_timed_rounds_include_the_queued_device_work():
    bench = PedanticStandIn()
    measure(bench, fake_device(), launch, rounds=Rounds(warmup=1, min_rounds=3, max_rounds=3, target_s=0.1))
    assert len(bench.rounds) == 3
    assert min(bench.rounds) >= WORK_S


def test_a_fast_step_runs_several_times_a_round_and_the_round_still_waits_for_the_device():
    work_s = 0.0002  # a 200 us kernel: a sync per call would add its own cost to every round

    def short_launch():
        QUEUE["pending"] = QUEUE.get("pending", 0.0) + work_s
        return "last result"

    bench = PedanticStandIn()
    result = measure(bench, fake_device(), short_launch, rounds=Rounds(warmup=1, min_rounds=3, max_rounds=3, target_s=0.1))
    iterations = bench.extra_info["iterations"]
    assert iterations >= 5  # about MIN_ROUND_S / 200 us
    assert len(bench.rounds) == 3 and min(bench.rounds) >= work_s  # per call, the queued work included
    assert result == "last result"


def test_a_step_with_a_setup_runs_once_a_round():
    bench = PedanticStandIn()
    measure(bench, fake_device(), lambda: None, setup=lambda: None, rounds=Rounds(warmup=1, min_rounds=2, max_rounds=2, target_s=0.1))
    assert bench.extra_info["iterations"] == 1


def test_a_timer_without_the_sync_would_be_caught():
    # The failure mode the suite exists to prevent: timing the launch, not the work.
    start = time.perf_counter()
    launch()
    naive = time.perf_counter() - start
    QUEUE.clear()
    assert naive < WORK_S


def test_setup_is_not_timed_and_cold_start_is_recorded_apart():
    calls = []

    def setup():
        calls.append("setup")
        launch()  # work queued by setup must finish before the timer starts
        time.sleep(0.03)

    def step():
        calls.append("step")
        return len(calls)

    bench = PedanticStandIn()
    measure(bench, fake_device(), step, setup=setup, rounds=Rounds(warmup=2, min_rounds=4, max_rounds=4, target_s=1))
    assert max(bench.rounds) < 0.02
    # one cold call + two warm-up calls + four rounds, each after its own setup
    assert calls.count("step") == 7 and calls.count("setup") == 7
    assert bench.extra_info["cold_start_s"] > 0
    assert bench.extra_info["warmup_rounds"] == 2


def test_rounds_fill_the_budget_within_bounds():
    rounds = Rounds(warmup=1, min_rounds=5, max_rounds=500, target_s=10.0)
    assert rounds.rounds_for(0.001) == 500
    assert rounds.rounds_for(3.0) == 5
    assert rounds.rounds_for(0.1) == 100


def test_every_real_benchmark_waits_for_the_device(tmp_path):
    """The real benches, on a fake device that finishes its work only on sync."""
    run = run_benches("-p", "tests.plugins.slow_sync", storage=tmp_path)
    assert run.ret == 0, run.output
    benchmarks = run.json()["benchmarks"]
    assert benchmarks
    for bench in benchmarks:
        assert min(bench["stats"]["data"]) >= DELAY_S, f"{bench['name']} returned before the device finished"
        assert bench["extra_info"]["cold_start_s"] >= DELAY_S
