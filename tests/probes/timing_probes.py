"""Benchmarks on a fake CUDA device, timed by ``devicebench.timing`` through pytest-benchmark's real fixture.

Not collected by the harness tests: ``tests/test_timing.py`` runs this file in a pytest of its
own (``--noconftest``, benchmarks enabled, ``--benchmark-json``) and checks the JSON it
writes. Each probe stores what the fake hardware saw in ``extra_info``.
"""

import time

from devicebench.config import Rounds
from devicebench.timing import measure
from tests.fake_cuda import FakeCudaDevice, FakeQueueCpu

SHORT_S = 200e-6  # a 200 us kernel: under timing.MIN_ROUND_S, so several calls make a round
LONG_S = 5e-3
ROUNDS = Rounds(warmup=1, min_rounds=4, max_rounds=4, target_s=0.01)


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


def test_short_step(benchmark):
    device, calls = FakeCudaDevice(), []
    result = measure(benchmark, device, _launcher(device, SHORT_S, calls), rounds=ROUNDS)
    benchmark.extra_info["probe_result"] = result
    _record(benchmark, device, calls)


def test_long_step(benchmark):
    device, calls = FakeCudaDevice(), []
    result = measure(benchmark, device, _launcher(device, LONG_S, calls), rounds=ROUNDS)
    benchmark.extra_info["probe_result"] = result
    _record(benchmark, device, calls)


def test_setup_queues_work_and_sleeps(benchmark):
    device, calls = FakeCudaDevice(), []

    def setup():
        device.stream.launch(LONG_S)  # must finish before the timer starts
        time.sleep(0.01)

    measure(benchmark, device, _launcher(device, SHORT_S, calls), setup=setup, rounds=ROUNDS)
    _record(benchmark, device, calls)


def test_queue_without_events(benchmark):
    device, calls = FakeQueueCpu(), []
    measure(benchmark, device, _launcher(device, SHORT_S, calls), rounds=ROUNDS)
    benchmark.extra_info.update(probe_calls=len(calls), probe_pending_s=device.stream.pending_s())
