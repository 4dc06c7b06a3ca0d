"""``devicebench speedup`` and ``devicebench report`` on golden runs made by the real suite."""

import copy
import json
import re
import shutil
from pathlib import Path

import pytest

from devicebench.reading import render, report, speedup
from devicebench.reading.runs import as_run, load_run

from .test_compare import golden, run_cli


def with_gpu(run: dict) -> dict:
    """The CPU run plus the same benchmarks relabelled as cuda:0 (4x faster) and dp (5x)."""
    run = copy.deepcopy(run)
    extra = []
    for bench in run["benchmarks"]:
        for device, factor in (("cuda:0", 4.0), ("dp", 5.0)):
            twin = copy.deepcopy(bench)
            twin["name"] = twin["name"].replace("[cpu-", f"[{device}-")
            twin["fullname"] = twin["fullname"].replace("[cpu-", f"[{device}-")
            info = twin["extra_info"]
            info["device"] = device
            twin["stats"]["median"] /= factor
            unit = info.get("throughput_unit")
            if unit:
                info[unit] *= factor
            if device == "dp":
                info["dp_replicas"] = 1
            extra.append(twin)
    run["benchmarks"] += extra
    return run


def test_speedup_matrix_of_a_cpu_run(capsys):
    code, out, _ = run_cli("speedup", str(golden("base")), capsys=capsys)
    assert code == 0
    matmul = next(line for line in out.splitlines() if line.startswith("matmul"))
    assert re.search(r"cpu \d+%", matmul)  # efficiency against the same run's fp32 ceiling


def test_speedup_matrix_with_gpus():
    rows = {(r.workload, r.variant): r for r in speedup.matrix(with_gpu(load_run(golden("base"))))}
    matmul = rows[("matmul", "fp32")]
    assert abs(matmul.gpu_over_cpu - 4.0) < 1e-9 and abs(matmul.dp_over_gpu - 1.25) < 1e-9
    assert set(matmul.efficiency) == {"cpu", "cuda:0"}
    assert matmul.dp_replicas == 1


def test_dp_and_ddp_scaling_sit_side_by_side(capsys):
    """A 2-GPU run, relabelled from a CPU one: dp:1 and dp (2 GPUs), ddp:cuda:1 and ddp:cuda (2 ranks)."""
    run = with_gpu(load_run(golden("base")))
    extra = []
    for bench in [b for b in run["benchmarks"] if b["extra_info"]["device"] == "cuda:0"]:
        for device, factor, world in (("dp:1", 0.9, 1), ("ddp:cuda:1", 1.0, 1), ("ddp:cuda", 1.8, 2)):
            twin = copy.deepcopy(bench)
            twin["name"] = twin["fullname"] = twin["name"].replace("[cuda:0-", f"[{device}-")
            info = twin["extra_info"]
            info.update(device=device, **({"dp_replicas": world} if device.startswith("dp") else {"world_size": world}))
            twin["stats"]["median"] /= factor
            if info.get("throughput_unit"):
                info[info["throughput_unit"]] *= factor
            extra.append(twin)
    for bench in run["benchmarks"]:
        if bench["extra_info"]["device"] == "dp":
            bench["extra_info"]["dp_replicas"] = 2  # 1.25x cuda:0 on two GPUs: 62.5% scaling
    run["benchmarks"] += extra
    row = {(r.workload, r.variant): r for r in speedup.matrix(run)}[("matmul", "fp32")]
    assert list(row.scaling) == ["dp:1", "dp", "ddp:cuda:1", "ddp:cuda"]
    efficiency = {device: round(s.efficiency, 3) for device, s in row.scaling.items()}
    assert efficiency == {"dp:1": 0.9, "dp": 0.625, "ddp:cuda:1": 1.0, "ddp:cuda": 0.9}


