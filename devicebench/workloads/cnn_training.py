"""The CNN workload's training: one epoch per call, on the images as a DataLoader or resident on
the device, in bf16 or replayed as a CUDA graph; evaluation after timing. The workload itself
(sizes, variants, the step, the checks) is declared in :mod:`devicebench.workloads.cnn`."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from devicebench.measure import compiling, data
from devicebench.measure.config import Rounds


@dataclass(frozen=True)
class CnnSize:
    """The tutorial's CNN: ``epochs`` training epochs over ``n_train`` images, batch 128, Adam.

    Each epoch is one call: the first is the cold one, the others are the timed rounds (no
    warm-up: the model keeps training from round to round). The epoch count is fixed per
    size, never derived from measured speed, so that every device and every run trains the
    same model for as long, and accuracies and losses compare like with like.
    ``loader_workers`` is capped by the machine's cores.
    """

    n_train: int
    n_test: int
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3  # Adam's default, as the tutorial leaves it
    loader_workers: int = 4

    @property
    def rounds(self) -> Rounds:
        """A training epoch a round: the cold epoch and ``epochs - 1`` timed ones, never more or fewer."""
        return Rounds.fixed(self.epochs - 1)


def build_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, kernel_size=3),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, kernel_size=5),
        torch.nn.MaxPool2d(2),
        torch.nn.Dropout2d(0.1),
        torch.nn.AdaptiveMaxPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 10),
    )


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class Bf16Autocast(torch.nn.Module):
    """The model's forward under bf16 autocast: DataParallel's replica threads do not inherit the caller's."""

    def __init__(self, net: torch.nn.Module, device_type: str):
        super().__init__()
        self.net, self.device_type = net, device_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=self.device_type, dtype=torch.bfloat16):
            return self.net(x)


@dataclass
class EpochStats:
    data_wait_s: float
    first_batch_s: float


