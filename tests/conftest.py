"""Harness-test helpers: run the real ``benches/`` in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# tests/data holds golden runs and the benchmark that made the plain ones: not harness tests.
collect_ignore = ["data"]

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ROOT / "benches"


def pytest_collection_modifyitems(items):
    # Warnings are errors in the harness tests only: a torch warning on a GPU machine must
    # not fail a benchmark the tests never saw.
    for item in items:
        item.add_marker(pytest.mark.filterwarnings("error"), append=False)


@dataclass
class Run:
    ret: int
    stdout: str
    stderr: str
    storage: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def run_files(self) -> list[Path]:
        return sorted(self.storage.glob("*/*.json"))

    def json(self) -> dict:
        files = self.run_files()
        assert len(files) == 1, f"expected one stored run, found {files}\n{self.output}"
        return json.loads(files[-1].read_text())


def subprocess_pytest(*args: str, storage: Path, env_extra: dict | None = None) -> tuple[list[str], dict]:
    """``python -m pytest ARGS`` and its environment: outside any xdist worker, storing under ``storage``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))}
    env.pop("PYTEST_CURRENT_TEST", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # Decompressed data sets go to a cache of the test's own, not the user's.
    env["DEVICEBENCH_CACHE"] = str(storage.parent / f"{storage.name}-cache")
    env.update(env_extra or {})
    # The benchmarks run in their own order (a test may interrupt the n-th), whatever plugin shuffles the harness tests.
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", f"--benchmark-storage=file://{storage}", *args]
    return cmd, env


def run_pytest(*args: str, storage: Path, cwd: Path = ROOT, timeout: float = 300, env_extra: dict | None = None) -> Run:
    """``python -m pytest ARGS`` in a fresh process, outside any xdist worker, storing under ``storage``."""
    cmd, env = subprocess_pytest(*args, storage=storage, env_extra=env_extra)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr, storage)


def run_benches(*args: str, storage: Path, env_extra: dict | None = None) -> Run:
    return run_pytest(str(BENCHES), "--benchmark-only", "--bench-size=smoke", "--benchmark-autosave", *args, storage=storage, env_extra=env_extra)


def start_benches(*args: str, storage: Path, env_extra: dict | None = None) -> subprocess.Popen:
    """The smoke benchmarks in a process of their own, for a test to signal while they run (-v: one line each)."""
    cmd, env = subprocess_pytest(
        str(BENCHES), "--benchmark-only", "--bench-size=smoke", "--benchmark-autosave", "-v", *args, storage=storage, env_extra=env_extra
    )
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Run:
    """One smoke-size run of every benchmark, shared by all tests (and all xdist workers)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    storage = shared / "smoke-run-storage"
    cached = shared / "smoke-run.json"
    with FileLock(str(shared / "smoke-run.lock")):
        if cached.exists():
            data = json.loads(cached.read_text())
            return Run(data["ret"], data["stdout"], data["stderr"], storage)
        run = run_benches("-v", storage=storage)
        cached.write_text(json.dumps({"ret": run.ret, "stdout": run.stdout, "stderr": run.stderr}))
        return run
