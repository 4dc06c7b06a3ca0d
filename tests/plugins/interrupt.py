"""Loaded with ``-p tests.plugins.interrupt``: the fused linear regression is interrupted (Ctrl-C) after its first timed round.

With ``DEVICEBENCH_TEST_INTERRUPT_NO_LINE=1`` the interruption lands, as a signal can, where
the traceback has no line number (``tb_lineno`` None).
"""

import contextlib
import os
import sys
import types

from devicebench.workloads import linreg

_init, _run = linreg.Trainer.__init__, linreg.Trainer.run


def _init_counting(self, device, variant, size, *args):
    _init(self, device, variant, size, *args)
    self.interrupt_at = 4 if variant == "fused" else None  # the cold call, one warm-up, one timed round, then Ctrl-C
    self.calls = 0


def _run_until_ctrl_c(self):
    self.calls += 1
    if self.calls == self.interrupt_at:
        if os.environ.get("DEVICEBENCH_TEST_INTERRUPT_NO_LINE"):
            _interrupt_where_no_line_is()
        raise KeyboardInterrupt
    return _run(self)


def _interrupt_where_no_line_is():
    """Ctrl-C as a signal delivers it at an instruction CPython has no line number for (the
    clean-up a ``with`` block compiles to has none)."""
    with contextlib.nullcontext():
        pass
    frame = sys._getframe()
    offset = next(start for start, _end, line in frame.f_code.co_lines() if line is None)
    raise KeyboardInterrupt().with_traceback(types.TracebackType(None, frame, offset, -1))


linreg.Trainer.__init__ = _init_counting
linreg.Trainer.run = _run_until_ctrl_c
