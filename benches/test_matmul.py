"""The tutorial's matmul, (10000x200) @ (200x10000), on every device and precision."""

import pytest

from devicebench.workloads import matmul


@pytest.mark.parametrize("variant", matmul.WORKLOAD.variant_names)
def test_matmul(bench, device, variant, workload_context):
    bench.run_workload(matmul.WORKLOAD, device, variant, workload_context)
