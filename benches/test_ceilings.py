"""What each device can do at best, so efficiency = achieved / ceiling reads off one run."""

import pytest

from devicebench import precision
from devicebench.workloads import ceilings


@pytest.mark.parametrize("variant", ceilings.VARIANTS)
def test_ceiling(bench, device, variant):
    bench.skip_if(ceilings.unsupported(device, variant))
    if variant == "copy":
        nbytes = ceilings.copy_bytes(device, bench.size.ceiling)
        bench.info.update(workload="ceiling", variant=variant, nbytes=nbytes, bytes_moved=2 * nbytes)
        with precision.settings(precision.STRICT_FP32):
            bench.run(device, ceilings.build_copy(device, nbytes))
        bench.throughput("gbps", 2 * nbytes / 1e9)
    else:
        n = ceilings.matmul_n(device, bench.size.ceiling)
        flops = 2 * n**3
        bench.info.update(workload="ceiling", variant=variant, m=n, k=n, n=n, flops=flops)
        with precision.settings(ceilings.precision_for(variant)):
            bench.run(device, ceilings.build_matmul(device, variant, n))
        bench.throughput("tflops", flops / 1e12)
