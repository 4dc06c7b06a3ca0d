"""Run ids as README's examples write them (``show latest``, ``compare 1 2``, ``speedup latest``)
find this machine's runs without importing torch: the reading side never imports it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devicebench.measure.fingerprint import machine_info
from devicebench.reading.host import Host
from devicebench.reading.runs import load_run

from .conftest import ROOT
from .test_compare import golden

ID_COMMANDS = [("show", "latest"), ("speedup", "latest"), ("compare", "1", "2"), ("export", "latest")]


def _store(results: Path, folder: str, number: int, when: str, fingerprint: dict) -> None:
    run = load_run(golden("seed-a"))
    run["datetime"] = f"{when}T00:00:00+00:00"
    run["machine_info"]["devicebench"]["fingerprint"] = fingerprint
    path = results / folder / "Linux-CPython-3.11-64bit" / f"{number:04d}_x.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run))


def _cli(*args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``devicebench ARGS`` in a fresh process, and the torch modules it imported."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['devicebench', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('devicebench', run_name='__main__')\n"
        "finally:\n    print('TORCH', sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    torch_modules = json.loads(proc.stderr.rsplit("TORCH ", 1)[1].replace("'", '"'))
    return proc, torch_modules


@pytest.fixture(scope="module")
def mine() -> dict:
    """This machine's fingerprint, as a run stored here records it (torch, in this process)."""
    return machine_info()["fingerprint"]


def _other(fingerprint: dict) -> dict:
    return {**fingerprint, "cpu_model": "Another CPU 9000", "id": "0123456789", "slug": "another-cpu-9000-01234567"}


@pytest.mark.parametrize("command", ID_COMMANDS, ids=" ".join)
def test_run_ids_name_this_machines_runs_without_torch(tmp_path, mine, command):
    results = tmp_path / "results"
    _store(results, mine["slug"], 1, "2026-01-01", mine)
    _store(results, mine["slug"], 2, "2026-01-02", mine)
    _store(results, _other(mine)["slug"], 3, "2026-02-01", _other(mine))  # newer, another machine's
    proc, torch_modules = _cli(*command, "--results", str(results))
    assert proc.returncode == 0, proc.stderr
    assert torch_modules == []
    if command[0] == "show":
        assert "run of 2026-01-02" in proc.stdout


def test_the_torch_free_slug_is_the_stored_one(mine):
    """The folder a run is stored under, computed without torch, where no GPU hides from the driver."""
    host = Host.read()
    if host.gpu_names is None:
        pytest.skip("CUDA_VISIBLE_DEVICES names GPUs by UUID: the slug is matched by CPU instead")
    assert host.slug == mine["slug"]


def test_a_folder_of_another_name_is_found_by_its_runs_fingerprint(tmp_path, mine):
    """A run stored where the GPUs could not be read without torch (another accelerator, a
    folder renamed) is found by its CPU, when one machine's runs match."""
    results = tmp_path / "results"
    _store(results, "renamed", 1, "2026-01-01", mine)
    _store(results, _other(mine)["slug"], 2, "2026-02-01", _other(mine))
    proc, torch_modules = _cli("show", "latest", "--results", str(results))
    assert proc.returncode == 0 and torch_modules == [], proc.stderr
    assert "run of 2026-01-01" in proc.stdout
    # Two machines' runs of this CPU (say, with and without its GPU): not this machine's to guess.
    with_gpu = {**mine, "gpu_models": ["Some GPU"], "gpu_count": 1, "id": "9876543210"}
    _store(results, "renamed-too", 3, "2026-03-01", with_gpu)
    host = Host(mine["cpu_model"], mine["cpu_threads"], mine.get("cpu_detail"), None)
    from devicebench.reading.run_ids import resolve, stored_runs, this_machines_runs
    from devicebench.reading.runs import BadRun

    assert this_machines_runs(stored_runs(results), host) == []
    with pytest.raises(BadRun, match="runs of several machines under .* and none of this one; give a path"):
        resolve("latest", results, host)


@pytest.mark.parametrize(
    ("visible", "seen"),
    [
        (None, ("NVIDIA H100 80GB HBM3", "NVIDIA H200")),
        ("1", ("NVIDIA H200",)),
        ("1,0", ("NVIDIA H200", "NVIDIA H100 80GB HBM3")),
        ("0,7,1", ("NVIDIA H100 80GB HBM3",)),  # CUDA stops at the first GPU that is not there
        ("", ()),
        ("-1", ()),
        ("GPU-5f0c1e2a", None),  # a UUID: not told without torch
    ],
)
def test_the_gpus_are_the_ones_cuda_would_show(monkeypatch, visible, seen):
    from devicebench.reading import host

    from . import fake_nvml

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make(names=("NVIDIA H100 80GB HBM3", "NVIDIA H200")))
    monkeypatch.setattr(host, "_other_accelerators", lambda: False)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    names = host.visible_nvidia_gpus()
    assert (tuple(names) if names is not None else None) == seen
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make(driver=False))
    assert host.visible_nvidia_gpus() == []  # no driver: CUDA would show none either
    monkeypatch.setattr(host, "_other_accelerators", lambda: True)
    assert host.visible_nvidia_gpus() is None  # Apple's or AMD's GPUs: not told without torch
