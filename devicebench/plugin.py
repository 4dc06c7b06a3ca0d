"""devicebench as a pytest plugin: the ``device``, ``bench`` and ``image_data`` fixtures, its options and hooks.

Installed with the package (the ``pytest11`` entry point ``devicebench.plugin``), so any
project's tests can write ``def test_my_model(bench, device): ...`` and get the suite's
devices (``cpu``, ``cuda:0``, ``dp``, ``mps``; missing ones skipped with a reason), its
GPU-correct timing, its storage under ``results/<machine>/``, its machine fingerprint, and
``devicebench compare`` and ``report`` over what they store. The suite's own ``conftest.py``
only loads this module where the package is not installed.
"""

from __future__ import annotations

import pytest

from . import backends, data, devices, distributed, env, faults, fingerprint, options, recording, sensors
from .bench import Bench
from .config import get_size
from .progress import Progress
from .workloads import Context


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a GPU (CUDA or MPS); skipped with a reason where there is none")
    config.addinivalue_line("markers", "multi_gpu: needs two or more CUDA GPUs; skipped with a reason where there are fewer")
    options.configure(config)
    recorder = recording.RunRecorder(config.getoption("bench_size"), config.getoption("bench_devices"))
    config.pluginmanager.register(recorder, "devicebench-run-recorder")
    if env.current() is not None:  # one rank of a torchrun job: see devicebench.distributed
        config.pluginmanager.register(StopAllRanks(), "devicebench-stop-all-ranks")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """At the top of the run: another process on a GPU shares it with every benchmark (also flagged in the run)."""
    if backends.BACKENDS["cuda"].unavailable() is not None:
        return []
    state = sensors.gpu_state()
    if isinstance(state, str):
        return [f"devicebench: GPU state {state}"]
    shared = [{"gpu": gpu["index"], "pids": gpu["other_processes"]} for gpu in state if gpu["other_processes"]]
    config.pluginmanager.get_plugin("devicebench-run-recorder").record.gpu_shared = shared
    return [f"devicebench: WARNING: GPU {s['gpu']} is also used by process(es) {', '.join(map(str, s['pids']))}: every figure shares it" for s in shared]


def pytest_collection_finish(session: pytest.Session) -> None:
    if options.adopt(session):
        recorder = session.config.pluginmanager.get_plugin("devicebench-run-recorder")
        recorder.make_saving_safe(session.config)


def device_params(selected: tuple[str, ...], gpu_count: int | None = None) -> list:
    """One ``pytest.param`` per device of this machine, with its ``gpu``/``multi_gpu`` marks and skip reason."""
    params = []
    for spec in devices.device_specs(selected, gpu_count):
        marks = []
        if spec.accelerator:
            marks.append(pytest.mark.gpu)
        if spec.gpus >= 2:
            marks.append(pytest.mark.multi_gpu)
        if spec.skip:
            marks.append(pytest.mark.skip(reason=spec.skip))
        params.append(pytest.param(spec.id, id=spec.id, marks=marks))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", device_params(metafunc.config.getoption("bench_devices")), indirect=True)


@pytest.fixture
def device(request):
    """The device under test (``cpu``, ``cuda:0``, ``dp``, ``mps``, ``ddp:*``); its memory is given back afterwards."""
    if env.current() is not None and request.param.startswith("ddp:"):
        dev = distributed.launched_device(request.param)
    else:
        dev = devices.open_device(request.param)
    yield dev
    dev.release_memory()


@pytest.fixture(scope="session")
def image_data(request):
    """MNIST-format images: MNIST or Fashion-MNIST where found, else synthetic (with a warning).

    Benchmarks ask for it after their own skips (through :func:`workload_context`), so that
    a variant that does not apply is skipped, not failed, when the data cannot be read.
    """
    try:
        return data.load(request.config.getoption("data_root"), download=request.config.getoption("data_download"))
    except data.DataError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def bench(benchmark, request) -> Bench:
    """Runs and records one benchmark: see :class:`devicebench.bench.Bench`."""
    size = get_size(request.config.getoption("bench_size"))
    return Bench(benchmark, size, Progress(request.config, request.node.name), precision=request.config.getoption("bench_precision"))


@pytest.fixture
def workload_context(request) -> Context:
    """What a declared workload's step may need: the images (loaded on first use) and the options."""
    config = request.config
    return Context(
        images=lambda: request.getfixturevalue("image_data"),
        size_name=config.getoption("bench_size"),
        data_root=config.getoption("data_root"),
        dist_timeout_s=config.getoption("bench_dist_timeout"),
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    except devices.NotInRanks as exc:  # a model of one process on a DDP device: does not apply
        faults.discard_result(item)
        pytest.skip(str(exc))
    except (Exception, KeyboardInterrupt) as exc:  # an interrupted benchmark's rounds are not a result either
        faults.discard_result(item)
        if faults.is_out_of_memory(exc):
            faults.out_of_memory(item, exc)
        raise


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["devicebench"] = fingerprint.machine_info()


class StopAllRanks:
    """For torchrun's ranks: after a failed benchmark this rank stops its session.

    The ranks run every benchmark in lockstep; one that failed and went on to the next would
    meet the others in the wrong collective. Stopping ends this rank's process, the others'
    collectives then fail (or torchrun ends them), and rank 0 still stores what it measured.
    """

    session = None

    def pytest_sessionstart(self, session) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed and self.session is not None:
            rank = env.current().rank
            self.session.shouldstop = f"rank {rank} failed in {report.nodeid}; the ranks run in lockstep, so rank {rank} stops"
