"""The tutorial's matmul, (10000x200) @ (200x10000), on every device and precision."""

import pytest

from devicebench import precision
from devicebench.workloads import matmul


@pytest.mark.parametrize("variant", matmul.VARIANTS)
def test_matmul(bench, device, variant):
    bench.skip_if(matmul.unsupported(device, variant))
    size = bench.size.matmul
    bench.info.update(
        workload="matmul", variant=variant, m=size.m, k=size.k, n=size.n, dtype=str(matmul.dtype_for(variant)), flops=size.flops
    )
    with precision.settings(matmul.precision_for(variant)):
        bench.run(device, matmul.build(device, variant, size))
    bench.throughput("tflops", size.flops / 1e12)
