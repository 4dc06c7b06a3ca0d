"""The tutorial's linear regression: 500 full-batch Adam steps per round, checked for convergence."""

import pytest

from devicebench import precision
from devicebench.workloads import linreg


@pytest.mark.parametrize("variant", linreg.VARIANTS)
def test_linear_regression(bench, device, variant):
    bench.skip_if(linreg.unsupported(device, variant))
    size = bench.size.linreg
    bench.info.update(workload="linear_regression", variant=variant, n=size.n, steps=size.steps, lr=size.lr, dataset="synthetic")
    with precision.settings(precision.STRICT_FP32):  # the CUDA graph is captured under the settings it runs with
        trainer = linreg.Trainer(device, variant, size)
        last_loss = bench.run(device, trainer.run, setup=trainer.reset)
    bench.throughput("steps_per_s", size.steps)

    # Read only now, after timing: .item() inside a step would force a device sync.
    final_loss = float(last_loss.item())
    w, b = trainer.learned()
    bench.info.update(final_loss=final_loss, learned_w=w, learned_b=b)
    linreg.check(size, final_loss, w, b)
