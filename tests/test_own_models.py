"""The guide's example project (examples/own-models: a ResNet-18 training step, a TransformerEncoder's
inference, a hand-written Adam loop, an MLP's step eager and compiled) run through the installed plugin, and every answer the
suite gives for its own benchmarks given for these: speedup, show, compare, export, report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devicebench.reading import schema

from .conftest import ROOT
from .test_guest import INSTALLED, _env

pytestmark = pytest.mark.skipif(not INSTALLED, reason="devicebench is not installed here (pip install -e .): no pytest11 entry point to test")

EXAMPLE = ROOT / "examples" / "own-models"


def devicebench(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devicebench", *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    """The example project run twice, unchanged, as its docstring says (smoke budget, stored on request)."""
    root = tmp_path_factory.mktemp("own") / "project"
    shutil.copytree(EXAMPLE, root)
    cmd = [sys.executable, "-m", "pytest", "test_models.py", "--benchmark-only", "--bench-size=smoke", "--benchmark-autosave", "-p", "no:cacheprovider", "-p", "no:randomly", "-rs"]
    for _ in range(2):
        proc = subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def _results(root: Path, number: int) -> dict:
    [path] = root.glob(f"results/*/*/{number:04d}_*.json")
    return {b["name"]: b["extra_info"] for b in json.loads(path.read_text())["benchmarks"]}


def test_each_result_names_its_workload_and_variant(two_runs):
    info = _results(two_runs, 1)
    assert info["test_resnet18_training_step[cpu]"]["workload"] == "test_resnet18_training_step"
    assert info["test_resnet18_training_step[cpu]"]["variant"] == "default"
    assert info["test_transformer_encoder_inference[cpu-32]"]["variant"] == "32"
    loss = info["test_custom_adam_loop[cpu]"]["quality"]["final_loss"]
    assert loss["after"] == "50 Adam steps from the same start" and loss["better"] == "lower"
    assert info["test_resnet18_training_step[cpu]"]["quality"]["final_loss"]["after"].endswith(" calls")


def test_speedup_answers_for_ones_own_models(two_runs):
    proc = devicebench(two_runs, "speedup", "latest", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {(r["workload"], r["variant"]): r for r in json.loads(proc.stdout)}
    assert set(rows) == {
        ("test_custom_adam_loop", "default"),
        ("test_resnet18_training_step", "default"),
        ("test_transformer_encoder_inference", "8"),
        ("test_transformer_encoder_inference", "32"),
        ("test_mlp_training_step", "eager"),
        ("test_mlp_training_step", "default"),
    }
    assert all(r["cpu_s"] > 0 for r in rows.values())
    compiled = rows[("test_mlp_training_step", "default")]["compiled"]["cpu"]  # its compile_mode axis: eager is the reference
    assert compiled["reference"] == "cpu-eager" and compiled["compile_s"] > 0 and compiled["ratio"] > 0
    table = devicebench(two_runs, "speedup", "latest")
    assert table.returncode == 0 and "test_resnet18_training_step" in table.stdout


def test_two_unchanged_runs_do_not_gate_on_a_loss_read_after_other_work(two_runs):
    """The ResNet's loss is after as many calls as its rounds took: not judged unless both made as many."""
    first, second = _results(two_runs, 1), _results(two_runs, 2)
    proc = devicebench(two_runs, "compare", "1", "2", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # 1 would be a regression
    verdict = json.loads(proc.stdout)
    assert verdict["quality"] == []
    not_judged = {q["name"]: q["reason"] for q in verdict["quality_not_comparable"]}
    calls = [r["test_resnet18_training_step[cpu]"]["calls"] for r in (first, second)]
    if calls[0] != calls[1]:  # the rounds adapt: the usual case
        assert not_judged["test_resnet18_training_step[cpu]"] == f"final_loss read after {calls[0]} calls vs {calls[1]} calls"
    assert "test_custom_adam_loop[cpu]" not in not_judged  # the same 50 steps on both sides: judged
    # Their work is counted too, and unchanged code does the same work.
    work = {w["name"]: w for w in verdict["work"]}
    assert set(work) == set(first) and not any(w["changes"] or w["is_regression"] for w in work.values())
    assert first["test_custom_adam_loop[cpu]"]["work"]["ops"]["aten.mv"] == 2 * 50 + 1
    assert "eager operators" in first["test_mlp_training_step[cpu-default]"]["work"]["note"]  # what a compiled step's counters see


def test_compare_names_a_host_read_added_to_ones_own_step(tmp_path):
    """docs/own-models.md's example: a progress line that prints the loss each step, one run a side."""
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE, root)
    cmd = [sys.executable, "-m", "pytest", "test_models.py", "-k", "custom_adam", "--benchmark-only", "--bench-size=smoke", "--benchmark-autosave", "-p", "no:cacheprovider", "-p", "no:randomly"]
    assert subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, timeout=300).returncode == 0
    source = (root / "test_models.py").read_text()
    update = "            w = w - 0.1 * (m / (1 - 0.9**t)) / ((v / (1 - 0.999**t)).sqrt() + 1e-8)\n"
    assert update in source
    logging = '            print(f"step {t}: loss {((x @ w - y) ** 2).mean().item():.4f}", end="\\r")  # a progress line\n'
    (root / "test_models.py").write_text(source.replace(update, update + logging))
    assert subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, timeout=300).returncode == 0
    gate = devicebench(root, "compare", "1", "2")
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "test_custom_adam_loop[cpu] (more work: fails the gate):" in gate.stdout
    assert "the step now makes 50 more host reads of a device value (.item(), bool(t), printing a tensor), a sync each on a GPU: aten._local_scalar_dense 0 -> 50" in gate.stdout
    assert gate.stdout.strip().splitlines()[-1].startswith("1 regression(s): test_custom_adam_loop[cpu] (more work)")


