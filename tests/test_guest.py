"""The installed plugin is a guest: projects that do not use devicebench run exactly as without it,
and one that does gets the whole answer for its own benchmarks. Each test builds a project in
tmp_path and runs pytest on it in a fresh process, through the installed pytest11 entry point,
as a user's environment would; "without the plugin" is the same run with ``-p no:devicebench.plugin``."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

INSTALLED = any(ep.name == "devicebench.plugin" for ep in importlib.metadata.entry_points(group="pytest11"))
pytestmark = pytest.mark.skipif(not INSTALLED, reason="devicebench is not installed here (pip install -e .): no pytest11 entry point to test")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS", "PYTHONPATH"))}
    env.pop("PYTEST_CURRENT_TEST", None)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "project"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def pytest_in(root: Path, *args: str, plugin: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args]
    if not plugin:
        cmd += ["-p", "no:devicebench.plugin"]
    return subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, text=True, timeout=timeout)


def summary(proc: subprocess.CompletedProcess) -> str:
    """pytest's closing line without its time: ``3 passed, 1 failed``."""
    last = proc.stdout.strip().splitlines()[-1]
    return re.sub(r" in [0-9.]+s.*$", "", last.strip("= "))


OWN_DEVICE = {
    "conftest.py": '''
import pytest


@pytest.fixture
def device():
    return "cpu"
''',
    "test_own.py": '''
import sys

import pytest


def test_uses_its_own_device_fixture(device):
    assert device == "cpu"


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_parametrizes_device_itself(device):
    assert device in ("cpu", "meta")


def test_no_torch_was_imported():
    assert "torch" not in sys.modules


@pytest.mark.gpu
def test_a_stray_mark():
    pass
''',
}


def test_a_project_with_its_own_device_collects_and_runs_as_without_devicebench(tmp_path):
    root = project(tmp_path, OWN_DEVICE)
    with_plugin = pytest_in(root, "-v", "-k", "not stray")
    without = pytest_in(root, "-v", "-k", "not stray", plugin=False)
    assert with_plugin.returncode == without.returncode == 0, with_plugin.stdout + with_plugin.stderr
    assert summary(with_plugin) == summary(without) == "4 passed, 1 deselected, 1 warning"  # the warning: the stray mark, unregistered in both
    # pytest's header lists the installed plugins; nothing else of devicebench shows.
    output = [line for line in (with_plugin.stdout + with_plugin.stderr).splitlines() if not line.startswith("plugins:")]
    assert not [line for line in output if "devicebench" in line]
    # --strict-markers still catches a mark the project never registered: devicebench registers none here.
    strict = pytest_in(root, "--strict-markers", "-k", "stray")
    assert strict.returncode != 0 and "'gpu' not found in `markers`" in strict.stdout + strict.stderr


PLAIN_BENCHMARKS = {
    "conftest.py": '''
import pytest


@pytest.fixture
def bench():
    return list(range(1000))
''',
    "benches/test_speed.py": '''
def test_sum(benchmark, bench):
    benchmark(sum, bench)


def test_then_an_assert_fails(benchmark):
    benchmark(sum, range(100))
    assert False, "the benchmark ran; the test's own check fails"
''',
}


def _stored(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if ".benchmarks" in p.parts or "results" in p.parts)


@pytest.mark.parametrize("plugin", [True, False], ids=["with-devicebench", "without"])
def test_another_projects_benchmarks_are_saved_where_pytest_benchmark_saves_them(tmp_path, plugin):
    """A fixture of its own called ``bench`` and a ``benches/`` folder make nobody a devicebench run."""
    root = project(tmp_path, PLAIN_BENCHMARKS)
    only = pytest_in(root, "benches", "--benchmark-only", "--benchmark-json=out.json", plugin=plugin)
    assert only.returncode == 1 and summary(only) == "1 failed, 1 passed", only.stdout + only.stderr
    assert _stored(root) == []  # --benchmark-only alone saves nothing, as pytest-benchmark alone does
    data = json.loads((root / "out.json").read_text())
    # A benchmark whose test failed after it ran keeps its result, as pytest-benchmark keeps it.
    assert sorted(b["name"] for b in data["benchmarks"]) == ["test_sum", "test_then_an_assert_fails"]
    assert "devicebench" not in data and "devicebench" not in data["machine_info"]
    saved = pytest_in(root, "benches", "--benchmark-only", "--benchmark-autosave", plugin=plugin)
    assert saved.returncode == 1
    [path] = _stored(root)
    assert path.relative_to(root).parts[0] == ".benchmarks"
    data = json.loads(path.read_text())
    assert "devicebench" not in data and "devicebench" not in data["machine_info"]
    assert all("data" not in b["stats"] for b in data["benchmarks"])  # raw rounds only with --benchmark-save-data


