"""Loaded with ``-p tests.plugins.miscompile``: the compiled optimizer step updates nothing, as a
miscompile would; the compiled linear regression then trains wrong, and its guard must fail it."""

from devicebench.measure import compiling

_wrap = compiling.wrap


def _wrap_wrongly(obj, mode="default"):
    if getattr(obj, "__name__", "") == "step" and hasattr(obj, "__self__"):  # an optimizer's bound step
        return _wrap(lambda: None, mode)
    return _wrap(obj, mode)


compiling.wrap = _wrap_wrongly