def test_show_export_and_report_read_them(two_runs, tmp_path):
    show = devicebench(two_runs, "show", "latest")
    assert show.returncode == 0 and "test_custom_adam_loop[cpu]" in show.stdout
    # A unit of one's own (tokens_per_s), stored under its key and shown with its label.
    info = _results(two_runs, 1)["test_transformer_encoder_inference[cpu-32]"]
    assert info["throughput_unit"] == "tokens_per_s" and info["tokens_per_s"] > 0
    assert schema.unknown_keys(info) == []  # listed in the schema as <things>_per_s
    assert re.search(r"test_transformer_encoder_inference\[cpu-32\] .* tokens/s", show.stdout), show.stdout
    speedup = devicebench(two_runs, "speedup", "latest", "--format", "json")
    rows = {(r["workload"], r["variant"]): r for r in json.loads(speedup.stdout)}
    assert rows[("test_transformer_encoder_inference", "32")]["unit"] == "tokens_per_s"
    out = tmp_path / "export.json"
    export = devicebench(two_runs, "export", "latest", "--format", "github-action", "--output", str(out))
    assert export.returncode == 0, export.stderr
    entries = {entry["name"].split(" (")[0]: entry for entry in json.loads(out.read_text())}
    assert "test_resnet18_training_step[cpu]" in entries and entries["test_transformer_encoder_inference[cpu-32]"]["unit"] == "tokens/s"
    report = devicebench(two_runs, "report", "results", "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "test_transformer_encoder_inference" in summary and "tokens/s" in summary
    # pytest-benchmark's own compare reads the same files.
    files = sorted(str(p) for p in two_runs.glob("results/*/*/*.json"))
    plain = subprocess.run([str(Path(sys.executable).with_name("pytest-benchmark")), "compare", *files], cwd=two_runs, env=_env(), capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and "test_transformer_encoder_inference[cpu-32]" in plain.stdout, plain.stderr


def test_the_ci_recipe_gates_another_project(tmp_path):
    """docs/ci.md's step, two runs a side at most, on a git repository of one's own: unchanged code passes, and the summary is written."""
    root = tmp_path / "project"
    (root / "tests" / "bench").mkdir(parents=True)
    (root / "tests" / "bench" / "test_step.py").write_text(
        "import torch\n\n\ndef test_step(bench, device):\n"
        "    x = torch.randn(128, 128, device=device.torch_device)\n"
        "    bench.run(device, lambda: x @ x)\n    bench.throughput('tflops', 2 * 128**3 / 1e12)\n"
    )
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "a benchmark"]):
        subprocess.run(["git", *cmd], cwd=root, env={**_env(), **identity}, check=True, capture_output=True)
    summary = tmp_path / "summary.md"
    cmd = [sys.executable, "-m", "devicebench", "ab", "HEAD", "--repeats", "2", "--out", str(tmp_path / "ab")]
    cmd += ["--", "tests/bench", "--benchmark-only", "--bench-devices=cpu", "-q", "-p", "no:randomly"]
    gate = subprocess.run(cmd, cwd=root, env={**_env(), "GITHUB_STEP_SUMMARY": str(summary)}, capture_output=True, text=True, timeout=600)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "test_step[cpu]" in gate.stdout
    assert summary.read_text().startswith("## devicebench compare: base (") and "test_step[cpu]" in summary.read_text()
    assert (tmp_path / "ab" / "report" / "index.html").is_file()
