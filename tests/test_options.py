"""Bad options fail as pytest usage errors (exit status 4) that list the valid values."""

import pytest

from .conftest import BENCHES, run_benches, run_pytest

USAGE_ERROR = 4


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--bench-size=huge", ["invalid choice: 'huge'", "smoke", "seed"]),
        ("--bench-devices=cpu,tpu", ["unknown device 'tpu'", "valid devices: cpu, cuda:0, dp, ddp:cpu, ddp:cuda"]),
        ("--bench-devices=,", ["no device given", "valid devices: cpu, cuda:0, dp, ddp:cpu, ddp:cuda"]),
        ("--data-root=/no/such/folder", ["'/no/such/folder' is not a directory"]),
        ("--bench-devices=dp:0", ["unknown device 'dp:0'", "dp:K, ddp:cuda:K"]),
        ("--bench-dist-timeout=0", ["'0' is not a number of seconds between 0 and 604800 (a week)"]),
        ("--bench-dist-timeout=soon", ["'soon' is not a number of seconds between 0 and 604800"]),
        ("--bench-dist-timeout=inf", ["'inf' is not a number of seconds between 0 and 604800"]),
        ("--bench-dist-timeout=1e308", ["'1e308' is not a number of seconds between 0 and 604800"]),
        ("--bench-median-within=2", ["'2' is not a fraction between 0 and 1 (0.01 = 1%)"]),
        ("--bench-precision=0", ["'0' is not a fraction between 0 and 1"]),  # its old name, still taken
    ],
)
def test_bad_option_is_a_usage_error(tmp_path, option, expected):
    run = run_benches(option, "--collect-only", storage=tmp_path)
    assert run.ret == USAGE_ERROR, run.output
    for text in expected:
        assert text in run.stderr
    assert "Traceback" not in run.output


def test_benchmarks_under_xdist_get_a_clear_message(tmp_path):
    """Asked for by a devicebench option, the run says why in its own words, before anything runs."""
    run = run_pytest(str(BENCHES), "--benchmark-only", "--bench-size=smoke", "-n", "2", storage=tmp_path)
    assert run.ret == USAGE_ERROR, run.output
    assert "cannot be timed under xdist" in run.stderr
    assert "Run them in one process, without -n" in run.stderr
    assert "Can't have both" not in run.output
    assert run.run_files() == []


def test_without_a_devicebench_option_xdist_gets_pytest_benchmarks_own_refusal(tmp_path):
    """At configure time nothing says the session is devicebench's yet: the refusal is pytest-benchmark's, as in any project."""
    run = run_pytest(str(BENCHES), "--benchmark-only", "-n", "2", storage=tmp_path)
    assert run.ret == USAGE_ERROR, run.output
    assert "Can't have both --benchmark-only and --benchmark-disable" in run.stderr
    assert "Traceback" not in run.output
    assert run.run_files() == []