def test_a_gpu_only_variant_is_compared_with_the_cpu_reference():
    run = with_gpu(load_run(golden("base")))
    for bench in run["benchmarks"]:
        if bench["name"] == "test_linear_regression[cuda:0-fused]":
            bench["extra_info"]["variant"] = "cudagraph"
            bench["name"] = bench["fullname"] = "test_linear_regression[cuda:0-cudagraph]"
    row = {(r.workload, r.variant): r for r in speedup.matrix(run)}[("linear_regression", "cudagraph")]
    assert row.cpu_reference == "cpu-eager" and row.gpu_over_cpu is not None


H200_RUN = "results/intel-xeon-16t-nvidia-h200-x1-6fb4e97f/Linux-CPython-3.12-64bit/0001_51ce617.json"


def test_each_gpu_variant_is_set_against_the_cpu_doing_the_same_work(capsys):
    """On the stored H200 run: bf16 and cudagraph CNN epochs keep the data on the device, as resident does."""
    from .conftest import ROOT

    run = load_run(ROOT / H200_RUN)
    rows = {(r.workload, r.variant): r for r in speedup.matrix(run)}
    samples_per_s = {b["name"]: b["extra_info"].get("samples_per_s") for b in run["benchmarks"]}
    expected = {
        ("cnn", "loader"): "cpu-loader",
        ("cnn", "resident"): "cpu-resident",
        ("cnn", "bf16"): "cpu-resident",
        ("cnn", "cudagraph"): "cpu-resident",
        ("matmul", "fp32"): "cpu-fp32",
        ("matmul", "tf32"): "cpu-fp32",
        ("matmul", "bf16"): "cpu-fp32",
        ("linear_regression", "eager"): "cpu-eager",
        ("linear_regression", "fused"): "cpu-fused",
        ("linear_regression", "cudagraph"): "cpu-eager",
    }
    assert {key: rows[key].cpu_reference for key in expected} == expected
    for (workload, variant), reference in expected.items():
        if workload == "cnn":
            ratio = samples_per_s[f"test_cnn[cuda:0-{variant}]"] / samples_per_s[f"test_cnn[{reference}]"]
            assert rows[(workload, variant)].gpu_over_cpu == pytest.approx(ratio, rel=1e-12)
    assert rows[("cnn", "cudagraph")].gpu_over_cpu == pytest.approx(14.94, abs=0.01)  # not 44.4x against loader
    assert rows[("cnn", "bf16")].gpu_over_cpu == pytest.approx(3.08, abs=0.01)  # not 9.2x
    code, out, _ = run_cli("speedup", str(ROOT / H200_RUN), "--format", "markdown", capsys=capsys)
    assert code == 0 and "| cnn | cudagraph | 3.655 s | 244.2 ms | 14.9x vs cpu-resident |" in out


def test_ratios_between_different_work_are_not_computed():
    """The runs before the global batch was equal: ddp:cpu trained 256 samples a step, one process 128."""
    from .conftest import ROOT

    [old] = (ROOT / "results").glob("amd-epyc-2t-540f5fe3/*/0006_*.json")
    rows = {(r.workload, r.variant): r for r in speedup.matrix(load_run(old))}
    loader = rows[("cnn", "loader")].scaling["ddp:cpu"]
    assert loader.efficiency is None
    assert loader.note == "not like for like: global batch 256 vs 128; loader workers per process 0 vs 2"


def _three_runs(tmp_path: Path) -> Path:
    results = tmp_path / "results" / "machine" / "Linux-CPython-3.11-64bit"
    results.mkdir(parents=True)
    for i, name in enumerate(["seed-a", "seed-b", "seed-slow"], start=1):
        run = json.loads(golden(name).read_text())
        run["datetime"] = f"2026-01-0{i}T00:00:00+00:00"
        (results / f"000{i}_x_2026010{i}_000000.json").write_text(json.dumps(run))
    return results


