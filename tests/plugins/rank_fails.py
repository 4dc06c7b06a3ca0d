"""Loaded with ``-p tests.plugins.rank_fails`` under torchrun: rank ``DEVICEBENCH_FAIL_RANK`` raises in its first epoch."""

import os

from devicebench import launch

_epoch = launch.LaunchedEpochs.epoch


def _epoch_that_fails(self):
    if launch.current().rank == int(os.environ["DEVICEBENCH_FAIL_RANK"]):
        raise RuntimeError(f"injected failure on rank {launch.current().rank}")
    return _epoch(self)


launch.LaunchedEpochs.epoch = _epoch_that_fails
