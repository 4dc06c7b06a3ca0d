"""The CI workflows: valid, pinned, and their gate working on real runs of the suite."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "bench.yml"}


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint not installed (pip install -e '.[test]')")
def test_actionlint_accepts_every_workflow():
    proc = subprocess.run(["actionlint", *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_action_is_pinned_to_a_full_commit_sha():
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            match = re.search(r"uses:\s*(\S+)", line)
            if match:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", match.group(1)), f"{workflow.name}: {line.strip()}"
                assert re.search(r"# v\d", line), f"{workflow.name}: say which release the SHA is: {line.strip()}"


def test_permissions_are_minimal_and_superseded_runs_cancelled():
    for workflow in WORKFLOWS:
        text = workflow.read_text()
        assert "permissions:\n  contents: read" in text
        assert "cancel-in-progress: true" in text


INTERLEAVED = Path(__file__).parent / "data" / "runs" / "interleaved"


def gate(tmp_path: Path, baseline: str, candidate: str, folder: str = "runs") -> tuple[subprocess.CompletedProcess, Path]:
    """``.ci/bench-gate`` on copies of two sides of the interleaved runs (A, B unchanged; S matmul slower)."""
    sides = {}
    for side, name in (("baseline", baseline), ("candidate", candidate)):
        dest = tmp_path / folder / side / "Linux-CPython-3.11-64bit"
        shutil.copytree(INTERLEAVED / name, dest)
        sides[side] = str(dest.parent)
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    out = tmp_path / folder / "gate out"
    proc = subprocess.run(
        ["bash", str(ROOT / ".ci" / "bench-gate"), sides["baseline"], sides["candidate"], str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    return proc, out


def test_the_gate_passes_unchanged_runs_and_writes_its_summary(tmp_path):
    proc, out = gate(tmp_path, "A", "B")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("## devicebench compare: 7 runs") and "no regression" in summary
    assert (out / "compare.json").is_file() and (out / "report" / "index.html").is_file()


def test_the_gate_fails_slowed_runs(tmp_path):
    proc, out = gate(tmp_path, "A", "S")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 regression(s): `test_matmul[cpu-fp32]` (slower)" in (out / "compare.md").read_text()
    assert len(list((out / "report" / "charts").glob("*.png"))) == 3


def test_the_gate_takes_paths_with_spaces(tmp_path):
    proc, out = gate(tmp_path, "A", "S", folder="runs of mine")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (out / "report" / "index.html").is_file() and "could not" not in proc.stderr


def test_the_gate_without_runs_is_bad_input(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        ["bash", str(ROOT / ".ci" / "bench-gate"), str(tmp_path / "empty"), str(INTERLEAVED / "A"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "no stored runs in this folder" in proc.stderr


def test_the_gpu_job_runs_baseline_and_candidate_interleaved_on_its_machine():
    """Not one fresh run against the last file a sort of results/ happens to pick."""
    text = (ROOT / ".github" / "workflows" / "bench.yml").read_text()
    gpu = text[text.index("\n  gpu:") :]
    assert "sort | tail" not in gpu and "git worktree add" in gpu
    assert 'for _ in $(seq "$GPU_REPEATS")' in gpu and "for side in baseline candidate" in gpu
    assert re.search(r'GPU_REPEATS: "([5-9]|\d\d)"', text)
    assert 'bash .ci/bench-gate "$RUNNER_TEMP/runs/baseline" "$RUNNER_TEMP/runs/candidate"' in gpu