def test_report_writes_html_markdown_and_charts(tmp_path, capsys):
    results = _three_runs(tmp_path)
    (results / "0004_broken_20260104_000000.json").write_text("{")
    out = tmp_path / "report"
    code, stdout, err = run_cli("report", str(tmp_path / "results"), "--out", str(out), capsys=capsys)
    assert code == 0
    assert "warning: skipped" in err and "0004_broken" in err
    index = (out / "index.html").read_text()
    summary = (out / "summary.md").read_text()
    charts = sorted((out / "charts").glob("*.png"))
    n_benchmarks = len(load_run(golden("seed-a"))["benchmarks"])
    assert len(charts) == n_benchmarks and f"{n_benchmarks} charts, 3 runs, 1 machines" in stdout
    assert index.count("<img") == n_benchmarks and "data:image/png;base64," in index
    assert not re.search(r"(src|href)=['\"]https?:", index)  # opens offline: nothing fetched
    # Every axis says what it shows and which way is better.
    assert "alt='test_matmul[cpu-fp32]: TFLOP/s (higher is better) per run'" in index
    # One run against the next with fewer than 5 earlier runs: no spread known, no verdict.
    assert "none found (" in summary and "verdicts inconclusive)" in summary
    # A job summary shows no relative images: the history is a table there.
    assert "](" not in summary and "<img" not in summary
    assert re.search(r"\| `test_matmul\[cpu-fp32\]` \| 3 \| \S+ TFLOP/s \| \S+ TFLOP/s \| \S+x \(higher is better\) \|", summary)
    assert "| workload | variant |" in summary


def test_a_benchmark_missing_from_the_latest_run_keeps_its_unit_in_the_summary(tmp_path, capsys):
    """Its history is throughput (higher is better), whatever the latest run holds."""
    results = tmp_path / "results" / "machine" / "Linux-CPython-3.11-64bit"
    results.mkdir(parents=True)
    for i, name in enumerate(["base", "rerun", "only-matmul"], start=1):  # the last has only the matmul
        shutil.copy(golden(name), results / f"000{i}_x_2026010{i}_000000.json")
    out = tmp_path / "report"
    code, _, err = run_cli("report", str(tmp_path / "results"), "--out", str(out), capsys=capsys)
    assert code == 0, err
    summary = (out / "summary.md").read_text()
    row = next(line for line in summary.splitlines() if line.startswith("| `test_linear_regression[cpu-eager]` | 2 |"))
    assert re.fullmatch(r"\| `test_linear_regression\[cpu-eager\]` \| 2 \| \S+ steps/s \| \S+ steps/s \| \S+x \(higher is better\) \|", row), row


def test_the_report_answers_first(tmp_path, capsys):
    """The stored runs: the summary names each machine's speed-up, what changed and what to doubt, before anything else."""
    from .conftest import ROOT

    # The stored runs as they were when this was written (results/ grows; these do not change).
    kept = ("amd-epyc-2t-540f5fe3/*/*.json", "intel-xeon-16t-nvidia-h200-x1-6fb4e97f/*/*.json", "amd-epyc-f25m17-2t-6bd992aa/*/000[12]_*.json")
    for pattern in kept:
        for path in (ROOT / "results").glob(pattern):
            target = tmp_path / "results" / path.relative_to(ROOT / "results")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    out = tmp_path / "report"
    code, _, err = run_cli("report", str(tmp_path / "results"), "--out", str(out), capsys=capsys)
    assert code == 0, err
    summary = (out / "summary.md").read_text()
    head = summary.split("## Machines side by side")[0]
    # Each machine in short lines under its name.
    h200 = head.split("### Intel(R) Xeon(R) Processor (16 threads), NVIDIA H200: 1 run(s)\n\n")[1].split("\n\n")[0].splitlines()
    assert h200[0] == "- training (CNN epochs) runs 3.08x to 14.9x faster on cuda:0 than on its CPU, like for like"
    assert "- since the previous run: one run: nothing to compare yet" in h200
    doubt = next(line for line in h200 if line.startswith("- doubt: "))
    assert "interrupted" in doubt and "5 median(s) disagree with CUDA events" in doubt
    assert max(map(len, head.splitlines())) < 300  # lines a person scans, not paragraphs
    # The two CPU machines read alike: their fingerprints tell them apart.
    assert "AMD EPYC (2 threads), no GPU \\[540f5fe3\\]" in head and "AMD EPYC (2 threads), no GPU \\[6bd992aa\\]" in head
    assert "5 noisy (stopped before the median was known)" in head
    assert "matmul fp32 on cuda:0: 79% of its matmul-fp32 ceiling" in head
    # Machines side by side where they ran the same benchmark; the GPU machine first.
    side = summary.split("## Machines side by side")[1].split("\n## ")[0]
    assert re.search(r"\| `test_matmul\[cpu-fp32\]` \| 0.8681 TFLOP/s \| 0.1397 TFLOP/s \| 0.1364 TFLOP/s \|", side)
    index = (out / "index.html").read_text()
    assert index.index("id='summary'") < index.index("<img") and "interrupted" in index and "disagree with CUDA events" in index
    # Charts only with history: the one-run H200 has table rows, no chart.
    assert "test_matmul[cuda:0-fp32]" not in " ".join(re.findall(r"alt='([^']*)'", index))
    assert "The run&#x27;s benchmarks (one run: no history to chart yet)" in index


