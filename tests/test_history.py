"""devicebench history on the committed gate runs: 14 unchanged runs (A) then 14 with the matmul
15% slower (S), measured interleaved on the 2-core machine and laid here one history after the
other, as a change would lay them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devicebench import cli
from devicebench.reading import history

from .conftest import ROOT

GATE = ROOT / "tests" / "data" / "runs" / "gate"


def lay(tmp_path: Path, groups: list[str], scale_after: int | None = None, scale: float = 1.0, only: str | None = None) -> Path:
    """The runs of ``groups`` as one history (numbered and dated in that order); from run
    ``scale_after`` on, every median and round scaled by ``scale`` (a machine that slowed as a
    whole), or only benchmark ``only``'s (its code slowed)."""
    folder = tmp_path / "results" / "machine" / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    i = 0
    for group in groups:
        for path in sorted((GATE / group).glob("*.json")):
            run = json.loads(path.read_text())
            run["datetime"] = f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00+00:00"
            if scale_after is not None and i >= scale_after:
                for bench in (b for b in run["benchmarks"] if only in (None, b["name"])):
                    stats = bench["stats"]
                    for key in ("min", "max", "mean", "median", "q1", "q3"):
                        stats[key] *= scale
                    stats["data"] = [v * scale for v in stats["data"]]
            (folder / f"{i + 1:04d}_x.json").write_text(json.dumps(run))
            i += 1
    return tmp_path / "results"


