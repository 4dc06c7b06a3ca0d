"""How the library is put together: layers that import downward only, device kinds in one place,
a workload in one file, and devicebench's fixtures as a plugin for any project."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devicebench.reading.runs import load_run
from devicebench.workloads import registry

from .conftest import ROOT, run_pytest

PACKAGE = ROOT / "devicebench"
MODULES = {
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path for path in PACKAGE.rglob("*.py")
}


def _imports(name: str, path: Path) -> set[str]:
    """devicebench modules that ``name`` imports, anywhere in the file (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("devicebench"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("devicebench"):
                continue
            for alias in node.names:  # "from . import x" imports the module x
                candidate = f"{module}.{alias.name}"
                found.add(candidate if candidate in MODULES else module)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_there_is_no_import_cycle():
    """Function-level imports count: an import hidden in a function that closes a loop is a loop."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(GRAPH[node]):
            # A package's __init__ imports its own modules by discovery; a module importing its
            # package's __init__ for the declarations is the only edge back.
            if nxt == "devicebench.workloads" and node.startswith("devicebench.workloads."):
                continue
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)


# The folders say the plan: each side may import only the devicebench folders of its row, and
# neither the reading nor the measuring side nor a workload imports pytest.
SIDES = {
    "devicebench.reading": {"devicebench.reading"},
    "devicebench.measure": {"devicebench.measure", "devicebench.reading"},
    "devicebench.workloads": {"devicebench.workloads", "devicebench.measure", "devicebench.reading"},
    "devicebench.harness": {"devicebench.harness", "devicebench.workloads", "devicebench.measure", "devicebench.reading"},
}
NO_PYTEST = ("devicebench.reading", "devicebench.measure", "devicebench.workloads")


def _side(module: str) -> str | None:
    return next((side for side in SIDES if module == side or module.startswith(side + ".")), None)


def _third_party(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return names | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}


def test_every_module_lives_on_a_side_or_is_an_entry_point():
    entry_points = {"devicebench", "devicebench.__main__", "devicebench.ab", "devicebench.store", "devicebench.plugin", "devicebench.cli", "devicebench.commands"}
    assert {m for m in MODULES if _side(m) is None} == entry_points


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _side(m)))
def test_each_side_imports_only_the_folders_of_its_row(module):
    allowed = SIDES[_side(module)]
    assert {m for m in GRAPH[module] if _side(m) not in allowed} == set()
    names = _third_party(MODULES[module])
    if _side(module) in NO_PYTEST:
        assert not any(n == "pytest" or n.startswith(("pytest.", "_pytest", "pytest_benchmark")) for n in names)
    if _side(module) == "devicebench.reading":
        assert not any(n == "torch" or n.startswith("torch.") for n in names)


# pytest-benchmark's attributes that it does not document: read or written in one module only.
PYTEST_BENCHMARK_PRIVATE = {"_benchmarksession", "has_error", "_save_cprofile", "cprofile_loops", "save_json", "save_data", "autosave"}
INTERNALS = "devicebench.harness.pytest_benchmark_internals"


def test_only_one_module_touches_pytest_benchmarks_internals():
    offenders = []
    for name, path in MODULES.items():
        if name == INTERNALS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            attr = node.attr if isinstance(node, ast.Attribute) else node.value if isinstance(node, ast.Constant) else None  # getattr(x, "...") too
            nested_stats = isinstance(node, ast.Attribute) and attr == "stats" and isinstance(node.value, ast.Attribute) and node.value.attr == "stats"
            if attr in PYTEST_BENCHMARK_PRIVATE or nested_stats:
                offenders.append(f"{name}:{node.lineno} .{attr}")
    assert offenders == []
    # ... and that one does touch them: the check above looks for the right names.
    tree = ast.parse(MODULES[INTERNALS].read_text())
    touched = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} | {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert PYTEST_BENCHMARK_PRIVATE <= touched


def test_only_the_backends_touch_torch_cuda_or_mps():
    """Workloads ask a device what it supports; a new kind of device is one backend entry."""
    offenders = []
    for name, path in MODULES.items():
        if name == "devicebench.measure.backends":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("cuda", "mps") and isinstance(node.value, ast.Name) and node.value.id == "torch":
                offenders.append(f"{name}:{node.lineno}")
    assert not offenders


def test_no_workload_names_a_device_kind():
    """Code, not prose: a docstring may quote the tutorial's ``.to("cuda:0")``."""
    for path in (PACKAGE / "workloads").glob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body and isinstance(node.body[0], ast.Expr)
        }
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]
        assert not [t for t in strings if re.fullmatch(r"(cuda|mps)(:\d+)?", t)], path.name
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "is_cuda"], path.name


def test_mps_is_one_backend_entry_and_is_skipped_here_with_its_reason(tmp_path):
    from devicebench.measure import backends

    if backends.BACKENDS["mps"].unavailable() is None:
        pytest.skip("this machine has MPS: its benchmarks run")
    run = run_pytest(str(ROOT / "benches"), "--collect-only", "-q", "--bench-size=smoke", storage=tmp_path)
    mps = [line for line in run.stdout.splitlines() if "[mps-" in line]
    assert len(mps) == sum(len(w.variants) for w in registry().values() if w.devices != "host")
    skipped = run_pytest(str(ROOT / "benches"), "--benchmark-only", "--bench-size=smoke", "-k", "mps", "-rs", storage=tmp_path)
    assert skipped.ret == 0 and "MPS not available" in skipped.stdout and "passed" not in skipped.stdout.splitlines()[-1]