class Trainer:
    """Model, optimizer and data for one variant on one device; ``epoch`` is one timed round."""

    def __init__(
        self,
        device,
        variant: str,
        images: data.ImageData,
        size: CnnSize,
        workers: int,
        shard: tuple[int, int] = (0, 1),
        batch_size: int | None = None,
        compile_mode: str | None = None,
    ):
        """``shard`` = (rank, world size): under DDP each rank trains on its own part of the data,
        with ``batch_size`` samples a step (default: the size's; see :func:`batch_per_process`).
        ``compile_mode``: the model and the optimizer's step under ``torch.compile`` (the data resident)."""
        self.device, self.variant, self.size, self.dataset = device, variant, size, images.name
        self.batch_size = batch_size or size.batch_size
        self.pinned = device.supports("pinned_memory")
        self.workers = workers if variant == "loader" else 0
        dev = device.torch_device
        rank, world = shard
        self.epochs_done = 0
        self.n_train = min(size.n_train, len(images.train))
        self.n_test = min(size.n_test, len(images.test))
        self.channels_last = variant == "bf16"
        self.net = build_model()
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.autocast_type = device.backend.autocast_type
        self.model = device.wrap(Bf16Autocast(self.net, self.autocast_type) if variant == "bf16" else self.net)
        graphs = variant == "cudagraph" or compile_mode == "reduce-overhead"
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=size.lr, capturable=graphs)
        self.optimizer_step, self.mark_step, self.compiled = self.optimizer.step, None, compile_mode is not None
        if compile_mode is not None:  # compiled lazily: the first epoch's first batch compiles
            self.model = compiling.wrap(self.model, compile_mode)
            self.optimizer_step = compiling.wrap(self.optimizer.step, compile_mode)
            self.mark_step = compiling.step_marker(compile_mode)
        self.stats: list[EpochStats] = []
        self.test_x = self._as_images(images.test_images[: self.n_test]).to(dev)
        self.test_y = images.test_labels[: self.n_test].to(dev)
        if variant == "loader":
            train_set = torch.utils.data.Subset(images.train, range(self.n_train))
            self.sampler = None
            if world > 1:
                self.sampler = torch.utils.data.DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=0)
            self.loader = torch.utils.data.DataLoader(
                train_set,
                batch_size=self.batch_size,
                shuffle=self.sampler is None,
                sampler=self.sampler,
                num_workers=self.workers,
                pin_memory=self.pinned,
                generator=torch.Generator().manual_seed(0),
            )
            self.n_train = len(self.sampler) if self.sampler is not None else self.n_train
        else:
            mine = torch.arange(rank, self.n_train, world)  # this rank's index shard
            self.train_x = self._as_images(images.train_images[mine]).to(dev)
            self.train_y = images.train_labels[mine].to(dev)
            self.n_train = len(mine)
            self.perm_gen = torch.Generator(device=dev).manual_seed(0)
        self.replay = None
        if variant == "cudagraph":
            self._capture()

    def _as_images(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1], as ToTensor makes them."""
        x = images.unsqueeze(1).float().div_(255)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @property
    def samples_per_epoch(self) -> int:
        if self.variant == "cudagraph":
            return (self.n_train // self.batch_size) * self.batch_size
        return self.n_train

    def _autocast(self):
        if self.variant == "bf16":
            return torch.autocast(device_type=self.autocast_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.mark_step is not None:
            self.mark_step()  # reduce-overhead: a new training step (its graphs may reuse the last one's memory)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer_step()
        return loss

    def warm_step(self) -> torch.Tensor:
        """One training step on the first batch (for a compile from a warm cache, after everything was read)."""
        bs = self.batch_size
        return self._step(self.train_x[:bs], self.train_y[:bs])

    def _capture(self) -> None:
        bs = self.batch_size
        self.static_x = self.train_x[:bs].clone()
        self.static_y = self.train_y[:bs].clone()
        self.replay, self.static_loss = self.device.backend.capture(
            lambda: self._step(self.static_x, self.static_y), before=lambda: self.optimizer.zero_grad(set_to_none=True)
        )

    def epoch(self) -> torch.Tensor:
        """One pass over the training set; returns the last batch's loss, still on the device."""
        self.model.train()
        if self.variant == "loader" and self.sampler is not None:
            self.sampler.set_epoch(self.epochs_done)
        self.epochs_done += 1
        if self.variant == "loader":
            return self._loader_epoch()
        return self._resident_epoch()

    def first_batch(self) -> torch.Tensor:
        """One training step as an epoch makes it (its batch gathered, or loaded and copied), and
        nothing else recorded: the work counters' stand-in for a whole epoch."""
        self.model.train()
        return self._loader_epoch(limit=1) if self.variant == "loader" else self._resident_epoch(limit=1)

    @property
    def batches_per_epoch(self) -> int:
        n, bs = self.n_train, self.batch_size
        return n // bs if self.replay is not None else math.ceil(n / bs)

    def _loader_epoch(self, limit: int | None = None) -> torch.Tensor:
        dev, pinned = self.device.torch_device, self.pinned
        wait, first, loss = 0.0, None, None
        start = time.perf_counter()
        batches = iter(self.loader)
        while True:
            t0 = time.perf_counter()
            try:
                x, y = next(batches)
            except StopIteration:
                break
            waited = time.perf_counter() - t0
            wait += waited
            if first is None:
                first = time.perf_counter() - start
            loss = self._step(x.to(dev, non_blocking=pinned), y.to(dev, non_blocking=pinned))
            if limit is not None and (limit := limit - 1) == 0:
                return loss
        self.stats.append(EpochStats(wait, first or 0.0))
        return loss

    def _resident_epoch(self, limit: int | None = None) -> torch.Tensor:
        bs, n = self.batch_size, self.n_train
        perm = torch.randperm(n, device=self.device.torch_device, generator=self.perm_gen)
        n_batches = min(self.batches_per_epoch, limit or self.batches_per_epoch)
        wait, first, loss = 0.0, None, None
        start = time.perf_counter()
        for i in range(n_batches):
            t0 = time.perf_counter()
            idx = perm[i * bs : (i + 1) * bs]
            if self.replay is not None:
                torch.index_select(self.train_x, 0, idx, out=self.static_x)
                torch.index_select(self.train_y, 0, idx, out=self.static_y)
            else:
                x, y = self.train_x[idx], self.train_y[idx]
            wait += time.perf_counter() - t0
            if first is None:
                first = time.perf_counter() - start
            if self.replay is not None:
                self.replay()
                loss = self.static_loss
            else:
                loss = self._step(x, y)
        if limit is None:
            self.stats.append(EpochStats(wait, first or 0.0))
        # reduce-overhead's graphs write the next step's outputs where this one's were: keep the last loss.
        return loss.detach().clone() if self.mark_step is not None else loss

    @torch.no_grad()
    def evaluate(self, batch_size: int = 1000) -> tuple[float, float]:
        """Loss and accuracy on the test images (call outside timing: it reads results back)."""
        # Under DDP only rank 0 evaluates: the plain module, so no collective waits for the others.
        # A compiled model is evaluated eagerly too: its weights are what it learned, and an eval
        # forward through the compiler would compile again (another mode, another batch).
        model = self.net if self.device.is_ddp or self.compiled else self.model
        self.model.eval()
        total_loss = torch.zeros((), device=self.test_y.device)
        correct = torch.zeros((), device=self.test_y.device, dtype=torch.long)
        for i in range(0, self.n_test, batch_size):
            x, y = self.test_x[i : i + batch_size], self.test_y[i : i + batch_size]
            with self._autocast():
                logits = model(x).float()
            total_loss += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
        self.model.train()
        return total_loss.item() / self.n_test, correct.item() / self.n_test
