"""Nothing finished is lost, nothing hostile gets through: saving a run, and reading one back.

The saving tests send real signals to a real pytest process at smoke size; the full disk
is a small tmpfs where this machine lets a test mount one, else a file-size limit on the
process (both make the operating system refuse the write).
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devicebench import cli
from devicebench.reading.host import Host
from devicebench.reading.runs import load_run

from .conftest import ROOT, run_benches, start_benches
from .test_compare import golden, run_cli

CEILINGS = ("-k", "test_ceiling and cpu")


def wait_for(proc: subprocess.Popen, text: str, timeout: float = 120) -> str:
    """Read the process's output until ``text`` appears; returns what was read."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    proc.kill()
    proc.communicate()
    raise AssertionError(f"{text!r} never appeared:\n{''.join(seen)}")


def stored(storage: Path) -> list[Path]:
    return sorted(storage.glob("*/[0-9][0-9][0-9][0-9]_*.json"))


# --- saving a run ---------------------------------------------------------------------------


def test_sigterm_keeps_every_finished_benchmark_and_marks_the_run_interrupted(tmp_path):
    """What timeout, docker stop, Slurm and a cancelled CI job send."""
    proc = start_benches("-k", "cpu and (test_ceiling or test_cnn)", storage=tmp_path)
    wait_for(proc, "test_ceiling[cpu-matmul-fp32] PASSED")
    proc.send_signal(signal.SIGTERM)  # during the CNN, which comes next
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out  # pytest's "interrupted"
    [path] = stored(tmp_path)
    run = load_run(path)
    assert {b["name"] for b in run["benchmarks"]} == {"test_ceiling[cpu-copy]", "test_ceiling[cpu-matmul-fp32]"}
    assert run["devicebench"]["interrupted"] is True


def test_a_kill_during_the_save_leaves_no_broken_run(tmp_path):
    first = run_benches(*CEILINGS, storage=tmp_path)
    assert first.ret == 0, first.output
    saving = tmp_path / "saving"
    proc = start_benches(*CEILINGS, "-p", "tests.plugins.slow_save", storage=tmp_path, env_extra={"DEVICEBENCH_TEST_SAVING": str(saving)})
    deadline = time.monotonic() + 120
    while not saving.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert saving.exists(), proc.communicate()[0]
    proc.kill()
    proc.communicate()
    # Only the first run: no empty or half-written second one to break `show latest`.
    assert [p.name[:4] for p in stored(tmp_path)] == ["0001"]
    assert cli.main(["show", "latest", "--results", str(tmp_path)]) == 0


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a file system that takes 4 KiB: a tmpfs if this machine lets us mount one, else None."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    yield folder if mounted else None
    if mounted:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_keeps_the_table_and_a_copy_of_the_run(tmp_path, full_disk):
    storage = full_disk or tmp_path / "storage"
    limit = None
    if full_disk is None:  # no mount here: the same refusal from a file-size limit on the process
        limit = 4 * 1024

    def preexec():
        if limit:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    from .conftest import BENCHES, subprocess_pytest

    cmd, env = subprocess_pytest(str(BENCHES), "--benchmark-only", "--bench-size=smoke", "--benchmark-autosave", *CEILINGS, storage=storage)
    env["TMPDIR"] = str(tmp_path)  # where the copy goes
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, preexec_fn=preexec)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "OSError" not in out
    assert "test_ceiling[cpu-copy]" in proc.stdout and "Median" in proc.stdout  # the results table, all the same
    assert "devicebench: the run could not be saved in" in out
    assert stored(storage) == []  # nothing truncated left behind
    if limit is None:
        [copy] = tmp_path.glob("devicebench-unsaved-*.json")
        assert f"a copy is at {copy}" in out
        assert {b["name"] for b in load_run(copy)["benchmarks"]} == {"test_ceiling[cpu-copy]", "test_ceiling[cpu-matmul-fp32]"}
    else:
        assert "nor in the temporary folder" in out


