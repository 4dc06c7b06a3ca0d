"""Loaded with ``-p tests.plugins.setup_fails``: the matmul benchmarks cannot open their device, so they error in setup."""

import os

from devicebench.measure import devices

_open = devices.open_device


def _open_or_fail(device_id):
    if "test_matmul" in os.environ.get("PYTEST_CURRENT_TEST", ""):
        raise RuntimeError("injected: the device cannot be opened")
    return _open(device_id)


devices.open_device = _open_or_fail