def test_a_workload_is_one_module_and_one_bench_file(tmp_path, monkeypatch):
    """tests/example_workload.py declares an MLP block; tests/data/example holds its bench file."""
    from devicebench import workloads

    # Registered for this test only: the collection tests count the suite's own workloads.
    monkeypatch.setattr(workloads, "_REGISTERED", dict(workloads._REGISTERED))
    bench_file = ROOT / "tests" / "data" / "example" / "test_mlp_block.py"
    run = run_pytest(
        str(bench_file), "--benchmark-only", "--bench-size=smoke", "--benchmark-autosave", "-p", "tests.example_workload", "-v", "-rs", storage=tmp_path
    )
    assert run.ret == 0, run.output
    assert "test_mlp_block[cpu-fp32] PASSED" in run.stdout
    assert "bf16 needs bf16 tensor cores; cpu has none" in run.stdout
    [path] = sorted(tmp_path.glob("*/*.json"))
    result = load_run(path)["benchmarks"][0]["extra_info"]
    assert result["workload"] == "mlp_block" and result["batch"] == 32 and result["width"] == 64 and result["samples_per_s"] > 0
    assert result["cpu_reference"] is None and result["ceiling"] is None  # what a reader sets fp32 against, recorded with it
    from tests import example_workload  # registered: faults and the collection read it

    workloads.register(example_workload.WORKLOAD)  # again, if an earlier test imported it
    assert example_workload.WORKLOAD.variant("bf16").cpu_reference == "fp32"
    assert example_workload.WORKLOAD.name in registry()


def _installed_plugin() -> bool:
    return any(ep.name == "devicebench.plugin" for ep in importlib.metadata.entry_points(group="pytest11"))


MY_PROJECT_TEST = '''
import torch


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))

    def forward(self, x):
        return self.layers(x)


def test_my_model(bench, device):
    torch.manual_seed(0)
    model = device.wrap(TinyNet())
    x = torch.randn(256, 32, device=device.torch_device)
    bench.run(device, lambda: model(x))
    bench.throughput("samples_per_s", 256)
'''


@pytest.mark.skipif(not _installed_plugin(), reason="devicebench is not installed here (pip install -e .): no pytest11 entry point to test")
def test_a_project_of_your_own_gets_the_fixtures_from_the_installed_plugin(tmp_path):
    project = tmp_path / "my-project"
    project.mkdir()
    (project / "test_model.py").write_text(MY_PROJECT_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS", "PYTHONPATH"))}
    env.pop("PYTEST_CURRENT_TEST", None)
    env["PYTHONNOUSERSITE"] = "1"
    cmd = [sys.executable, "-m", "pytest", "test_model.py", "--benchmark-only", "-p", "no:cacheprovider", "-p", "no:randomly", "-rs", "-v"]
    for _ in range(2):
        proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_my_model[cpu] PASSED" in proc.stdout
    assert "CUDA not available" in proc.stdout or "test_my_model[cuda:0] PASSED" in proc.stdout
    assert "test_my_model[ddp:cpu] SKIPPED" in proc.stdout  # its model lives in one process
    runs = sorted(project.glob("results/*/*/[0-9][0-9][0-9][0-9]_*.json"))
    assert [p.name[:4] for p in runs] == ["0001", "0002"]  # stored where devicebench keeps runs, with the machine
    data = json.loads(runs[0].read_text())
    assert data["machine_info"]["devicebench"]["fingerprint"]["slug"] == runs[0].parent.parent.name
    [cpu] = [b for b in data["benchmarks"] if b["name"] == "test_my_model[cpu]"]
    assert cpu["extra_info"]["samples_per_s"] > 0 and cpu["extra_info"]["cold_start_s"] > 0
    for command in (["show", "latest"], ["compare", "1", "2"]):
        proc = subprocess.run([sys.executable, "-m", "devicebench", *command], cwd=project, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr


READING_SIDE = sorted(m for m in MODULES if _side(m) == "devicebench.reading")
ENTRY_POINTS = ["devicebench.cli", "devicebench.commands", "devicebench.plugin"]


@pytest.mark.parametrize("module", ENTRY_POINTS + READING_SIDE)
def test_the_reading_side_and_the_guest_import_no_torch(module):
    """Reading stored runs needs JSON, numpy and scipy, never torch; nor does loading the plugin
    in someone else's session. Every module of the reading folder, whatever else it imports."""
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_kinds_know_the_accelerators_as_the_backends_do():
    from devicebench.measure import backends
    from devicebench.reading import kinds

    assert kinds.ACCELERATOR_BACKENDS == {name for name, backend in backends.BACKENDS.items() if backend.accelerator}
    assert {k.backend for k in kinds.KINDS} <= set(backends.BACKENDS)


def test_each_module_reads_in_one_sitting():
    """No module over 450 lines, no function over 80: a newcomer can walk the library."""
    long_modules = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 450}
    long_functions = {
        f"{name}.{node.name}": node.end_lineno - node.lineno + 1
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80
    }
    assert long_modules == {} and long_functions == {}
