"""Host-to-device and device-to-host copies of a large tensor, pageable and pinned."""

import pytest

from devicebench.workloads import transfer


@pytest.mark.parametrize("variant", transfer.WORKLOAD.variant_names)
def test_transfer(bench, device, variant, workload_context):
    bench.run_workload(transfer.WORKLOAD, device, variant, workload_context)
