"""``devicebench ab`` on a real git repository: a project of one's own whose second commit makes
its step do a third more work, run through the installed plugin, as a user runs it."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_guest import INSTALLED, _env

pytestmark = pytest.mark.skipif(not INSTALLED, reason="devicebench is not installed here (pip install -e .): no pytest11 entry point to test")

STEP = '''import torch

MATMULS = {matmuls}
a = torch.randn(96, 96, generator=torch.Generator().manual_seed(0))


def test_step(bench, device):
    bench.run(device, lambda: [a @ a for _ in range(MATMULS)])
'''
PYTEST = ["--", "test_step.py", "--benchmark-only", "--bench-size=smoke", "-p", "no:randomly"]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """Two commits: three matmuls a call, then four (a third more work)."""
    root = tmp_path_factory.mktemp("ab") / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for matmuls, message in ((3, "three matmuls"), (4, "four matmuls: a third more work")):
        (root / "test_step.py").write_text(STEP.format(matmuls=matmuls))
        git(root, "add", "test_step.py")
        git(root, "commit", "-q", "-m", message)
    return root


def ab(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in _env().items() if k != "GITHUB_STEP_SUMMARY"}
    return subprocess.run([sys.executable, "-m", "devicebench", "ab", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def test_a_commit_doing_a_third_more_work_fails_after_one_run_a_side(repo, tmp_path):
    proc = ab(repo, "HEAD~1", "HEAD", "--out", str(tmp_path / "out"), "--seed", "1", *PYTEST)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "test_step[cpu] (more work: fails the gate)" in proc.stdout and "(1.33x)" in proc.stdout, proc.stdout
    assert "decided after 1 run a side by exact work or a failure: test_step[cpu]" in proc.stderr
    record = json.loads((tmp_path / "out" / "ab.json").read_text())
    assert [len(s["runs"]) for s in record["sides"].values()] == [1, 1]
    assert record["sides"]["base"]["commit"] == git(repo, "rev-parse", "HEAD~1")
    verdict = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert [w["name"] for w in verdict["work"] if w["more_work"]] == ["test_step[cpu]"]
    assert (tmp_path / "out" / "compare.md").read_text().count("test_step[cpu]") >= 1
    # The worktree is gone; the runs stay.
    assert git(repo, "worktree", "list").count("\n") == 0
    assert list((tmp_path / "out" / "base").rglob("0001_*.json"))


def test_the_same_commit_on_both_sides_passes(repo, tmp_path):
    proc = ab(repo, "HEAD", "HEAD", "--out", str(tmp_path / "out"), "--repeats", "2", "--seed", "2", *PYTEST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((tmp_path / "out" / "ab.json").read_text())
    assert record["rounds"] and all(sorted(order) == ["base", "head"] for order in record["rounds"])
    assert record["sides"]["base"]["commit"] == record["sides"]["head"]["commit"]


def test_the_working_tree_is_the_default_head(repo, tmp_path):
    """An uncommitted edit back to three matmuls: HEAD~1 and the working tree do the same work."""
    (repo / "test_step.py").write_text(STEP.format(matmuls=3))
    try:
        proc = ab(repo, "HEAD~1", "--out", str(tmp_path / "out"), "--repeats", "1", *PYTEST)
    finally:
        git(repo, "checkout", "--", "test_step.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "head = working tree" in proc.stderr and "with uncommitted changes" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-branch"], "'no-such-branch' is not a commit of"),
        (["HEAD", "--", "test_step.py", "--benchmark-json=x.json"], "--benchmark-json: ab stores each side's runs itself"),
        (["HEAD", "--repeats", "0"], "argument --repeats: 0 is not between 1 and 100"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(repo, args, message):
    proc = ab(repo, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


def test_outside_a_git_repository_is_one_line(tmp_path):
    proc = ab(tmp_path, "HEAD")
    assert proc.returncode == 2
    assert proc.stderr.startswith("devicebench ab: error: git rev-parse") and proc.stderr.count("\n") == 1, proc.stderr


def test_a_time_budget_starts_no_round_that_would_end_after_it(repo, tmp_path):
    proc = ab(repo, "HEAD", "HEAD", "--out", str(tmp_path / "out"), "--max-minutes", "0.001", *PYTEST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stopped: 1 runs a side: another round would pass --max-minutes 0.001" in proc.stderr
    assert len(json.loads((tmp_path / "out" / "ab.json").read_text())["rounds"]) == 1


def test_interrupted_it_keeps_the_runs_and_removes_its_worktree(repo, tmp_path):
    """Ctrl-C in a terminal: the whole process group gets SIGINT."""
    out = tmp_path / "out"
    env = {k: v for k, v in _env().items() if k != "GITHUB_STEP_SUMMARY"}
    cmd = [sys.executable, "-m", "devicebench", "ab", "HEAD~1", "HEAD", "--out", str(out), "--repeats", "3", "--seed", "3", *PYTEST]
    # As from a terminal, where Ctrl-C is not ignored: a test session started in the background
    # by a non-interactive shell (`.ci/run &`) ignores SIGINT, and its children would inherit that.
    terminal = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=terminal)
    deadline = time.monotonic() + 300
    while not list(out.glob("*/logs/run-001.log")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the first run has started
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert f"devicebench ab: interrupted; the runs so far are in {out}" in stderr and "Traceback" not in stderr
    assert json.loads((out / "ab.json").read_text())["stopped"] == "interrupted"
    assert git(repo, "worktree", "list").count("\n") == 0