def test_a_report_reads_runs_again_from_its_cache_and_draws_only_what_changed(tmp_path, capsys):
    results = _three_runs(tmp_path)
    out = tmp_path / "report"
    code, first, _ = run_cli("report", str(tmp_path / "results"), "--out", str(out), capsys=capsys)
    page = (out / "index.html").read_text()
    cached = sorted((out / ".cache" / "runs").glob("*.json"))
    assert code == 0 and len(cached) == 3
    code, again, _ = run_cli("report", str(tmp_path / "results"), "--out", str(out), capsys=capsys)
    assert code == 0 and "5 charts, 5 unchanged since the last report" in again
    assert (out / "index.html").read_text() == page  # the same report from the cache as from the runs
    # A run that changed is read again; its old entry and charts go.
    run = json.loads((results / "0003_x_20260103_000000.json").read_text())
    run["benchmarks"][0]["stats"]["median"] *= 2
    (results / "0003_x_20260103_000000.json").write_text(json.dumps(run))
    code, third, _ = run_cli("report", str(tmp_path / "results"), "--out", str(out), capsys=capsys)
    assert code == 0 and "4 unchanged since the last report" in third
    assert len(list((out / ".cache" / "runs").glob("*.json"))) == 3 and len(list((out / "charts").glob("*.png"))) == 5
    assert (out / "index.html").read_text() != page


def test_report_without_runs_is_bad_input(tmp_path, capsys):
    code, _, err = run_cli("report", str(tmp_path), "--out", str(tmp_path / "out"), capsys=capsys)
    assert code == 2 and "no stored runs" in err
    code, _, err = run_cli("report", str(tmp_path / "nope"), "--out", str(tmp_path / "out"), capsys=capsys)
    assert code == 2 and "no such folder" in err


def test_history_keeps_every_run_in_order():
    runs = [(golden(n), as_run(load_run(golden(n)))) for n in ("seed-a", "seed-b", "seed-slow")]
    series = report.history(runs)["test_matmul[cpu-fp32]"]
    assert [point.run for point in series] == [0, 1, 2]
    # Throughput, so that up is better: the slow run is lower, inside its median's interval.
    assert series[2].value < series[0].value
    assert all(p.low <= p.value <= p.high for p in series)


def test_ddp_scaling_efficiency_is_against_one_process_in_the_same_run(smoke_run):
    [path] = smoke_run.run_files()
    rows = {(r.workload, r.variant): r for r in speedup.matrix(load_run(path))}
    scaling = rows[("cnn", "resident")].scaling["ddp:cpu"]
    run = load_run(path)
    by = {b["name"]: b["extra_info"].get("samples_per_s") for b in run["benchmarks"]}
    assert scaling.world == 2 and scaling.reference == "cpu"
    assert abs(scaling.efficiency - by["test_cnn[ddp:cpu-resident]"] / (2 * by["test_cnn[cpu-resident]"])) < 1e-9


