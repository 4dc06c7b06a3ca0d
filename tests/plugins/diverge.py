"""Loaded with ``-p tests.plugins.diverge``: one target of the linear regression is NaN."""

from devicebench.workloads import linreg

_make_data = linreg.make_data


def _make_data_with_a_nan(size, device):
    x, y = _make_data(size, device)
    y[0] = float("nan")
    return x, y


linreg.make_data = _make_data_with_a_nan
