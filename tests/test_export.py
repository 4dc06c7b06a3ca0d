"""``devicebench export --format github-action``: what github-action-benchmark's custom extractor reads."""

import json
import math
import re

import pytest

from devicebench.reading import export
from devicebench.reading.runs import load

from .conftest import ROOT
from .test_compare import run_cli
from .test_report import H200_RUN

CPU_RUN = next((ROOT / "results").glob("amd-epyc-f25m17-2t-6bd992aa/*/0002_*.json"))

# The extractor's rules (benchmark-action/github-action-benchmark, src/extract.ts at c38cce9):
# the output file is a JSON array, parsed by zod as BenchmarkResult objects, name and unit
# coerced to strings, value to a number (NaN fails), range and extra optional strings; no
# result at all is an error. extractRangeInfo reads a range as /(\+-|±)\s*(\d.*)/ with a
# number after the sign, to rescale it with the value when the unit changes.
RANGE = re.compile(r"(?P<prefix>(\+-|±)\s*)(?P<value>\d.*)")


def extractor_accepts(entries) -> None:
    assert isinstance(entries, list) and entries, "no benchmark result was found"
    for entry in entries:
        assert isinstance(entry, dict)
        assert isinstance(entry["name"], str) and entry["name"]
        assert isinstance(entry["value"], (int, float)) and not isinstance(entry["value"], bool) and math.isfinite(entry["value"])
        assert isinstance(entry["unit"], str)
        for optional in ("range", "extra"):
            assert optional not in entry or isinstance(entry[optional], str)
        if "range" in entry:
            match = RANGE.search(entry["range"])
            assert match and math.isfinite(float(match["value"])), entry["range"]


def exported(path, capsys) -> list[dict]:
    code, out, err = run_cli("export", str(path), "--format", "github-action", capsys=capsys)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("path", [CPU_RUN, ROOT / H200_RUN], ids=["cpu-run", "h200-run"])
def test_every_result_is_its_throughput_in_its_unit_with_the_machine_in_its_name(path, capsys):
    entries = exported(path, capsys)
    extractor_accepts(entries)
    run = load(path)
    slug = run.fingerprint["slug"]
    by_name = {e["name"]: e for e in entries}
    assert len(by_name) == len(entries) == len(run.results)
    for result in run.results:
        entry = by_name[f"{result.name} ({slug})"]
        assert entry["value"] == pytest.approx(result.throughput, rel=1e-12)
        assert entry["unit"] in {"samples/s", "TFLOP/s", "GB/s", "steps/s"}
        # The median's 95% interval, as throughput: work / the interval's ends.
        interval = result.median_interval()
        if interval is None:  # fewer than 6 rounds (a CNN's fixed epochs): no interval, no range
            assert "range" not in entry and result.rounds < 6
            continue
        low_s, high_s = interval
        half = max(entry["value"] * result.median_s / low_s - entry["value"], entry["value"] - entry["value"] * result.median_s / high_s)
        assert float(RANGE.search(entry["range"])["value"]) == pytest.approx(half, rel=1e-3)
        assert f"rounds: {result.rounds}" in entry["extra"]


def test_an_epoch_is_samples_per_second_not_a_fraction_of_an_iteration(capsys):
    """The action's own pytest extractor makes a 20 s epoch 0.05 iter/sec; here it is samples/s."""
    entries = {e["name"].split(" ")[0]: e for e in exported(CPU_RUN, capsys)}
    epoch = entries["test_cnn[cpu-resident]"]
    assert epoch["unit"] == "samples/s" and epoch["value"] > 1000
    # A copy within the device: GB/s, said to count read + write (a run stored as "gbps" too).
    h200 = {e["name"].split(" ")[0]: e for e in exported(ROOT / H200_RUN, capsys)}
    assert h200["test_ceiling[cuda:0-copy]"]["unit"] == "GB/s" and "bytes counted: read + write" in h200["test_ceiling[cuda:0-copy]"]["extra"]
    assert h200["test_transfer[cuda:0-h2d-pinned]"]["unit"] == "GB/s" and "read + write" not in h200["test_transfer[cuda:0-h2d-pinned]"]["extra"]


def test_a_benchmark_without_throughput_is_calls_per_second(tmp_path):
    from .test_compare import write

    data = json.loads(CPU_RUN.read_text())
    del data["benchmarks"][0]["extra_info"]["throughput_unit"]
    [entry] = [e for e in export.github_action(load(write(tmp_path, "run", data))) if e["name"].startswith(data["benchmarks"][0]["name"])]
    assert entry["unit"] == "calls/s" and entry["value"] == pytest.approx(1 / data["benchmarks"][0]["stats"]["median"])


def test_output_is_written_whole_and_bad_input_is_one_line(tmp_path, capsys):
    target = tmp_path / "bench.json"
    code, _, err = run_cli("export", str(CPU_RUN), "--output", str(target), capsys=capsys)
    assert code == 0 and "wrote 11 results" in err
    assert json.loads(target.read_text()) == exported(CPU_RUN, capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # no partial file left beside it
    code, _, err = run_cli("export", str(tmp_path / "missing.json"), capsys=capsys)
    assert code == 2 and err.count("\n") == 1
    code, _, err = run_cli("export", str(CPU_RUN), "--format", "csv", capsys=capsys)
    assert code == 2 and "invalid choice: 'csv'" in err
    code, _, err = run_cli("export", str(CPU_RUN), "--output", str(tmp_path / "no" / "such" / "x.json"), capsys=capsys)
    assert code == 2 and "cannot write there" in err