def test_show_says_how_well_each_median_is_known(tmp_path, capsys):
    from .test_compare import write

    run = load_run(golden("seed-a"))
    first = run["benchmarks"][0]["extra_info"]
    first.update(target_precision=0.01, stop_reason="time limit", median_precision=0.042, throttled_rounds=2)
    second = run["benchmarks"][1]["extra_info"]
    second.update(target_precision=0.01, stop_reason="converged", median_precision=0.004)
    code, out, _ = run_cli("show", write(tmp_path, "run", run), capsys=capsys)
    assert code == 0
    assert "+-4.2%, time limit (noisy), throttled 2 rounds" in out and "+-0.4%, converged" in out
    # The first whole run whose rounds stopped on their own: CNN epochs are a fixed count,
    # never called noisy for stopping at it.
    [adaptive] = Path(__file__).parent.parent.glob("results/amd-epyc-f25m17-2t-6bd992aa/*/0002_*.json")
    code, out, _ = run_cli("show", str(adaptive), capsys=capsys)
    assert re.search(r"test_cnn\[cpu-resident\].*fixed count", out) and "round limit" not in out
    assert re.search(r"test_ceiling\[cpu-copy\].*\+-\d\.\d%, converged", out)
    # A run stored before rounds stopped on their own: its rounds still tell how well its median is known.
    code, out, _ = run_cli("show", str(golden("seed-b")), capsys=capsys)
    assert re.search(r"test_matmul\[cpu-fp32\]\s+\S+ ms\s+\+-\d", out)


def test_speedup_sets_work_per_joule_against_the_cpus_where_both_were_measured(tmp_path, capsys):
    run = with_gpu(load_run(golden("base")))
    for bench in run["benchmarks"]:
        if bench["name"] in ("test_matmul[cpu-fp32]", "test_matmul[cuda:0-fp32]"):
            bench["extra_info"]["energy_per_call_j"] = 2.0 if "cpu" in bench["name"] else 1.0
    [row] = [r for r in speedup.matrix(run) if (r.workload, r.variant) == ("matmul", "fp32")]
    assert row.per_joule["cuda:0"] / row.per_joule["cpu"] == pytest.approx(2.0)
    from devicebench.reading import render

    assert "cuda:0" in render.speedups([row], "table") and "(2.00x cpu)" in render.speedups([row], "table")
    plain = speedup.matrix(load_run(golden("base")))
    assert "work per joule: not measured" in render.speedups(plain, "table")


def test_speedup_says_each_thing_once_in_its_unit(capsys):
    """On the stored H200 run: transfers as GB/s, one-replica DataParallel only in its own columns,
    ratios to three significant digits; a CPU-only run has no empty GPU columns."""
    from .conftest import ROOT

    code, out, _ = run_cli("speedup", str(ROOT / H200_RUN), capsys=capsys)
    assert code == 0
    rows = {tuple(line.split()[:2]): line for line in out.splitlines() if line.split()[:1] in (["matmul"], ["transfer"], ["cnn"])}
    assert "55.01 GB/s" in rows[("transfer", "h2d-pinned")]  # stored under the old key "gbps", read as GB/s
    assert "0.945x (1 replica)" in rows[("matmul", "fp32")] and "dp x1" not in out and "DP/DDP" not in out
    assert "360x vs cpu-fp32" in rows[("matmul", "bf16")] and not re.search(r"\d\.\d{4,}x", out)
    [cpu_only] = (ROOT / "results").glob("amd-epyc-f25m17-2t-6bd992aa/*/0002_*.json")
    code, out, _ = run_cli("speedup", str(cpu_only), capsys=capsys)
    header = next(line for line in out.splitlines() if line.startswith("workload"))
    assert "cuda:0" not in header and "dp " not in header and "ddp:cpu x2" in out


