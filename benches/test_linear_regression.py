"""The tutorial's linear regression: 500 full-batch Adam steps per round, checked for convergence."""

import pytest

from devicebench.workloads import linreg


@pytest.mark.parametrize("variant", linreg.WORKLOAD.variant_names)
def test_linear_regression(bench, device, variant, workload_context):
    bench.run_workload(linreg.WORKLOAD, device, variant, workload_context)
