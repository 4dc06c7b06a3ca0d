"""devicebench as a pytest plugin: the ``bench`` fixture and the devices it runs on, for any project.

Installed with the package (the ``pytest11`` entry point ``devicebench.plugin``), so any
project's tests can write ``def test_my_model(bench, device): ...`` and get the suite's
devices (``cpu``, ``cuda:0``, ``dp``, ``mps``; missing ones skipped with a reason), its
GPU-correct timing, its storage under ``results/<machine>/``, its machine fingerprint, and
``devicebench compare``, ``speedup`` and ``report`` over what they store.

A guest in every other session. Loading this module imports no torch and changes nothing
(pytest-xdist, pytest-cov and pytest-randomly behave alike): a session becomes a devicebench
run only when one of its tests requests devicebench's own ``bench`` fixture (the fixture
this module defines, not any fixture of that name) or a devicebench option is given. Only
then is the library loaded (:mod:`devicebench.harness.session`), and what it does (devices,
markers, storage, the machine block, discarding a failed result) reaches only the tests
that use ``bench``. A project's own ``device`` or ``bench`` wins; a test that asks for
devicebench's ``bench`` and its own ``device`` is told to ask for ``bench_device``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .harness import options

if TYPE_CHECKING:
    from .harness.session import RunSession

_RUN = pytest.StashKey["RunSession"]()
_BENCH_TESTS = pytest.StashKey[set]()  # node ids of the test functions that use devicebench's bench
_CALL_FAILED = pytest.StashKey[bool]()
_USES_BENCH = pytest.StashKey[bool]()  # on an item whose bench fixture was set up


def _run(config: pytest.Config) -> RunSession:
    """The run's session object, made (and the library imported) on first use."""
    run = config.stash.get(_RUN, None)
    if run is None:
        from .harness.session import RunSession

        run = config.stash[_RUN] = RunSession(config)
    return run


def _active(config: pytest.Config) -> RunSession | None:
    return config.stash.get(_RUN, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_BENCH_TESTS] = set()
    if options.given(config):  # asked for by name: refuse what cannot give honest numbers before pytest-benchmark starts
        _run(config).check_options()


def _is_ours(metafunc: pytest.Metafunc, name: str) -> bool:
    """Whether ``name`` resolves to this module's fixture for this test (the closest definition wins).

    pytest has no public call for a test's fixture definitions; ``Metafunc._arg2fixturedefs`` is
    what pytest-asyncio and others read too, and without it nothing is taken for devicebench's."""
    defs = getattr(metafunc, "_arg2fixturedefs", {}).get(name)
    return bool(defs) and getattr(defs[-1].func, "__module__", None) == __name__


def _parametrized_directly(metafunc: pytest.Metafunc, name: str) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bench" not in metafunc.fixturenames or not _is_ours(metafunc, "bench"):
        return  # not devicebench's: left exactly as it is
    metafunc.config.stash[_BENCH_TESTS].add(metafunc.definition.nodeid)
    if "bench_device" in metafunc.fixturenames:
        name = "bench_device"
    elif "device" in metafunc.fixturenames:
        if not _is_ours(metafunc, "device") or _parametrized_directly(metafunc, "device"):
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid} uses devicebench's bench and a 'device' of its own project: "
                "ask for 'bench_device' instead to run on devicebench's devices, or rename yours"
            )
        name = "device"
    else:
        return  # a host workload: no device parameter
    metafunc.parametrize(name, _run(metafunc.config).device_params(), indirect=True)


def device_params(selected: tuple[str, ...], gpu_count: int | None = None) -> list:
    """One ``pytest.param`` per device of this machine, with its ``gpu``/``multi_gpu`` marks and skip reason."""
    from .harness.session import device_params as params

    return params(selected, gpu_count)


def pytest_collection_finish(session: pytest.Session) -> None:
    functions = session.config.stash[_BENCH_TESTS]
    ours = [item for item in session.items if _function_id(item) in functions]
    if ours:
        _run(session.config).start(session, ours)


def _function_id(item: pytest.Item) -> str:
    """The node id of the test function an item was generated from (its parameters' ids cut off)."""
    callspec = getattr(item, "callspec", None)
    suffix = f"[{callspec.id}]" if callspec is not None else ""
    return item.nodeid[: -len(suffix)] if suffix and item.nodeid.endswith(suffix) else item.nodeid


def _device(request):
    if not hasattr(request, "param"):
        if request.fixturename == "device" and "bench_device" in request.fixturenames:
            return request.getfixturevalue("bench_device")
        pytest.fail(
            f"'{request.fixturename}' is devicebench's device, given only to tests that use its 'bench' fixture; "
            f"{request.node.name} does not",
            pytrace=False,
        )
    return _run(request.config).open_device(request.param)


@pytest.fixture
def device(request):
    """The device under test (``cpu``, ``cuda:0``, ``dp``, ``mps``, ``ddp:*``) of a test that uses ``bench``; its memory is given back afterwards."""
    dev = _device(request)
    yield dev
    dev.release_memory()


@pytest.fixture
def bench_device(request):
    """devicebench's ``device`` under a name no project uses: for tests with a ``device`` of their own."""
    dev = _device(request)
    yield dev
    dev.release_memory()


@pytest.fixture(scope="session")
def image_data(request):
    """MNIST-format images: MNIST or Fashion-MNIST where found, else synthetic (with a warning)."""
    return _run(request.config).image_data()


@pytest.fixture
def bench(benchmark, request):
    """Runs and records one benchmark: see :class:`devicebench.harness.bench.Bench`. Once its
    test has passed, one more call of its step counts the step's work."""
    request.node.stash[_USES_BENCH] = True
    ours = _run(request.config).bench(benchmark, request)
    yield ours
    ours.passed = not request.node.stash.get(_CALL_FAILED, False)
    if ours.passed:
        ours.count_work()


@pytest.fixture
def workload_context(request):
    """What a declared workload's step may need: the images (loaded on first use) and the options."""
    return _run(request.config).workload_context(request)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if not item.stash.get(_USES_BENCH, False):
        return (yield)
    try:
        return (yield)
    except (Exception, KeyboardInterrupt, pytest.fail.Exception) as exc:  # a skip is no failure
        item.stash[_CALL_FAILED] = True
        _run(item.config).on_error(item, exc)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    result = yield
    run = _active(session.config)
    if run is not None and run.started:
        run.after_benchmarks()
    return result


def pytest_benchmark_update_machine_info(config, machine_info):
    run = _active(config)
    if run is not None and run.started:
        machine_info["devicebench"] = run.machine_info()
