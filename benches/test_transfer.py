"""Host-to-device and device-to-host copies of a large tensor, pageable and pinned."""

import pytest

from devicebench import precision
from devicebench.workloads import transfer


@pytest.mark.parametrize("variant", transfer.VARIANTS)
def test_transfer(bench, device, variant):
    bench.skip_if(transfer.unsupported(device, variant))
    nbytes = bench.size.transfer.nbytes
    bench.info.update(workload="transfer", variant=variant, nbytes=nbytes)
    with precision.settings(precision.STRICT_FP32):
        bench.run(device, transfer.build(device, variant, nbytes))
    bench.throughput("gbps", nbytes / 1e9)
