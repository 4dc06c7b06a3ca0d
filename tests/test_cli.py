"""``devicebench info`` and the CLI's handling of bad input."""

import json
import subprocess
import sys

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
