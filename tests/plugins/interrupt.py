"""Loaded with ``-p tests.plugins.interrupt``: the fused linear regression is interrupted (Ctrl-C) after its first timed round."""

from devicebench.workloads import linreg

_init, _run = linreg.Trainer.__init__, linreg.Trainer.run


def _init_counting(self, device, variant, size):
    _init(self, device, variant, size)
    self.interrupt_at = 4 if variant == "fused" else None  # the cold call, one warm-up, one timed round, then Ctrl-C
    self.calls = 0


def _run_until_ctrl_c(self):
    self.calls += 1
    if self.calls == self.interrupt_at:
        raise KeyboardInterrupt
    return _run(self)


linreg.Trainer.__init__ = _init_counting
linreg.Trainer.run = _run_until_ctrl_c