def test_unwritable_storage_is_refused_before_the_first_benchmark(tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    run = run_benches(*CEILINGS, storage=afile / "results")
    assert run.ret == 4, run.output  # a usage error
    assert "--benchmark-storage" in run.stderr and "cannot write there" in run.stderr and "no benchmark was run" in run.stderr
    assert "PASSED" not in run.stdout and "Traceback" not in run.output


def test_runs_saving_at_the_same_time_get_a_number_each(tmp_path):
    procs = []
    for _ in range(2):
        procs.append(start_benches("-k", "test_ceiling and cpu-copy", "-p", "tests.plugins.slow_numbering", storage=tmp_path))
        time.sleep(0.5)
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [p.name[:4] for p in stored(tmp_path)] == ["0001", "0002"]
    assert all(load_run(p)["benchmarks"] for p in stored(tmp_path))


def test_latest_is_this_machines_newest_run_whatever_its_platform_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Host, "slug", "my-machine")
    for platform, number, when in (("Linux-CPython-3.11-64bit", "0001", "2026-01-01"), ("Linux-CPython-3.11-64bit", "0002", "2026-01-02"), ("Linux-CPython-3.12-64bit", "0001", "2026-01-03")):
        folder = tmp_path / "my-machine" / platform
        folder.mkdir(parents=True, exist_ok=True)
        run = load_run(golden("seed-a"))
        run["datetime"] = f"{when}T00:00:00+00:00"
        (folder / f"{number}_x.json").write_text(json.dumps(run))
    code, out, _ = run_cli("show", "latest", "--results", str(tmp_path), capsys=capsys)
    assert code == 0 and "run of 2026-01-03" in out
    code, _, err = run_cli("show", "1", "--results", str(tmp_path), capsys=capsys)
    assert code == 2 and "exists in several platform folders of one machine" in err and "several machines" not in err


# --- reading run files ----------------------------------------------------------------------


def _run() -> dict:
    return load_run(golden("seed-a"))


def _edit(change) -> dict:
    run = _run()
    change(run)
    return run


MALFORMED = {
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "not UTF-8": b"\xff\xfe{\x00",
    "stats null": _edit(lambda r: r["benchmarks"][0].update(stats=None)),
    "machine_info a list": _edit(lambda r: r.update(machine_info=[])),
    "devicebench null": _edit(lambda r: r.update(devicebench=None)),
    "machine block not an object": _edit(lambda r: r["machine_info"].update(devicebench="x")),
    "no fullname": _edit(lambda r: r["benchmarks"][0].pop("fullname")),
    "a string median": _edit(lambda r: r["benchmarks"][0]["stats"].update(median="fast")),
    "a NaN median": _edit(lambda r: r["benchmarks"][0]["stats"].update(median=float("nan"))),
    "a zero median": _edit(lambda r: r["benchmarks"][0]["stats"].update(median=0)),
    "a negative round": _edit(lambda r: r["benchmarks"][0]["stats"].update(data=[-1.0, 0.1])),
    "an integer datetime": _edit(lambda r: r.update(datetime=20260101)),
    "a newer format": _edit(lambda r: r["devicebench"].update(format_version=99)),
    "a 5000-digit number": '{"benchmarks": [], "x": ' + "9" * 5000 + "}",
}


def _write(tmp_path: Path, content) -> Path:
    path = tmp_path / "0001_bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return path


@pytest.mark.parametrize("case", MALFORMED)
@pytest.mark.parametrize("command", ["show", "speedup", "check-timing", "check-targets", "compare"])
def test_a_malformed_run_is_one_line_and_exit_2(tmp_path, capsys, case, command):
    path = _write(tmp_path, MALFORMED[case])
    args = [command, str(golden("seed-b")), str(path)] if command == "compare" else [command, str(path)]
    code, out, err = run_cli(*args, capsys=capsys)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and str(path) in err, err


