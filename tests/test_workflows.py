"""The CI workflows: valid, pinned, and their gate working on real runs of the suite."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .test_compare import golden

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


def gate(tmp_path: Path, baseline: list[str], candidate: list[str]) -> tuple[subprocess.CompletedProcess, Path]:
    sides = {}
    for side, names in (("baseline", baseline), ("candidate", candidate)):
        folder = tmp_path / "runs" / side / "Linux-CPython-3.11-64bit"
        folder.mkdir(parents=True)
        for i, name in enumerate(names, start=1):
            shutil.copy(golden(name), folder / f"{i:04d}_{name}.json")
        sides[side] = str(folder.parent)
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    out = tmp_path / "gate"
    proc = subprocess.run(
        ["bash", str(ROOT / ".ci" / "bench-gate"), sides["baseline"], sides["candidate"], str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    return proc, out


def test_the_gate_passes_an_unchanged_run_and_writes_its_summary(tmp_path):
    proc, out = gate(tmp_path, ["seed-a"], ["seed-b"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("## devicebench compare") and "no regression" in summary
    assert (out / "compare.json").is_file() and (out / "report" / "index.html").is_file()


def test_the_gate_fails_a_slowed_run(tmp_path):
    proc, out = gate(tmp_path, ["seed-a", "seed-b"], ["seed-slow"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "test_matmul[cpu-fp32] (slower)" in (out / "compare.md").read_text()
    assert len(list((out / "report" / "charts").glob("*.png"))) == 5


def test_the_gate_without_runs_is_bad_input(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        ["bash", str(ROOT / ".ci" / "bench-gate"), str(tmp_path / "empty"), str(golden("seed-a")), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no runs in" in proc.stderr
