"""The index beside the runs: history and report read through it exactly what they read from
the files, it follows the folder (new, changed, removed, broken files), survives damage, and
the analyses it keeps give the same change points as analysing again."""

from __future__ import annotations

import filecmp
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from devicebench import cli
from devicebench.reading import history
from devicebench.reading.index import Index, Memo
from devicebench.reading.report import write
from devicebench.reading.report.collect import collect
from devicebench.reading.run_ids import stored_runs

from .conftest import ROOT
from .test_compare import run_cli
from .test_history import lay


def _history_json(folder: Path, capsys) -> str:
    assert cli.main(["history", str(folder), "--format", "json"]) == 0
    return capsys.readouterr().out


@pytest.fixture
def stored(tmp_path) -> Path:
    """The repository's stored runs and the golden ones, copied (the index is written beside them)."""
    out = tmp_path / "stored"
    shutil.copytree(ROOT / "results", out / "results")
    for path in (ROOT / "tests" / "data" / "runs").glob("*.json"):
        target = out / "golden" / "Linux-CPython-3.11-64bit" / f"0001_{path.stem}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return out


def test_the_report_from_the_index_is_the_report_from_the_files(stored, tmp_path, monkeypatch):
    """Byte for byte: the partial runs the index gives, and the whole runs read where a verdict needs them."""
    outs = {}
    for index in (False, True, True):  # without, building, then reading the index
        monkeypatch.setattr(write, "collect", lambda sources, cache, index=index, **kw: collect(sources, cache, index=index, **kw))
        outs.setdefault(index, []).append(tmp_path / f"report-{index}-{len(outs.get(index, []))}")
        assert write.write_report([stored], outs[index][-1]) is not None
    assert (stored / ".devicebench" / "index.sqlite").exists()
    for name in ("summary.md", "index.html", "change-points.md"):
        assert filecmp.cmp(outs[False][0] / name, outs[True][0] / name, shallow=False), name
        assert filecmp.cmp(outs[False][0] / name, outs[True][1] / name, shallow=False), name


def test_history_reads_the_same_through_the_index_and_its_kept_analyses(tmp_path, capsys, monkeypatch):
    results = lay(tmp_path, ["A", "S"])
    first = _history_json(results, capsys)  # builds the index and keeps each series' analysis
    again = _history_json(results, capsys)  # from the kept analyses
    monkeypatch.setattr(history, "binseg", lambda *a: pytest.fail("a kept analysis was made again"))
    assert _history_json(results, capsys) == again == first
    monkeypatch.undo()
    machines, _ = collect([results], index=False)  # every file read whole
    points = [c.as_json() for m in machines for c in history.change_points(m.runs)]
    assert json.loads(first)["change_points"] == [{"machine": machines[0].fingerprint, **p} for p in points]


def test_a_new_run_reanalyses_only_what_it_changed(tmp_path):
    """The series analyses are made again (every series has one more point), but the rank tests of segments the new run left alone are kept."""
    results = lay(tmp_path, ["A", "S", "A"])  # the matmul slower from run 15, as before from run 29
    machines, _ = collect([results])
    before = history.change_points(machines[0].runs, memo=machines[0].memo)
    machines[0].memo.save()
    newest = sorted(stored_runs(results))[-1]
    shutil.copy(newest, newest.with_name("0043_x.json"))
    machines, _ = collect([results])
    memo = machines[0].memo
    kept_before = set(memo)
    after = history.change_points(machines[0].runs, memo=memo)
    made = {k for k in memo.new if k.startswith("test ")}
    kept = {k for k in memo.used if k.startswith("test ") and k in kept_before}
    assert made and kept  # the tests of segments before the last boundary were not made again
    assert {k for k in memo.new if k.startswith("series ")}  # every series has a new point
    assert [(c.benchmark, c.run) for c in after if not c.weak] == [(c.benchmark, c.run) for c in before if not c.weak]


