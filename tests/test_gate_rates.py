"""How often the gate is wrong, on the committed gate runs (docs/comparing.md, "How often the gate is wrong").

14 unchanged seed-size CPU runs and 14 with every matmul step 15% slower, interleaved on the
2-core machine (``tests/data/make-gate-runs``); ``tests/gate_rates.py`` forms the comparisons.
"""

import pytest

from . import gate_rates


@pytest.fixture(scope="module")
def runs() -> tuple[list[dict], list[dict]]:
    return gate_rates.runs("A"), gate_rates.runs("S")


def test_there_are_enough_runs(runs):
    a, s = runs
    assert len(a) >= 14 and len(s) >= 14


def test_unchanged_code_one_run_a_side_with_history_rarely_shows_a_regression(runs):
    rate = gate_rates.one_run_a_side_with_history(runs[0])
    assert rate.comparisons >= 40
    assert rate.hits <= 0.05 * rate.comparisons, rate


def test_unchanged_code_five_runs_against_five_rarely_shows_a_regression(runs):
    rate = gate_rates.splits(runs[0], per_side=5, count=50)
    assert rate.hits <= 0.05 * rate.comparisons, rate


def test_a_15_percent_slowdown_is_caught_by_7_runs_a_side_and_nothing_else_is_flagged(runs):
    found = gate_rates.detection(*runs, per_side=7, count=10)
    assert found.alone >= 9 and found.others == 0, found
