"""Loaded with ``-p tests.plugins.slow_numbering``: 3 s pass between choosing a run's number and writing it.

Two runs saving into one folder within those seconds both choose the same number, which is
what happens, with less luck needed, when two runs end at the same moment.
"""

import time

import pytest_benchmark.storage.file

from devicebench.harness import storage

_next_num = pytest_benchmark.storage.file.FileStorage._next_num


def _next_num_slowly(self):
    number = _next_num.fget(self)
    time.sleep(3)
    return number


pytest_benchmark.storage.file.FileStorage._next_num = property(_next_num_slowly)  # pytest-benchmark's own save

_next_run_number = storage.next_run_number


def _next_run_number_slowly(folder):
    number = _next_run_number(folder)
    time.sleep(3)
    return number


storage.next_run_number = _next_run_number_slowly  # devicebench's