def test_report_skips_a_malformed_run_with_a_warning(tmp_path, capsys):
    folder = tmp_path / "results" / "m" / "p"
    folder.mkdir(parents=True)
    for i, case in enumerate(MALFORMED, start=1):
        (folder / f"{i:04d}_bad.json").write_bytes(_write(tmp_path, MALFORMED[case]).read_bytes())
    shutil.copy(golden("seed-a"), folder / "0100_good.json")
    code, out, err = run_cli("report", str(tmp_path / "results"), "--out", str(tmp_path / "report"), capsys=capsys)
    assert code == 0, err
    assert err.count("warning: skipped") == len(MALFORMED) and "1 runs" in out


@pytest.mark.parametrize("arg", ["²", "9" * 5000, "-1", "0x10"])
def test_a_bad_run_id_is_one_line_and_exit_2(tmp_path, capsys, arg):
    code, _, err = run_cli("show", arg, "--results", str(tmp_path), capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "not a run id" in err


def test_a_partial_machine_block_still_shows(tmp_path, capsys):
    run = _edit(lambda r: [r["machine_info"]["devicebench"].pop(k) for k in ("cpu_model", "torch", "gpus")])
    code, out, _ = run_cli("show", str(_write(tmp_path, run)), capsys=capsys)
    assert code == 0 and out.startswith("unknown CPU (2 threads)")


def test_report_out_under_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    folder = tmp_path / "results" / "m" / "p"
    folder.mkdir(parents=True)
    shutil.copy(golden("seed-a"), folder / "0001_x.json")
    code, _, err = run_cli("report", str(tmp_path / "results"), "--out", str(tmp_path / "a-file" / "report"), capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "cannot write the report there" in err


def test_a_run_of_very_many_rounds_compares_at_once(tmp_path):
    """260,000 rounds against 3 once ran a rank test for 11 minutes; rounds are no longer the evidence."""
    big, small = _run(), _run()
    for bench in big["benchmarks"]:
        bench["stats"]["data"] = [bench["stats"]["median"]] * 260_000
        bench["stats"]["rounds"] = 260_000
    for bench in small["benchmarks"]:
        bench["stats"]["data"] = bench["stats"]["data"][:3]
        bench["stats"]["rounds"] = 3
    paths = [tmp_path / "big.json", tmp_path / "small.json"]
    paths[0].write_text(json.dumps(big))
    paths[1].write_text(json.dumps(small))
    # A guard against a hang, not a speed claim: the old rank test took minutes.
    proc = subprocess.run([sys.executable, "-m", "devicebench", "compare", *map(str, paths), "--no-history"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


# --- output built from run files ------------------------------------------------------------


def test_report_files_stay_under_out_whatever_the_run_says(tmp_path, capsys):
    folder = tmp_path / "results" / "m" / "p"
    folder.mkdir(parents=True)
    run = _run()
    run["machine_info"]["devicebench"]["fingerprint"]["id"] = "../../../../escaped"
    twin = json.loads(json.dumps(run["benchmarks"][0]))
    run["benchmarks"][0]["name"] = "test_x[a-b]"
    twin["name"], twin["fullname"] = "test_x[a_b]", twin["fullname"] + "-twin"  # the same slug
    run["benchmarks"].append(twin)
    run["benchmarks"][1]["name"] = "test_" + "y" * 300  # longer than a file name may be
    (folder / "0001_x.json").write_text(json.dumps(run))
    run["datetime"] = "2099-01-01T00:00:00"  # a second run: charts are drawn where there is history
    (folder / "0002_x.json").write_text(json.dumps(run))
    out = tmp_path / "deep" / "er" / "report"
    code, stdout, err = run_cli("report", str(tmp_path / "results"), "--out", str(out), capsys=capsys)
    assert code == 0, err
    written = [p for p in tmp_path.rglob("*.png")]
    assert written and all(p.parent == out / "charts" for p in written)
    assert not list(tmp_path.glob("escaped*")) and not list((tmp_path / "deep").glob("escaped*"))
    assert len(written) == len(run["benchmarks"])  # the colliding slugs got a file each


HOSTILE = {
    "script": "<script>alert(1)</script>",
    "image": "<img src=x onerror=alert(1)>",
    "remote image": "![x](https://example.com/x.png)",
    "link": "[click](javascript:alert(1))",
    "forged line": "x\n\nno regression\n",
    "backtick": "x` <b>bold</b> `",
    "mathematics": "x$\\frac{1}{$",  # matplotlib would parse it in a chart's title
}


def _hostile_runs(tmp_path: Path) -> tuple[str, str]:
    sides = []
    for side in ("A", "S"):
        names = []
        for i, path in enumerate(sorted((ROOT / "tests" / "data" / "runs" / "gate" / side).glob("*.json"))[:5]):
            run = load_run(path)
            texts = list(HOSTILE.values())
            for k, bench in enumerate(run["benchmarks"]):  # every hostile text in some name, the later ones joined on
                bench["name"] = bench["fullname"] = "test_" + "".join(texts[k :: len(run["benchmarks"])])
                # Counted work whose names and descriptions are hostile too: an op name that is no op name, a counted call that differs.
                counted = HOSTILE["script"] + side if k == 0 else HOSTILE["forged line"]
                ops = {"aten.mm": 1 + (side == "S"), texts[k % len(texts)]: 3}
                bench["extra_info"]["work"] = {"ops": ops, "counted": counted, "host_reads": 1 + (side == "S"), "note": HOSTILE["script"]}
            run["machine_info"]["devicebench"]["cpu_model"] = HOSTILE["script"] + HOSTILE["forged line"]
            target = tmp_path / side / f"{i:04d}_x.json"
            target.parent.mkdir(exist_ok=True)
            target.write_text(json.dumps(run))
            names.append(str(target))
        sides.append(",".join(names))
    return sides[0], sides[1]


def _assert_inert(markdown: str) -> None:
    """No markup made of a run file's text: code spans show it literally; outside them no HTML,
    no link or image but the report's own chart images, no forged line."""
    outside = re.sub(r"`[^`\n]*`", "", markdown)
    assert not re.search(r"<[A-Za-z/!?]", outside), outside
    for link in re.finditer(r"(?<!\\)\]\(", outside):
        assert outside[link.end() :].startswith("charts/"), outside[link.start() - 40 : link.end() + 40]
    assert "no regression" not in [line.strip() for line in markdown.splitlines()[:-1]]  # only the real last line


def test_names_from_run_files_cannot_become_markup_in_compare(tmp_path, capsys):
    base, cand = _hostile_runs(tmp_path)
    code, out, _ = run_cli("compare", base, cand, "--format", "markdown", capsys=capsys)
    assert code in (0, 1), out
    _assert_inert(out)
    rows = [line for line in out.splitlines() if line.startswith("| `test_")]
    assert len(rows) >= 5  # every benchmark of the gate runs has its row ...
    assert all(line.count(" | ") == 7 for line in rows), rows  # ... of eight cells: nothing broke out of its cell


def test_names_from_run_files_cannot_become_markup_in_the_report(tmp_path, capsys):
    base, _ = _hostile_runs(tmp_path)
    folder = tmp_path / "results" / "m" / "p"
    folder.mkdir(parents=True)
    for path in base.split(","):
        shutil.copy(path, folder)
    code, _, err = run_cli("report", str(tmp_path / "results"), "--out", str(tmp_path / "report"), capsys=capsys)
    assert code == 0, err
    _assert_inert((tmp_path / "report" / "summary.md").read_text())
    assert "<script" not in (tmp_path / "report" / "index.html").read_text()


# --- a gate that cannot pass by accident ------------------------------------------------------


def test_nothing_compared_is_not_no_regression(capsys):
    """A smoke run against a seed run: every benchmark is 'not comparable'."""
    code, out, err = run_cli("compare", str(golden("seed-a")), str(golden("base")), "--no-history", capsys=capsys)
    assert code == 2 and "not comparable: no benchmark of" in err


def test_a_benchmark_that_errors_in_setup_is_recorded_as_failed(tmp_path, capsys):
    run = run_benches("-k", "cpu and (test_matmul or test_ceiling)", "-p", "tests.plugins.setup_fails", storage=tmp_path)
    assert run.ret == 1, run.output
    assert "ERROR at setup of test_matmul[cpu-fp32]" in run.stdout
    [path] = stored(tmp_path)
    failed = {f["name"]: f["error"] for f in load_run(path)["devicebench"]["failed"]}
    assert "injected: the device cannot be opened" in failed["test_matmul[cpu-fp32]"]
    # So a comparison calls it a failure, never "removed".
    code, out, _ = run_cli("compare", str(path), str(path), "--no-history", capsys=capsys)
    assert "test_matmul[cpu-fp32]" in out and "removed" not in out


# --- every command, every format: a run file's text stays text ----------------------------------

FORGED = "no regression: all good"
POISON = f"\n{FORGED}\n<script>alert(1)</script>[x](javascript:alert(1))`|"
H200 = next((ROOT / "results").glob("intel-xeon-16t-nvidia-h200-x1-*/*/0001_*.json"))


def _poisoned(run: dict) -> dict:
    """Every text a reader prints, from names to the CPU model, ends in a forged line and markup."""
    machine = run["machine_info"]["devicebench"]
    for key in ("cpu_model", "torch", "cpu_detail"):
        machine[key] = f"{machine.get(key)}{POISON}"
    machine["fingerprint"]["cpu_model"] += POISON
    for gpu in machine["gpus"]:
        gpu["name"] += POISON
    machine["fingerprint"]["gpu_models"] = [name + POISON for name in machine["fingerprint"]["gpu_models"]]
    for bench in run["benchmarks"]:
        bench["name"] += POISON
        bench["fullname"] += POISON
        info = bench["extra_info"]
        info["variant"] = f"{info.get('variant')}{POISON}"  # the same on every device: the rows still pair up
        if "dataset" in info:
            info["dataset"] += POISON
    block = run["devicebench"]
    for skipped in block.get("skipped", []):
        skipped["reason"] += POISON
        skipped["name"] += POISON
    block["failed"] = [{"fullname": f"benches/test_x.py::test_x[cpu]{POISON}", "name": f"test_x[cpu]{POISON}", "error": f"boom{POISON}"}]
    return run


@pytest.fixture(scope="module")
def poisoned_results(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("poisoned") / "results"
    folder = results / "machine" / "platform"
    folder.mkdir(parents=True)
    for number in (1, 2, 3):
        run = _poisoned(load_run(H200))
        run["datetime"] = f"2026-11-2{number}T00:00:00+00:00"
        (folder / f"{number:04d}_x.json").write_text(json.dumps(run))
    return results


def _commands(results: Path, out: Path) -> list[tuple[str, list[str]]]:
    one, two, three = sorted(str(p) for p in results.rglob("*.json"))
    commands = []
    for fmt in ("table", "markdown", "json"):
        commands += [(fmt, ["compare", f"{one},{two}", three, "--format", fmt, "--fail-inconclusive"]), (fmt, ["speedup", one, "--format", fmt]), (fmt, ["history", str(results), "--format", fmt])]
    for fmt in ("table", "markdown"):
        commands += [(fmt, ["show", one, "--format", fmt]), (fmt, ["check-timing", one, "--format", fmt]), (fmt, ["check-targets", one, "--format", fmt])]
    commands += [("json", ["export", one]), ("markdown", ["report", str(results), "--out", str(out)])]
    return commands


def test_every_command_keeps_a_run_files_text_inert_in_every_format(poisoned_results, tmp_path, capsys):
    for fmt, args in _commands(poisoned_results, tmp_path / "report"):
        code, out, err = run_cli(*args, capsys=capsys)
        assert code in (0, 1, 3), (args, err)
        for line in (out + err).splitlines():  # no forged line, on stdout or stderr, whatever the format
            assert line.strip() != FORGED, (args, line)
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]", out + err), args
        if fmt == "json":
            json.loads(out)
        elif fmt == "markdown":
            _assert_inert(out if args[0] != "report" else (tmp_path / "report" / "summary.md").read_text())
    html_page = (tmp_path / "report" / "index.html").read_text()
    assert "<script>alert" not in html_page and 'href="javascript' not in html_page
