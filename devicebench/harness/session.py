"""A devicebench run inside a pytest session: made by the plugin once the session needs it.

:class:`RunSession` is the one object that holds a run: its size and devices, the machine
block (computed once), the record of skips and failures (:class:`recording.RunRecorder`),
where the run is stored (:class:`storage.RunStorage`), SIGTERM, and the ``bench`` objects
of its tests. The plugin (:mod:`devicebench.plugin`) makes it when a test asks for
devicebench's ``bench`` or a devicebench option is given; nothing here runs otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devicebench.measure import backends, data, devices, distributed, env, fingerprint, instructions, sensors
from devicebench.measure.config import get_size
from devicebench.workloads import Context

from . import faults, options, recording, storage
from . import pytest_benchmark_internals as internals
from .bench import Bench, Budget
from .progress import Progress

MARKERS = (
    "gpu: needs a GPU (CUDA or MPS); skipped with a reason where there is none",
    "multi_gpu: needs two or more CUDA GPUs; skipped with a reason where there are fewer",
)


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


def xdist_active(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) or getattr(config.option, "dist", "no") != "no"


class RunSession:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.size = get_size(options.get(config, "bench_size"))
        self.selected = options.get(config, "bench_devices")
        self.within = config.getoption("bench_median_within", None)  # None: the size's
        self.started = False
        self.recorder: recording.RunRecorder | None = None
        self.benches: list[Bench] = []  # every bench object of the run, in the order their tests ran
        self.instructions = None  # --bench-instructions: the Valgrind run (devicebench.harness.instructions)
        self._machine: dict | None = None
        self._params: list | None = None
        distributed.set_timeout(options.get(config, "bench_dist_timeout"))

    # --- before anything runs ----------------------------------------------------------------

    def check_options(self) -> None:
        """A run asked for by its options refuses what cannot give honest numbers, before the first test."""
        config = self.config
        if config.getoption("benchmark_only", False) and xdist_active(config):
            raise pytest.UsageError(
                "benchmarks cannot be timed under xdist (-n/--dist): parallel workers share the CPU and GPU "
                "and would skew every number. Run them in one process, without -n."
            )
        if options.get(config, "bench_instructions") and self.instructions is None:
            from .instructions import InstructionRun

            if xdist_active(config):
                raise pytest.UsageError("--bench-instructions counts in one process after the benchmarks; run without -n")
            self.instructions = InstructionRun(config)
        if options.get(config, "bench_allow_missing"):
            return
        missing = [(d, why) for d in options.devices_named(config) if (why := devices.missing_hardware(d))]
        if missing:
            named = "; ".join(f"{d} ({why})" for d, why in missing)
            raise pytest.UsageError(
                f"--bench-devices names what this machine cannot run: {named}. Leave it out, or add --bench-allow-missing to skip it"
            )

    def device_params(self) -> list:
        if self._params is None:
            known = {line.split(":", 1)[0].split("(", 1)[0].strip() for line in self.config.getini("markers")}
            for line in MARKERS:  # registered for the tests that get them, not for every project
                if line.split(":", 1)[0] not in known:
                    self.config.addinivalue_line("markers", line)
            self._params = device_params(self.selected)
        return self._params

    # --- once collected: the run begins --------------------------------------------------------

    def start(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        """The benchmarks that use ``bench`` are known: keep their record, store them safely, say what shares the GPU."""
        self.started = True
        config = self.config
        ours = {item.nodeid for item in items}
        self.recorder = recording.RunRecorder(self.size.name, self.selected, ours)
        config.pluginmanager.register(self.recorder, "devicebench-run-recorder")
        if env.current() is not None:  # one rank of a torchrun job: see devicebench.measure.distributed
            config.pluginmanager.register(StopAllRanks(session), "devicebench-stop-all-ranks")
        self._keep(ours)
        self._warn_if_gpu_shared()

    def machine_info(self) -> dict:
        if self._machine is None:
            self._machine = fingerprint.machine_info()
        return self._machine

    def _keep(self, ours: set[str]) -> None:
        """Where the run goes: ``results/<machine>/`` unless a storage was given, every seed-size
        ``--benchmark-only`` run saved, raw rounds kept, only torchrun's rank 0 storing, the
        storage checked before the first benchmark, SIGTERM as Ctrl-C. Other benchmarks of
        the session are saved as pytest-benchmark alone would save them."""
        config, option = self.config, self.config.option
        saving = internals.Saving.of(config)
        if saving is None:
            return  # nothing is timed: nothing to keep
        faults.catch_terminate(config)
        if env.is_secondary_rank() or instructions.in_worker():  # under torchrun only rank 0 stores the run; Valgrind's run stores nothing
            saving.save_nothing()
            return
        user_saves = saving.saves
        plain_data = bool(option.benchmark_save_data)
        moved = not internals.explicit_option(config, "--benchmark-storage")
        folder = storage.storage_folder(self._storage_url() if moved else option.benchmark_storage)
        # Smoke timings only show that a setup runs: kept only when asked for, so that results/ stays comparable.
        if saving.only and not (user_saves or saving.json_path) and self.size.name != "smoke":
            saving.save_under_tag(getattr(option, "benchmark_project_name", None))
        if folder is not None:
            plain = (saving.storage if moved else "here") if user_saves else None
            saving.storage = storage.RunStorage(
                folder, saving.logger, saving.machine_id, recorder=self.recorder, ours=ours, plain=plain, plain_data=plain_data
            )
        # Raw round times keep each run's median, its interval and its spread recomputable.
        saving.keep_raw_rounds()
        if saving.saves and folder is not None:
            storage.check_writable(folder, "--benchmark-storage")
        if saving.json_path:
            storage.check_writable(Path(saving.json_path).parent, "--benchmark-json")
            self.recorder.keep_json_safely(saving, plain_data)

    def _storage_url(self) -> str:
        return storage.default_storage(self.config.rootpath, self.machine_info()["fingerprint"]["slug"])

    def _warn_if_gpu_shared(self) -> None:
        """Another process on a GPU shares it with every benchmark: said at the start, and flagged in the run."""
        if backends.BACKENDS["cuda"].unavailable() is not None:
            return
        state = sensors.gpu_state()
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if isinstance(state, str):
            lines = [f"devicebench: GPU state {state}"]
        else:
            shared = [{"gpu": gpu["index"], "pids": gpu["other_processes"]} for gpu in state if gpu["other_processes"]]
            self.recorder.record.gpu_shared = shared
            lines = [f"devicebench: WARNING: GPU {s['gpu']} is also used by process(es) {', '.join(map(str, s['pids']))}: every figure shares it" for s in shared]
        for line in lines if reporter is not None else ():
            reporter.write_line(line)

    # --- what the fixtures give ------------------------------------------------------------------

    def open_device(self, device_id: str) -> devices.BenchDevice:
        if env.current() is not None and device_id.startswith("ddp:"):
            return distributed.launched_device(device_id)
        return devices.open_device(device_id)

    def image_data(self):
        """Benchmarks ask for the images after their own skips (through :meth:`workload_context`), so
        that a variant that does not apply is skipped, not failed, when the data cannot be read."""
        try:
            return data.load(self.config.getoption("data_root"), download=bool(self.config.getoption("data_download")))
        except data.DataError as exc:
            pytest.fail(str(exc), pytrace=False)

    def bench(self, benchmark, request: pytest.FixtureRequest) -> Bench:
        bench = Bench(
            benchmark,
            self.size,
            Progress(self.config, request.node.name),
            within=self.within,
            test=request.node.originalname,
            params=_params_of(request.node),
            budget=self._budget(request.node),
            nodeid=_location(request.node),
        )
        self.benches.append(bench)
        return bench

    def after_benchmarks(self) -> None:
        """Once every benchmark has run: their instructions, where asked for (``--bench-instructions``)."""
        if self.instructions is not None and internals.Saving.of(self.config) is not None:  # nothing timed, nothing to count for
            self.instructions.count(self.benches)

    def _budget(self, node: pytest.Item) -> Budget:
        """pytest-benchmark's ``benchmark`` mark, and its ``--benchmark-min-rounds``/``--benchmark-max-time`` where given."""
        given = lambda flag: internals.explicit_option(self.config, flag)  # noqa: E731
        budget = Budget(
            min_rounds=self.config.getoption("benchmark_min_rounds") if given("--benchmark-min-rounds") else None,
            max_time_s=float(self.config.getoption("benchmark_max_time")) if given("--benchmark-max-time") else None,
        )
        marker = node.get_closest_marker("benchmark")
        if marker is not None:
            budget = Budget(
                min_rounds=marker.kwargs.get("min_rounds", budget.min_rounds),
                max_time_s=float(marker.kwargs["max_time"]) if "max_time" in marker.kwargs else budget.max_time_s,
            )
        return budget

    def workload_context(self, request: pytest.FixtureRequest) -> Context:
        return Context(
            images=lambda: request.getfixturevalue("image_data"),
            size_name=self.size.name,
            data_root=self.config.getoption("data_root"),
            dist_timeout_s=options.get(self.config, "bench_dist_timeout"),
        )

    def on_error(self, item: pytest.Item, exc: BaseException) -> None:
        """A benchmark that raised: its rounds are not a result. Out of memory is one line; a
        model of one process on a DDP device is skipped."""
        if isinstance(exc, devices.NotInRanks):
            faults.discard_result(item)
            pytest.skip(str(exc))
        faults.discard_result(item)
        if faults.is_out_of_memory(exc):
            faults.out_of_memory(item, exc)


def _location(node: pytest.Item) -> str:
    """The test as a command line names it from anywhere: its file's absolute path and its name
    (a node id is relative to the rootdir, which a file outside it is not)."""
    name = node.nodeid.split("::", 1)[1] if "::" in node.nodeid else node.name
    return f"{node.path}::{name}"


def _params_of(node: pytest.Item) -> dict:
    """The test's parameters other than its device: what a result's variant is made of."""
    callspec = getattr(node, "callspec", None)
    params = dict(callspec.params) if callspec is not None else {}
    return {k: v for k, v in params.items() if k not in ("device", "bench_device")}


class StopAllRanks:
    """For torchrun's ranks: after a failed benchmark this rank stops its session.

    The ranks run every benchmark in lockstep; one that failed and went on to the next would
    meet the others in the wrong collective. Stopping ends this rank's process, the others'
    collectives then fail (or torchrun ends them), and rank 0 still stores what it measured.
    """

    def __init__(self, session: pytest.Session):
        self.session = session

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed:
            rank = env.current().rank
            self.session.shouldstop = f"rank {rank} failed in {report.nodeid}; the ranks run in lockstep, so rank {rank} stops"
