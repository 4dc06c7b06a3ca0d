"""Wiring only: options, hooks and fixtures, each handed to the library in ``devicebench/``."""

import pytest
import torch

from devicebench import data, devices, faults, fingerprint, launch, options, results
from devicebench.bench import Bench
from devicebench.config import get_size
from devicebench.progress import Progress


def pytest_addoption(parser):
    options.add_options(parser)


def pytest_configure(config):
    options.configure(config)
    recorder = results.RunRecorder(config.getoption("bench_size"), config.getoption("bench_devices"))
    config.pluginmanager.register(recorder, "devicebench-run-recorder")
    if launch.current() is not None:  # one rank of a torchrun job: see devicebench.launch
        config.pluginmanager.register(launch.StopAllRanks(), "devicebench-stop-all-ranks")


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        selected = metafunc.config.getoption("bench_devices")
        metafunc.parametrize("device", devices.device_params(selected), indirect=True)


@pytest.fixture
def device(request):
    """The device under test: ``cpu``, ``cuda:0`` or ``dp``; its memory is given back afterwards."""
    dev = devices.open_device(request.param)
    yield dev
    dev.release_memory()


@pytest.fixture(scope="session")
def image_data(request):
    """MNIST-format images: MNIST or Fashion-MNIST where found, else synthetic (with a warning).

    Benchmarks ask for it after their own skips (``request.getfixturevalue``), so that a
    variant that does not apply is skipped, not failed, when the data cannot be read.
    """
    try:
        return data.load(request.config.getoption("data_root"), download=request.config.getoption("data_download"))
    except data.DataError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def bench(benchmark, request):
    """Runs and records one benchmark: see :class:`devicebench.bench.Bench`."""
    size = get_size(request.config.getoption("bench_size"))
    return Bench(benchmark, size, Progress(request.config, request.node.name))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    except (Exception, KeyboardInterrupt) as exc:  # an interrupted benchmark's rounds are not a result either
        faults.discard_result(item)
        if isinstance(exc, torch.OutOfMemoryError):
            faults.out_of_memory(item, exc)
        raise


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["devicebench"] = fingerprint.machine_info()
