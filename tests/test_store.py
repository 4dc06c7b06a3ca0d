"""The store a fleet's CI jobs share, against a real git server (``git daemon`` on a local port,
receiving pushes as a hosted repository does): writers at once lose nothing, numbers stay
unique, a run is stored once, and the reading commands read what was pulled."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devicebench import cli

from .conftest import ROOT
from .test_compare import golden, run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """``git://127.0.0.1:PORT/runs.git``: an empty bare repository served by git daemon, pushes allowed."""
    base = tmp_path / "server"
    subprocess.run(["git", "init", "-q", "--bare", str(base / "runs.git")], check=True)
    port = _free_port()
    cmd = ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", f"--base-path={base}", "--listen=127.0.0.1", f"--port={port}", str(base)]
    log = tmp_path / "daemon.log"
    with open(log, "wb") as said:
        daemon = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=said)
    deadline = time.monotonic() + 20
    while True:
        if daemon.poll() is not None:
            pytest.skip(f"git daemon cannot start here: {log.read_text()[-200:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                daemon.kill()
                pytest.fail("git daemon did not listen within 20 s")
            time.sleep(0.05)
    yield f"git://127.0.0.1:{port}/runs.git"
    daemon.terminate()
    daemon.wait(timeout=10)


def _runs(folder: Path, machine: str, count: int) -> list[Path]:
    """``count`` distinct runs of one "machine" (its fingerprint slug), as a job's storage holds them."""
    source = json.loads(golden("base").read_text())
    out = folder / "Linux-CPython-3.11-64bit"
    out.mkdir(parents=True)
    paths = []
    for i in range(1, count + 1):
        run = json.loads(json.dumps(source))
        fingerprint = run["machine_info"]["devicebench"]["fingerprint"]
        fingerprint.update(slug=machine, id=f"{machine}-id")
        run["datetime"] = f"2026-12-{i:02d}T00:00:00+00:00"
        path = out / f"{i:04d}_{machine}_{i}.json"
        path.write_text(json.dumps(run))
        paths.append(path)
    return paths


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _push(url: str, *paths: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "devicebench", "store", "push", url, *map(str, paths)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_writers_at_once_lose_nothing(server, tmp_path):
    """Two CI-like jobs (two processes, two machines, and a third machine both of them ran on)
    push run after run at the same time: every run arrives once, numbered without a gap or a twin."""
    jobs = []
    for job in ("a", "b"):
        own = _runs(tmp_path / job / "own", f"machine-{job}", 4)
        shared = _runs(tmp_path / job / "shared", "machine-shared", 4)
        for path in shared:  # the same machine kind, other runs
            path.write_text(path.read_text().replace("2026-12-", f"2026-{11 if job == 'a' else 10}-"))
        jobs.append(list(zip(own, shared)))
    sent = {_digest(p) for pairs in jobs for pair in pairs for p in pair}
    retried = 0
    for a, b in zip(*jobs):  # each round: both jobs push at once
        writers = [_push(server, *a), _push(server, *b)]
        for writer in writers:
            out, err = writer.communicate(timeout=120)
            assert writer.returncode == 0, err
            retried += "another job stored runs first" in err
    copy = tmp_path / "copy"
    assert cli.main(["store", "pull", server, str(copy)]) == 0
    stored = sorted(p for p in copy.rglob("*.json") if ".git" not in p.parts)
    assert {_digest(p) for p in stored} == sent and len(stored) == len(sent)  # nothing lost, nothing twice
    for folder in ("machine-a", "machine-b", "machine-shared"):
        numbers = sorted(int(p.name[:4]) for p in stored if p.parts[-3] == folder)
        assert numbers == list(range(1, len(numbers) + 1)), folder  # claimed numbers hold across writers
    assert len([p for p in stored if p.parts[-3] == "machine-shared"]) == 8
    print(f"{retried} push(es) found the branch moved and tried again")


def test_a_run_is_stored_once_and_pull_brings_new_runs(server, tmp_path, capsys):
    first, second = _runs(tmp_path / "job", "machine-c", 2)
    assert run_cli("store", "push", server, str(first), capsys=capsys)[0] == 0
    code, out, _ = run_cli("store", "push", server, str(first.parent), capsys=capsys)  # the job run again, with one more run
    assert code == 0 and "already stored as machine-c/Linux-CPython-3.11-64bit/0001_machine-c_1.json" in out
    assert "stored as machine-c/Linux-CPython-3.11-64bit/0002_machine-c_2.json" in out
    copy = tmp_path / "copy"
    assert run_cli("store", "pull", server, str(copy), capsys=capsys)[1].startswith(f"{copy}: 2 stored run(s)")
    third = tmp_path / "0003_machine-c_3.json"
    third.write_text(second.read_text().replace("2026-12-02", "2026-12-03"))
    assert run_cli("store", "push", server, str(third), capsys=capsys)[0] == 0
    assert run_cli("store", "pull", server, str(copy), capsys=capsys)[1].startswith(f"{copy}: 3 stored run(s)")
    code, out, err = run_cli("history", str(copy), capsys=capsys)
    assert code == 0 and ": 3 runs, " in out, err
    assert (copy / ".devicebench" / "index.sqlite").exists()
    status = subprocess.run(["git", "-C", str(copy), "status", "--porcelain"], capture_output=True, text=True).stdout
    assert status == ""  # the index beside the runs is never committed


@pytest.mark.parametrize(
    "args, said",
    [
        (["push", "{server}", "{missing}"], "no such file or folder"),
        (["push", "{server}", "{not_a_run}"], "not valid JSON"),
        (["push", "{tmp}/no-repo.git", "{run}"], "cannot reach the store"),
        (["pull", "{server}", "{tmp}/copy"], "no branch devicebench-runs"),
        (["pull", "{server}", "{tmp}"], "exists and is not a copy of the store"),
        (["pull", "{server}", "{not_a_run}"], "not a folder"),
    ],
)
def test_bad_input_is_one_line(server, tmp_path, capsys, args, said):
    (tmp_path / "broken.json").write_text("{")
    [run] = _runs(tmp_path / "job", "machine-d", 1)
    values = {"server": server, "missing": str(tmp_path / "nothing"), "not_a_run": str(tmp_path / "broken.json"), "tmp": str(tmp_path), "run": str(run)}
    code, _, err = run_cli("store", *[a.format(**values) for a in args], capsys=capsys)
    assert code == 2 and said in err and len(err.strip().splitlines()) == 1, err


def test_a_copy_is_of_one_store(server, tmp_path, capsys):
    """Another store's pull into a copy is refused in one line; the next CI job's token in the URL is the same store."""
    from devicebench import store

    [run] = _runs(tmp_path / "job", "machine-e", 1)
    assert run_cli("store", "push", server, str(run), capsys=capsys)[0] == 0
    copy = tmp_path / "copy"
    assert run_cli("store", "pull", server, str(copy), capsys=capsys)[0] == 0
    assert run_cli("store", "pull", server, str(copy), capsys=capsys)[0] == 0
    tokens = [f"https://x-access-token:{t}@github.com/you/project.git" for t in ("ghs_one", "ghs_two")]
    assert store._plain(tokens[0]) == store._plain(tokens[1]) == "https://github.com/you/project.git"
    other = tmp_path / "other.git"
    subprocess.run(["git", "init", "-q", "--bare", str(other)], check=True)
    code, _, err = run_cli("store", "pull", str(other), str(copy), capsys=capsys)
    assert code == 2 and "a copy of another store" in err and len(err.strip().splitlines()) == 1


def test_a_store_named_by_a_relative_path(tmp_path, capsys, monkeypatch):
    """As a user types it, from the folder that holds it: git runs elsewhere, the path still means that repository."""
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "fleet.git")], check=True)
    [run] = _runs(tmp_path / "job", "machine-f", 1)
    monkeypatch.chdir(tmp_path)
    assert run_cli("store", "push", "fleet.git", str(run), capsys=capsys)[0] == 0
    code, out, err = run_cli("store", "pull", "fleet.git", "copy", capsys=capsys)
    assert code == 0 and out.startswith("copy: 1 stored run(s)"), err
    code, _, err = run_cli("store", "pull", "no-such.git", "other", capsys=capsys)
    assert code == 2 and "cannot reach the store" in err and not (tmp_path / "other").exists()  # nothing made for nothing


def test_without_git_it_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    [run] = _runs(tmp_path / "job", "machine-g", 1)
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    code, _, err = run_cli("store", "push", str(tmp_path / "fleet.git"), str(run), capsys=capsys)
    assert code == 2 and "git is not installed" in err and len(err.strip().splitlines()) == 1
