"""A fake device whose queued work finishes only when the host synchronizes.

Loaded with ``-p tests.plugins.slow_sync``: every ``BenchDevice.synchronize`` takes
``DELAY_S``, as waiting for outstanding kernels would. A benchmark whose timed interval
ended before synchronizing would then report rounds shorter than ``DELAY_S``.
"""

import time

from devicebench.measure.devices import BenchDevice

DELAY_S = 0.025


def _synchronize_slowly(self):
    time.sleep(DELAY_S)


BenchDevice.synchronize = _synchronize_slowly