def test_pytest_benchmarks_own_cli_does_not_load_torch(tmp_path):
    root = project(tmp_path, PLAIN_BENCHMARKS)
    assert pytest_in(root, "benches", "--benchmark-only", "--benchmark-autosave", "-k", "sum").returncode == 0
    [path] = _stored(root)
    code = "import sys; from pytest_benchmark.cli import main; sys.argv = ['pytest-benchmark', 'list']; main()"
    probe = f"import atexit, sys; atexit.register(lambda: print('torch loaded' if 'torch' in sys.modules else 'no torch', file=sys.stderr)); {code}"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=root, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert path.name in proc.stdout and "no torch" in proc.stderr


CLASH = {
    "conftest.py": '''
import pytest


@pytest.fixture
def device():
    return "the project's own"
''',
    "test_clash.py": '''
def test_asks_for_both(bench, device):
    pass
''',
    "test_alias.py": '''
def test_asks_for_bench_device(bench, bench_device, device):
    assert device == "the project's own"
    bench.run(bench_device, lambda: sum(range(100)))
''',
}


def test_a_clash_of_device_names_is_one_line_saying_how_to_resolve_it(tmp_path):
    root = project(tmp_path, CLASH)
    clash = pytest_in(root, "test_clash.py")
    out = clash.stdout + clash.stderr
    assert clash.returncode != 0 and "uses devicebench's bench and a 'device' of its own project: ask for 'bench_device'" in out
    assert "Traceback" not in out
    alias = pytest_in(root, "test_alias.py", "--benchmark-only", "-rs", "-v")
    assert alias.returncode == 0, alias.stdout + alias.stderr
    assert "test_asks_for_bench_device[cpu] PASSED" in alias.stdout


MISUSE = {
    "test_misuse.py": '''
import math

import pytest
import torch


def test_run_twice(bench, device):
    bench.run(device, lambda: 1)
    bench.run(device, lambda: 1)


@pytest.mark.parametrize("rounds", [5, "five"])
def test_rounds(bench, device, rounds):
    bench.run(device, lambda: 1, rounds=rounds)


def test_rounds_and_a_budget(bench, device):
    bench.run(device, lambda: 1, rounds=4, min_rounds=2, max_time_s=0.5)


def test_throughput_before_run(bench, device):
    bench.throughput("samples_per_s", 64)


@pytest.mark.parametrize("unit", ["tokens", "Tokens_per_s", "per_rank_samples_per_s"], ids=["bare", "upper", "taken"])
def test_throughput_unit(bench, device, unit):
    bench.run(device, lambda: 1)
    bench.throughput(unit, 64)


def test_nan(bench, device):
    bench.run(device, lambda: torch.tensor([1.0, math.nan]))
    bench.throughput("samples_per_s", 2)


def test_nan_allowed(bench, device):
    bench.run(device, lambda: torch.tensor([math.nan]), check_finite=False)
''',
}


def test_misuse_is_one_line_naming_the_fix_and_nan_fails(tmp_path):
    root = project(tmp_path, MISUSE)
    proc = pytest_in(root, "--benchmark-only", "--bench-devices=cpu", "--benchmark-json=out.json", "-rf", "-q")
    out = proc.stdout + proc.stderr
    data = json.loads((root / "out.json").read_text())
    failures = {f["name"]: f["error"] for f in data["devicebench"]["failed"]}
    assert failures == {
        "test_run_twice[cpu]": "bench.run was called twice in test_run_twice: one benchmark per test (parametrize the test to time more steps)",
        "test_rounds[cpu-five]": "bench.run(rounds='five'): rounds is a whole number of rounds, 1 or more",
        "test_rounds_and_a_budget[cpu]": (
            "bench.run(rounds=4, min_rounds=2, max_time_s=0.5): rounds=N runs exactly N rounds; "
            "min_rounds and max_time_s are for rounds that stop once the median is known: give one or the other"
        ),
        "test_throughput_before_run[cpu]": "bench.throughput('samples_per_s', ...) comes after bench.run(...): it divides the work of one call by the median time",
        **{
            f"test_throughput_unit[cpu-{name}]": (
                f"bench.throughput({unit!r}, ...): the unit is one of tflops, gb_per_s, steps_per_s, samples_per_s, "
                "or one of your own things per second, in lower case: tokens_per_s, images_per_s"
            )
            for name, unit in (("bare", "tokens"), ("upper", "Tokens_per_s"), ("taken", "per_rank_samples_per_s"))
        },
        "test_nan[cpu]": "the step returned NaN or inf on cpu: a step that diverged is no benchmark (bench.run(..., check_finite=False) times it anyway)",
    }, out
    assert sorted(re.findall(r"^FAILED test_misuse.py::(\S+) - Failed: ", proc.stdout, flags=re.M)) == sorted(failures)
    assert "Traceback" not in out and "AttributeError" not in out and "FixtureAlreadyUsed" not in out
    stored = {b["name"]: b for b in data["benchmarks"]}
    assert sorted(stored) == ["test_nan_allowed[cpu]", "test_rounds[cpu-5]"]  # a failed benchmark's rounds are no result
    assert len(stored["test_rounds[cpu-5]"]["stats"]["data"]) == 5  # rounds=5: exactly five


