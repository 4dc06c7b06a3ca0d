"""The CI workflows: valid, pinned, and their gate working on real runs of the suite."""

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


def test_bench_gate_is_a_one_line_wrapper_of_devicebench_ab():
    script = ROOT / ".ci" / "bench-gate"
    code = [line for line in script.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert code == ['exec devicebench ab "$@"']
    proc = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: devicebench ab BASE [HEAD]"), proc.stdout + proc.stderr


def test_both_jobs_gate_with_devicebench_ab_on_their_own_machine():
    """The baseline commit runs beside the candidate in the same job: never one fresh run
    against the last file a sort of results/ happens to pick."""
    text = (ROOT / ".github" / "workflows" / "bench.yml").read_text()
    cpu, gpu = text[text.index("\n  cpu:") : text.index("\n  gpu:")], text[text.index("\n  gpu:") :]
    assert "sort | tail" not in text and "for side in" not in text
    assert 'devicebench ab "$BASE_SHA" --repeats 1 --out "$RUNNER_TEMP/work" -- benches --benchmark-only -q --bench-size=smoke --bench-instructions' in cpu
    assert 'devicebench ab "$BASE_SHA" --repeats "$CPU_REPEATS"' in cpu
    assert 'devicebench ab "$BASE_SHA" --repeats "$GPU_REPEATS"' in gpu
    assert re.search(r'GPU_REPEATS: "([5-9]|\d\d)"', text)
