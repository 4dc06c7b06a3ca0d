"""The tutorial's linear regression: 500 full-batch Adam steps on a million points.

Data: x uniform in [-5, 5]^2, y = x @ [2, -3] + 10 + noise with sd 2. Model ``nn.Linear(2, 1)``,
``MSELoss``, Adam lr 0.1. Every timed round trains from the same initial weights and a fresh
optimizer state (reset in untimed setup), so the loss it ends on is a real check.

Variants:
- ``eager``: the tutorial's loop without its logging (its ``.item()`` every 50 steps forces a
  device sync inside the step and is left out);
- ``fused``: the same with ``Adam(fused=True)``, one kernel for the whole update;
- ``cudagraph``: the whole step (forward, backward, optimizer) captured once in a CUDA graph and
  replayed, PyTorch's "whole network capture" recipe; where the device has graphs;
- ``compile``: eager's step with the model's forward and loss (its backward through
  AOTAutograd) and the optimizer's step each under ``torch.compile``, as PyTorch's tutorials
  compile a training step; the first call compiles (``compile_s``, see
  :mod:`devicebench.measure.compiling`);
- ``compile-reduce-overhead``: the same in ``mode="reduce-overhead"``, the compiler's own CUDA
  graphs (Adam capturable, as for ``cudagraph``); set against eager and against ``cudagraph``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from devicebench.measure import compiling
from devicebench.measure.precision import STRICT_FP32

from . import Step, Timed, Variant, Workload, compiled_variants


@dataclass(frozen=True)
class LinRegSize:
    """The tutorial's linear regression: y = x @ w + b + noise, full-batch Adam.

    ``steps`` is the same at every size: fewer would stop short of convergence and the
    correctness guard (final loss near the noise variance) would no longer hold.
    """

    n: int
    steps: int
    lr: float = 0.1
    true_w: tuple[float, float] = (2.0, -3.0)
    true_b: float = 10.0
    noise_sd: float = 2.0
    x_low: float = -5.0
    x_high: float = 5.0


def make_data(size: LinRegSize, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(size.n, 2, generator=gen) * (size.x_high - size.x_low) + size.x_low
    w = torch.tensor(size.true_w).reshape(2, 1)
    y = x @ w + size.true_b + size.noise_sd * torch.randn(size.n, 1, generator=gen)
    return x.to(device), y.to(device)


class Trainer:
    """Model, optimizer and data on one device; ``reset`` then ``run`` is one timed round."""

    def __init__(self, device, variant: str, size: LinRegSize, compile_mode: str | None = None):
        self.size = size
        self.x, self.y = make_data(size, device.torch_device)
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(2, 1)
        self.model = device.wrap(self.linear)
        self.initial = [p.detach().clone() for p in self.linear.parameters()]
        params = list(self.linear.parameters())
        if variant == "eager" or compile_mode == "default":
            self.optimizer = torch.optim.Adam(params, lr=size.lr)  # the tutorial's, PyTorch's defaults
        elif variant == "fused":
            self.optimizer = torch.optim.Adam(params, lr=size.lr, fused=True)
        else:
            # capturable keeps Adam's step count on the device, so a replay does not read it on the host.
            self.optimizer = torch.optim.Adam(params, lr=size.lr, capturable=True)
        self.loss_fn = torch.nn.MSELoss()
        self.replay = None
        self.loss = None
        self.forward_loss, self.optimizer_step = self._forward_loss, self.optimizer.step
        self.mark_step = None
        if compile_mode is not None:  # compiled lazily: the first call compiles
            self.forward_loss = compiling.wrap(self._forward_loss, compile_mode)
            self.optimizer_step = compiling.wrap(self.optimizer.step, compile_mode)
            self.mark_step = compiling.step_marker(compile_mode)
        if variant == "cudagraph":
            self.replay, self.loss = device.backend.capture(self._step, before=lambda: self.optimizer.zero_grad(set_to_none=True))

    def _forward_loss(self) -> torch.Tensor:
        return self.loss_fn(self.model(self.x), self.y)

    def _step(self) -> torch.Tensor:
        if self.mark_step is not None:
            self.mark_step()  # reduce-overhead: a new training step, whose graphs may reuse the last one's memory
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.forward_loss()
        loss.backward()
        self.optimizer_step()
        return loss

    def reset(self) -> None:
        """Initial weights and an empty optimizer state, written in place (a graph holds their addresses)."""
        with torch.no_grad():
            for param, initial in zip(self.linear.parameters(), self.initial):
                param.copy_(initial)
            for state in self.optimizer.state.values():
                for value in state.values():
                    if torch.is_tensor(value):
                        value.zero_()

    def run(self) -> torch.Tensor:
        """``steps`` training steps; returns the last loss, still on the device (no sync here)."""
        if self.replay is not None:
            for _ in range(self.size.steps):
                self.replay()
            return self.loss
        loss = None
        for _ in range(self.size.steps):
            loss = self._step()
        # reduce-overhead's graphs write the next step's outputs where this one's were: keep the last loss.
        return loss.detach().clone() if self.mark_step is not None else loss

    def learned(self) -> tuple[list[float], float]:
        return self.linear.weight.detach().cpu().flatten().tolist(), float(self.linear.bias.detach().cpu())


@dataclass(frozen=True)
class Guard:
    """How close a finished training must land; wider than the noise allows, far tighter than a failure.

    The loss floor is the noise variance (4.0); 10% either side covers the sampling error of
    10,000 points (about 1.4%). w is pinned to about 0.007 by the data (noise sd over
    sqrt(n) times x's sd), b to about 0.02, plus what 500 steps of Adam leave unconverged.
    """

    loss_rel_tol: float = 0.10
    w_tol: float = 0.05
    b_tol: float = 0.15


GUARD = Guard()


def check(size: LinRegSize, final_loss: float, w: list[float], b: float, guard: Guard = GUARD) -> None:
    """Raise AssertionError, with what went wrong, unless training converged to the truth."""
    expected = size.noise_sd**2
    values = [final_loss, *w, b]
    if not all(math.isfinite(v) for v in values):
        raise AssertionError(f"training diverged: final loss {final_loss}, w {w}, b {b} (a NaN or inf is a failure)")
    if abs(final_loss - expected) > guard.loss_rel_tol * expected:
        raise AssertionError(f"final loss {final_loss:.4f} is not near the noise variance {expected:.1f}")
    w_err = max(abs(got - want) for got, want in zip(w, size.true_w))
    if w_err > guard.w_tol or abs(b - size.true_b) > guard.b_tol:
        raise AssertionError(f"learned w={w}, b={b:.4f}; truth w={list(size.true_w)}, b={size.true_b}")


def build(device, variant: Variant, size: LinRegSize, context=None) -> Step:
    trainer = Trainer(device, variant.name, size, variant.compile_mode)

    def finish(timed: Timed) -> dict:
        # Read only now, after timing: .item() inside a step would force a device sync.
        final_loss = float(timed.last.item())
        w, b = trainer.learned()
        check(size, final_loss, w, b)
        out = {"final_loss": final_loss, "learned_w": w, "learned_b": b}
        if variant.compile_mode is not None:  # the same compile from a warm cache: one more step, after all was read
            out["compile_warm_s"] = compiling.warm_compile_s(device, trainer._step)
        return out

    return Step(
        call=trainer.run,
        setup=trainer.reset,
        work=size.steps,
        info={"dataset": "synthetic"},
        finish=finish,
        quality_after=f"{size.steps} steps from the same start",
    )


GRAPHS_ON_THREADS = "DataParallel runs its replicas on threads and cannot be captured in a CUDA graph"

WORKLOAD = Workload(
    name="linear_regression",
    variants=(
        Variant("eager"),
        Variant("fused"),
        # The same Adam update as eager, replayed from a graph: eager is its CPU reference.
        Variant("cudagraph", STRICT_FP32, needs=frozenset({"graphs"}), cpu_reference="eager", no_dp=GRAPHS_ON_THREADS),
        # Eager's work, compiled: each is set against eager on its own device (and the CPU runs the default mode too).
        *compiled_variants("eager", STRICT_FP32),
    ),
    sizes={
        "seed": LinRegSize(n=1_000_000, steps=500),
        # 10,000 points still pin w and b to about 0.02 (noise sd / sqrt(n)): the guard holds.
        "smoke": LinRegSize(n=10_000, steps=500),
    },
    unit="steps_per_s",
    build=lambda *args: build(*args),  # looked up when called, so a test plugin may replace build
    size_keys=("n", "steps", "lr"),
)
