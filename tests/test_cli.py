"""``devicebench info`` and the CLI's handling of bad input."""

import json
import subprocess
import sys

import pytest
import torch

from devicebench import cli


def test_info_says_what_the_machine_has(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__}" in out
    assert f"CUDA available: {'yes' if torch.cuda.is_available() else 'no'}, GPUs: {torch.cuda.device_count()}" in out
    assert "fingerprint:" in out and "float32_matmul_precision=" in out


def test_info_json_is_the_stored_machine_info(capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["fingerprint"]["cpu_threads"] == info["cpu_threads"]
    assert info["gpu_count"] == torch.cuda.device_count()


def test_bad_command_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "devicebench", "infoo"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "invalid choice: 'infoo'" in proc.stderr


def test_show_prints_a_stored_run_with_its_machine(smoke_run, capsys):
    [path] = smoke_run.run_files()
    assert cli.main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # An aligned terminal table by default: every row's columns start where the header's do.
    header = next(i for i, line in enumerate(lines) if line.startswith("benchmark ") and "median" in line)
    assert set(lines[header + 1]) <= {"-", " "}
    matmul = next(line for line in lines if line.startswith("test_matmul[cpu-fp32] "))
    assert matmul.index(matmul.split()[1]) == lines[header].index("median")
    assert "TFLOP/s" in out and "steps/s" in out
    # loader, resident and compile: their timings, then where their time goes
    assert sum(1 for line in lines if line.startswith("test_cnn[cpu-")) == 6
    assert f"torch {torch.__version__}" in out
    assert cli.main(["show", str(path), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| `test_matmul[cpu-fp32]` |" in out and "| benchmark | data | epoch | waiting for data | in the step |" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="the smoke run of a CUDA machine has CUDA-event times")
def test_check_timing_without_cuda_results_says_there_is_nothing_to_check(smoke_run, capsys):
    [path] = smoke_run.run_files()
    assert cli.main(["check-timing", str(path)]) == 0
    assert "nothing to check" in capsys.readouterr().out


def test_bad_run_files_are_one_line_and_exit_2(tmp_path, capsys):
    truncated = tmp_path / "truncated.json"
    truncated.write_text('{"benchmarks": [')
    other = tmp_path / "other.json"
    other.write_text('{"name": "not a run"}')
    for path, message in [(tmp_path / "missing.json", "no such file"), (truncated, "not valid JSON"), (other, "not a benchmark run")]:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["show", str(path)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and message in err


def test_output_cut_short_by_a_pipe_is_not_an_error(smoke_run):
    [path] = smoke_run.run_files()
    # `true` reads nothing and exits at once: every write of the table meets a closed pipe.
    proc = subprocess.run(f"{sys.executable} -m devicebench show {path} | true", shell=True, capture_output=True, text=True)
    assert proc.stderr == ""