def test_a_copy_counts_read_and_write_and_old_runs_read_gbps_as_gigabytes(capsys):
    from .conftest import ROOT

    run = load_run(ROOT / H200_RUN)
    stored = {b["name"]: b["extra_info"] for b in run["benchmarks"]}
    assert stored["test_ceiling[cuda:0-copy]"]["throughput_unit"] == "gbps" and "gbps" in stored["test_ceiling[cuda:0-copy]"]  # as stored
    results = {r.name: r for r in as_run(run).results}
    assert results["test_ceiling[cuda:0-copy]"].unit == "gb_per_s" and results["test_ceiling[cuda:0-copy]"].bytes_counted == "read + write"
    assert results["test_transfer[cuda:0-h2d-pinned]"].bytes_counted is None
    code, out, _ = run_cli("show", str(ROOT / H200_RUN), capsys=capsys)
    assert "4,013 GB/s (read + write)" in out and "gbps" not in out


def test_run_quality_names_what_to_doubt():
    """Each flag the summary can raise, from a run that has it (and none from one that has none)."""
    from devicebench.reading.runs import as_run

    clean = load_run(golden("seed-a"))
    assert report.completeness_flags(as_run(clean)) == []
    run = copy.deepcopy(clean)
    first, second = run["benchmarks"][0], run["benchmarks"][1]
    first["extra_info"].update(target_precision=0.01, stop_reason="time limit")
    second["extra_info"].update(throttled_rounds=4)
    run["devicebench"].update(interrupted=True, gpu_shared=[{"gpu": 0, "pids": [4242]}])
    run["devicebench"]["failed"] = [{"fullname": "benches/test_x.py::test_x[cpu-a]", "error": "boom"}]
    flags = report.completeness_flags(as_run(run))
    assert flags == [
        "interrupted: benchmarks it did not reach are missing",
        "1 failed: test_x[cpu-a]",
        f"1 noisy (stopped before the median was known): {first['name']}",
        f"1 with throttled GPU rounds: {second['name']}",
        "another process used the GPU during the run",
    ]


def test_a_result_is_read_against_what_it_recorded_and_an_old_one_against_what_was_declared_then():
    from devicebench.reading.runs import read_against

    recorded = {"workload": "matmul", "variant": "tf32", "quality": {}, "cpu_reference": "bf16", "ceiling": None}
    assert read_against(recorded, "cpu_reference") == "bf16" and read_against(recorded, "ceiling") is None
    old = {"workload": "matmul", "variant": "tf32"}  # stored before results recorded it
    assert read_against(old, "cpu_reference") == "fp32" and read_against(old, "ceiling") == "matmul-tf32"
    own = {"workload": "matmul", "variant": "tf32", "quality": {}}  # a user's benchmark of that name records none
    assert read_against(own, "cpu_reference") is None


def test_no_efficiency_above_its_ceiling_is_printed_as_a_figure(tmp_path, capsys):
    """The 2-core machine's run 0003: its matmul beat its noisy matmul ceiling. The efficiency is withheld and the ceiling flagged."""
    from .conftest import ROOT

    [path] = ROOT.glob("results/amd-epyc-f25m17-2t-6bd992aa/*/0003_*.json")
    rows = {(r.workload, r.variant): r for r in speedup.matrix(load_run(path))}
    matmul = rows[("matmul", "fp32")]
    assert matmul.cpu_efficiency is None and matmul.ceiling_not_reached == ("cpu",)
    assert "efficiency withheld" in render.speedups(list(rows.values()), "table")
    target = tmp_path / "results" / path.relative_to(ROOT / "results")
    target.parent.mkdir(parents=True)
    shutil.copy2(path, target)
    code, _, err = run_cli("report", str(tmp_path / "results"), "--out", str(tmp_path / "report"), capsys=capsys)
    assert code == 0, err
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert not re.search(r"1[0-9]{2}% of its", summary)  # no "130% of its matmul-fp32 ceiling"
    assert "faster than its matmul-fp32 ceiling, so that ceiling was not reached" in summary