def test_a_device_named_explicitly_that_the_machine_lacks_is_an_error(tmp_path):
    from devicebench.measure import devices

    if devices.missing_hardware("cuda:0") is None:
        pytest.skip("this machine has CUDA: cuda:0 is not missing")
    root = project(tmp_path, MISUSE)
    proc = pytest_in(root, "--benchmark-only", "--bench-devices=cpu,cuda:0", "-k", "allowed")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out
    assert "--bench-devices names what this machine cannot run: cuda:0 (CUDA not available)" in out
    assert "--bench-allow-missing" in out and "Traceback" not in out
    allowed = pytest_in(root, "--benchmark-only", "--bench-devices=cpu,cuda:0", "--bench-allow-missing", "-k", "allowed", "-rs")
    assert allowed.returncode == 0 and "1 passed" in allowed.stdout and "CUDA not available" in allowed.stdout
    # Without --bench-devices, what the machine lacks is skipped, as ever.
    default = pytest_in(root, "--benchmark-only", "-k", "allowed", "-rs")
    assert default.returncode == 0 and "CUDA not available" in default.stdout


def test_the_budget_is_the_users(tmp_path):
    """pytest-benchmark's own round options and mark are honoured for a bench of one's own."""
    root = project(
        tmp_path,
        {
            "test_budget.py": '''
import time

import pytest


def test_options(bench, device):
    bench.run(device, lambda: time.sleep(0.01))


@pytest.mark.benchmark(min_rounds=9)
def test_mark(bench, device):
    bench.run(device, lambda: time.sleep(0.01))


def test_arguments(bench, device):
    bench.run(device, lambda: time.sleep(0.01), min_rounds=11, max_time_s=0.05)
'''
        },
    )
    proc = pytest_in(root, "--benchmark-only", "--bench-devices=cpu", "--benchmark-min-rounds=7", "--benchmark-max-time=0.05", "--benchmark-json=out.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rounds = {b["name"]: len(b["stats"]["data"]) for b in json.loads((root / "out.json").read_text())["benchmarks"]}
    assert rounds == {"test_options[cpu]": 7, "test_mark[cpu]": 9, "test_arguments[cpu]": 11}
    # pytest-benchmark's default value, given explicitly, is the user's choice too (the smoke size's is 3 rounds).
    default = pytest_in(
        root, "--benchmark-only", "--bench-devices=cpu", "--bench-size=smoke", "-k", "options",
        "--benchmark-min-rounds=5", "--benchmark-max-time=0.001", "--benchmark-json=default.json",
    )
    assert default.returncode == 0, default.stdout + default.stderr
    [bench] = json.loads((root / "default.json").read_text())["benchmarks"]
    assert len(bench["stats"]["data"]) == 5


def test_a_smoke_run_of_ones_own_project_is_stored_only_on_request(tmp_path):
    root = project(tmp_path, {"test_one.py": "def test_one(bench, device):\n    bench.run(device, lambda: sum(range(100)))\n"})
    smoke = pytest_in(root, "--benchmark-only", "--bench-size=smoke", "--bench-devices=cpu")
    assert smoke.returncode == 0 and not list(root.glob("results/**/*.json")), smoke.stdout
    asked = pytest_in(root, "--benchmark-only", "--bench-size=smoke", "--bench-devices=cpu", "--benchmark-autosave")
    assert asked.returncode == 0 and len(list(root.glob("results/*/*/0001_*.json"))) == 1, asked.stdout


def test_a_session_with_both_kinds_stores_each_where_its_own_options_say(tmp_path):
    root = project(
        tmp_path,
        {
            "test_both.py": '''
def test_mine(bench, device):
    bench.run(device, lambda: sum(range(100)))


def test_plain(benchmark):
    benchmark(sum, range(100))
''',
        },
    )
    proc = pytest_in(root, "--benchmark-only", "--bench-devices=cpu", "--benchmark-autosave")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [mine] = root.glob("results/*/*/0001_*.json")
    [plain] = root.glob(".benchmarks/*/0001_*.json")
    mine, plain = json.loads(mine.read_text()), json.loads(plain.read_text())
    assert [b["name"] for b in mine["benchmarks"]] == ["test_mine[cpu]"] and "data" in mine["benchmarks"][0]["stats"]
    assert [b["name"] for b in plain["benchmarks"]] == ["test_plain"] and "data" not in plain["benchmarks"][0]["stats"]
    assert "devicebench" not in plain and "devicebench" not in plain["machine_info"]


def test_progress_lines_leave_pytests_own_line_whole(tmp_path):
    """A long benchmark says it is alive on a line of its own; pytest's line goes on below it, naming its file."""
    root = project(
        tmp_path,
        {"test_slow.py": "import time\n\n\ndef test_slow(bench, device):\n    bench.run(device, lambda: time.sleep(0.7), max_time_s=6)\n"},
    )
    proc = pytest_in(root, "--benchmark-only", "--bench-devices=cpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  ... test_slow[cpu]: round "))
    assert re.fullmatch(r"test_slow\.py \.s+ +\[100%\]", lines[at + 1]), lines[at - 1 : at + 2]
