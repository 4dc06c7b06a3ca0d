"""Loaded with ``-p tests.plugins.rank_fails`` under torchrun: rank ``DEVICEBENCH_FAIL_RANK`` raises in its first epoch."""

import os

from devicebench.measure import distributed, env

_epoch = distributed.LaunchedEpochs.epoch


def _epoch_that_fails(self):
    if env.current().rank == int(os.environ["DEVICEBENCH_FAIL_RANK"]):
        raise RuntimeError(f"injected failure on rank {env.current().rank}")
    return _epoch(self)


distributed.LaunchedEpochs.epoch = _epoch_that_fails