def test_the_index_follows_the_folder(tmp_path, capsys):
    results = lay(tmp_path, ["A"])
    folder = next(results.rglob("0001_x.json")).parent
    code, out, _ = run_cli("index", str(results), capsys=capsys)
    assert code == 0 and "14 run(s) indexed, 14 read now" in out
    assert "14 run(s) indexed, 0 read now" in run_cli("index", str(results), capsys=capsys)[1]
    (folder / "0003_x.json").unlink()
    run = json.loads((folder / "0004_x.json").read_text())
    run["benchmarks"] = run["benchmarks"][:1]
    (folder / "0004_x.json").write_text(json.dumps(run))
    (folder / "0020_x.json").write_text("{")
    code, out, err = run_cli("index", str(results), capsys=capsys)
    assert "13 run(s) indexed, 2 read now" in out and "0020_x.json: not valid JSON" in err
    machines, warnings = collect([results])
    assert len(machines[0].runs) == 13 and any("0020_x.json: not valid JSON" in w for w in warnings)
    assert len(next(r for p, r in machines[0].runs if p.name == "0004_x.json").results) == 1
    code, out, _ = run_cli("index", str(results), "--rebuild", capsys=capsys)
    assert "13 run(s) indexed, 14 read now" in out


def test_a_damaged_or_older_index_is_rebuilt(tmp_path, capsys):
    results = lay(tmp_path, ["A"])
    place = results / ".devicebench" / "index.sqlite"
    expected = _history_json(results, capsys)
    place.write_bytes(b"not a database" * 100)
    assert _history_json(results, capsys) == expected
    with sqlite3.connect(place) as db:
        db.execute("PRAGMA user_version = 999")
    db.close()
    assert _history_json(results, capsys) == expected
    assert Index.open(results).db.execute("PRAGMA user_version").fetchone()[0] != 999


def test_a_read_only_folder_keeps_its_index_in_the_users_cache(tmp_path, capsys, monkeypatch):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    results = lay(tmp_path, ["A"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for path in [results, *results.rglob("*")]:
        if path.is_dir():
            path.chmod(0o555)
    try:
        _history_json(results, capsys)
    finally:
        for path in [results, *results.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
    assert list((tmp_path / "cache" / "devicebench" / "index").glob("*.sqlite"))


def test_an_unwritable_index_place_falls_back(tmp_path):
    """A file where the index's folder should be, and a cache that cannot be made: the index lives in memory, the read still answers."""
    results = lay(tmp_path, ["A"])
    (results / ".devicebench").write_text("in the way")
    index = Index.open(results, location=results / ".devicebench" / "index.sqlite")
    assert index.location is None
    index.update(stored_runs(results))
    assert len(index.runs()[0]) == 14


def test_two_processes_building_one_index_at_once_agree(tmp_path):
    results = lay(tmp_path, ["A", "S"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "devicebench", "history", str(results), "--format", "json"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert outs[0][0] == outs[1][0] and json.loads(outs[0][0])["change_points"]


def test_binary_segmentation_finds_what_ruptures_finds():
    ruptures = pytest.importorskip("ruptures")
    rng = np.random.default_rng(0)
    series = [np.cumsum(rng.normal(0, 0.02, n)) + rng.normal(0, 0.01, n) for n in rng.integers(8, 300, 150)]
    series += [np.r_[rng.normal(0, 0.01, 40), rng.normal(0.15, 0.01, 40)], np.zeros(30)]
    for signal in series:
        for penalty in (history.PENALTY, history.GENEROUS_PENALTY):
            for min_size in (2, history.MIN_SEGMENT):
                if len(signal) < 2 * min_size:
                    continue
                pen = penalty * max(history._spread(signal), 1e-6) ** 2 * math.log(len(signal))
                expected = ruptures.Binseg(model="l2", min_size=min_size, jump=1).fit(signal).predict(pen=pen)[:-1]
                assert history.binseg(signal, min_size, pen) == expected


def test_a_memo_that_cannot_be_saved_loses_nothing(tmp_path):
    memo = Memo(tmp_path / "no" / "such" / "folder" / "index.sqlite", {})
    memo["series x"] = "[]"
    memo.save()  # a cache: nothing raised
    assert memo.get("series x") == "[]"
