"""How often ``devicebench ab``'s wall-time procedure is wrong, on the noise study's committed
processes (docs/comparing.md, "How often ab is wrong"): ``ab``'s own stop rule and
``compare``'s verdicts, played on 20 fresh processes of unchanged code and 20 of the linear
regression made slower (+11% eager, +17% fused), all run interleaved on the 2-core machine.
"""

from pathlib import Path

import pytest

from . import ab_rates

NOISE = Path(__file__).parent / "data" / "runs" / "noise"
EAGER, FUSED = "test_linear_regression[cpu-eager]", "test_linear_regression[cpu-fused]"


@pytest.fixture(scope="module")
def pools() -> tuple[list, list]:
    return ab_rates.pool(NOISE / "default"), ab_rates.pool(NOISE / "slowed")


def test_the_study_holds_20_processes_a_side(pools):
    assert [len(p) for p in pools] == [20, 20]


def test_unchanged_code_rarely_fails_ab_at_five_runs_a_side(pools):
    found = ab_rates.rates(pools[0], None, repeats=5, trials=400)
    assert found["false_alarms"] <= 0.02, found  # measured 0.7% in 5,000 trials


def test_unchanged_code_under_other_process_settings_rarely_fails_ab(pools):
    for setting in ("aslr-off", "thp-always"):
        same = ab_rates.pool(NOISE / setting)
        assert ab_rates.rates(same, None, repeats=5, trials=200)["false_alarms"] <= 0.03, setting


def test_three_runs_a_side_can_never_flag_three_benchmarks(pools):
    """3 against 3 gives a one-sided p of 1/20 at best, and Holm over three needs 0.05/3."""
    found = ab_rates.rates(*pools, repeats=3, trials=100)
    assert found["false_alarms"] == 0 and found["caught"] == 0, found


def test_the_slower_regression_is_caught_more_often_with_more_runs_and_nothing_else_is_flagged(pools):
    """What the clock can do at this spread: the +17% fused regression, caught about a quarter
    of the time at 5 runs a side and two thirds at 10; the untouched matmul almost never."""
    five = ab_rates.rates(*pools, repeats=5, trials=400)
    ten = ab_rates.rates(*pools, repeats=10, trials=200)
    assert five["slowdown_each"][FUSED] > 1.1 and five["slowdown_each"][EAGER] > 1.05, five
    assert 0.1 <= five["caught_each"][FUSED] < ten["caught_each"][FUSED], (five, ten)
    assert ten["caught_each"][FUSED] >= 0.5, ten
    assert five["other_benchmarks_flagged"] <= 0.01 and ten["other_benchmarks_flagged"] <= 0.01, (five, ten)
    assert five["ab_runs_a_side_mean"] == 5  # at this spread no verdict is ever "unchanged": ab never stops early
