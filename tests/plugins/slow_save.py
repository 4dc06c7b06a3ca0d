"""Loaded with ``-p tests.plugins.slow_save``: building the run's JSON for saving takes 60 s.

Before it sleeps it creates the file named by ``DEVICEBENCH_TEST_SAVING``, so a test knows
the save has begun and can kill the process in the middle of it.
"""

import os
import time
from pathlib import Path

import pytest_benchmark.storage.file

from devicebench.harness import recording, storage

_dumps = pytest_benchmark.storage.file.safe_dumps


def _dumps_slowly(obj, **kwargs):
    Path(os.environ["DEVICEBENCH_TEST_SAVING"]).touch()
    time.sleep(60)
    return _dumps(obj, **kwargs)


pytest_benchmark.storage.file.safe_dumps = _dumps_slowly  # where pytest-benchmark's own save looks it up
recording.safe_dumps = _dumps_slowly  # where devicebench's --benchmark-json looks it up
storage.safe_dumps = _dumps_slowly  # where devicebench's save does
