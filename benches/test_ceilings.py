"""What each device can do at best, so efficiency = achieved / ceiling reads off one run."""

import pytest

from devicebench.workloads import ceilings


@pytest.mark.parametrize("variant", ceilings.WORKLOAD.variant_names)
def test_ceiling(bench, device, variant, workload_context):
    bench.run_workload(ceilings.WORKLOAD, device, variant, workload_context)
