"""The example workload's bench file: wiring only, as every file in benches/ is."""

import pytest

from tests import example_workload


@pytest.mark.parametrize("variant", example_workload.WORKLOAD.variant_names)
def test_mlp_block(bench, device, variant, workload_context):
    bench.run_workload(example_workload.WORKLOAD, device, variant, workload_context)