def _history(folder: Path, capsys) -> list[dict]:
    assert cli.main(["history", str(folder), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)["change_points"]


def test_a_slowed_workload_is_found_at_its_first_slowed_run_and_nowhere_else(tmp_path, capsys):
    points = _history(lay(tmp_path, ["A", "S"]), capsys)
    confirmed = [p for p in points if not p["weak"]]
    assert [(p["benchmark"], p["run"]) for p in confirmed] == [("test_matmul[cpu-fp32]", "0015_x.json")]
    [matmul] = confirmed
    assert matmul["before_run"] == "0014_x.json" and 1.10 < matmul["ratio_low"] < matmul["ratio"] < matmul["ratio_high"] < 1.2
    assert matmul["p"] < 0.001 and matmul["cause"] == "code or environment" and matmul["runs_before"] == 14
    assert not [p for p in points if p["index"] < 14]  # none among the unchanged runs, weak ones included


def test_an_unchanged_history_has_no_change_point(tmp_path, capsys):
    assert _history(lay(tmp_path, ["A"]), capsys) == []


def test_a_change_the_ceilings_share_is_the_machines(tmp_path, capsys):
    """Every benchmark, the ceilings too, 25% slower from run 8 on: the machine moved, not the code."""
    points = _history(lay(tmp_path, ["A"], scale_after=7, scale=1.25), capsys)
    confirmed = {p["benchmark"]: p for p in points if not p["weak"]}
    assert "test_matmul[cpu-fp32]" in confirmed and "test_ceiling[cpu-matmul-fp32]" in confirmed
    assert {p["cause"] for p in confirmed.values()} == {"machine"}
    assert all(p["run"] == "0008_x.json" for p in confirmed.values())


def test_the_table_names_the_runs_the_ratio_and_the_evidence(tmp_path, capsys):
    assert cli.main(["history", str(lay(tmp_path, ["A", "S"]))]) == 0
    out = capsys.readouterr().out
    assert "28 runs, 1 confirmed and " in out and "test_matmul[cpu-fp32]" in out and "0014 -> 0015" in out


@pytest.mark.parametrize("bad", [["/no/such/folder"], ["--threshold", "-1"]])
def test_bad_input_is_one_line(bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["history", *bad])
    assert exit_.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_candidates_come_from_ruptures_on_the_series_spread():
    steady = [0.0, 0.01, -0.01, 0.005, -0.005, 0.0, 0.01, -0.01]
    assert history.candidates(steady) == []
    assert history.candidates(steady + [v + 0.3 for v in steady]) == [8]  # a step of 35% in log seconds
    assert history.candidates(steady[:7]) == []  # fewer than two segments' worth of runs


def test_the_recorded_error_rates_hold():
    """The rates docs/comparing.md states (python -m tests.history_rates), from the same seeded draws."""
    from . import history_rates

    confirmed, weak = history_rates.false_rate()
    assert confirmed <= 0.02 and weak <= 1.0  # per 100 runs per benchmark
    assert history_rates.detection(0.20, after=6)[0] >= 0.95
    assert 0.4 <= history_rates.detection(0.10, after=6)[0] <= 0.65
    assert history_rates.detection(0.10, after=4)[1] >= 0.9  # named, if not yet confirmed
    assert history_rates.detection(0.20, after=4, benchmark=history_rates.LINREG)[1] >= 0.5


def test_a_noisy_benchmarks_step_after_four_runs_is_named(tmp_path, capsys):
    """Ten unchanged runs of the linear regression (run-to-run spread about 9%), then four 19% slower:
    too few and too noisy to confirm, and named as a weak change point at the first slowed run."""
    points = _history(lay(tmp_path, ["A"], scale_after=10, scale=1.19, only=history_rates_linreg()), capsys)
    named = [p for p in points if p["benchmark"] == history_rates_linreg()]
    assert [(p["run"], p["before_run"]) for p in named] == [("0011_x.json", "0010_x.json")]
    assert named[0]["ratio"] > 1.05 and named[0]["runs_after"] == 4
    assert all(p["benchmark"] == history_rates_linreg() for p in points)  # nothing else named


def history_rates_linreg() -> str:
    from .history_rates import LINREG

    return LINREG


def test_the_report_names_the_change_and_draws_it(tmp_path, capsys):
    """The report's summary names the change point since the first run; its first screen draws it; the matmul's chart marks it."""
    results = lay(tmp_path, ["A", "S"])
    assert cli.main(["report", str(results), "--out", str(tmp_path / "report")]) == 0
    summary = (tmp_path / "report" / "summary.md").read_text()
    plain = summary.replace("\\[", "[").replace("\\]", "]")  # Markdown's escapes
    first_screen = plain.split("\n## ")[1]
    assert "- history: 1 change point(s) since 2026-01-01" in first_screen
    assert "more than named here, all listed in the report's change-points.md" in first_screen  # its weak ones
    assert "- latest change: test_matmul[cpu-fp32] 1.13x the time from 0015\n" in first_screen
    assert "- latest: test_matmul[cpu-fp32] 1.13x the time [1.11-1.18] from 0015 (after 0014)" in plain
    every = (tmp_path / "report" / "change-points.md").read_text().replace("\\[", "[").replace("\\]", "]")
    assert "- test_matmul[cpu-fp32] 1.13x the time [1.11-1.18] from 0015 (after 0014)" in every
    page = (tmp_path / "report" / "index.html").read_text()
    summary_html = page.split("id='summary'")[1].split("</section>")[0]
    assert "change point(s) over its history" in summary_html


def test_the_first_screen_names_the_latest_and_the_largest():
    """Confirmed change points first (weak ones only where none is confirmed): the latest by run, then the largest of the others."""
    from devicebench.reading.report.summary import notable

    def point(index, ratio, weak=False):
        return history.ChangePoint("b", f"{index:04d}", f"{index - 1:04d}", index, ratio, ratio, ratio, 0.01, 0.01, 5, 5, weak, "code or environment")

    points = [point(10, 1.2), point(20, 0.5), point(30, 1.1), point(40, 1.05), point(45, 3.0, weak=True)]
    latest, largest = notable(points, 2)
    assert [c.index for c in latest] == [40, 30] and [c.index for c in largest] == [20, 10]  # 0.5x moved more than 1.2x
    latest, largest = notable([point(5, 1.3, weak=True), point(9, 1.1, weak=True)], 1)
    assert [c.index for c in latest] == [9] and [c.index for c in largest] == [5]
