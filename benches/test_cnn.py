"""The tutorial's CNN: training epochs on MNIST-format images, and the data pipeline alone."""

import pytest

from devicebench.workloads import cnn, pipeline


@pytest.mark.parametrize("variant", cnn.WORKLOAD.variant_names)
def test_cnn(bench, device, variant, workload_context):
    bench.run_workload(cnn.WORKLOAD, device, variant, workload_context)


@pytest.mark.parametrize("variant", pipeline.WORKLOAD.variant_names)
def test_data_pipeline(bench, variant, workload_context):
    bench.run_workload(pipeline.WORKLOAD, None, variant, workload_context)
