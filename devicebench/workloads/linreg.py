"""The tutorial's linear regression: 500 full-batch Adam steps on a million points.

Data: x uniform in [-5, 5]^2, y = x @ [2, -3] + 10 + noise with sd 2. Model ``nn.Linear(2, 1)``,
``MSELoss``, Adam lr 0.1. Every timed round trains from the same initial weights and a fresh
optimizer state (reset in untimed setup), so the loss it ends on is a real check.

Variants:
- ``eager``: the tutorial's loop without its logging (its ``.item()`` every 50 steps forces a
  device sync inside the step and is left out);
- ``fused``: the same with ``Adam(fused=True)``, one kernel for the whole update;
- ``cudagraph``: the whole step (forward, backward, optimizer) captured once in a CUDA graph
  and replayed, PyTorch's "whole network capture" recipe; GPU only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import LinRegSize
from ..devices import DDP_ONLY_TRAINING, BenchDevice

VARIANTS = ("eager", "fused", "cudagraph")


def unsupported(device: BenchDevice, variant: str) -> str | None:
    if device.is_ddp:
        return DDP_ONLY_TRAINING
    if variant == "cudagraph" and not device.is_cuda:
        return "CUDA graphs need a CUDA device"
    if variant == "cudagraph" and device.is_dp:
        return "DataParallel runs its replicas on threads and cannot be captured in a CUDA graph"
    return None


def make_data(size: LinRegSize, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(size.n, 2, generator=gen) * (size.x_high - size.x_low) + size.x_low
    w = torch.tensor(size.true_w).reshape(2, 1)
    y = x @ w + size.true_b + size.noise_sd * torch.randn(size.n, 1, generator=gen)
    return x.to(device), y.to(device)


class Trainer:
    """Model, optimizer and data on one device; ``reset`` then ``run`` is one timed round."""

    def __init__(self, device: BenchDevice, variant: str, size: LinRegSize):
        self.size = size
        self.x, self.y = make_data(size, device.torch_device)
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(2, 1)
        self.model = device.wrap(self.linear)
        self.initial = [p.detach().clone() for p in self.linear.parameters()]
        params = list(self.linear.parameters())
        if variant == "eager":
            self.optimizer = torch.optim.Adam(params, lr=size.lr)  # the tutorial's, PyTorch's defaults
        elif variant == "fused":
            self.optimizer = torch.optim.Adam(params, lr=size.lr, fused=True)
        else:
            # capturable keeps Adam's step count on the GPU, so a replay does not read it on the host.
            self.optimizer = torch.optim.Adam(params, lr=size.lr, capturable=True)
        self.loss_fn = torch.nn.MSELoss()
        self.graph = None
        self.loss = None
        if variant == "cudagraph":
            self._capture()

    def _step(self) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        return loss

    def _capture(self) -> None:
        # Warm up on a side stream first, as the capture recipe asks: this creates the
        # optimizer state and library workspaces that the captured graph will reuse.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step()
        torch.cuda.current_stream().wait_stream(side)
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss = self._step()

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
        if self.graph is not None:
            for _ in range(self.size.steps):
                self.graph.replay()
            return self.loss
        loss = None
        for _ in range(self.size.steps):
            loss = self._step()
        return loss

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
