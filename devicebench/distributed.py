"""The CNN under DistributedDataParallel: one process per rank, driven epoch by epoch from pytest.

:class:`DistributedEpochs` starts ``world_size`` processes (``torch.multiprocessing`` spawn),
each joining a process group over TCP on 127.0.0.1 with a free port (gloo on the CPU, NCCL on
GPUs), loading the data itself and training its shard of it. The parent sends "epoch" to
every rank and waits for every rank's answer: that round trip is what pytest-benchmark
times, so the run JSON holds DDP results beside every other benchmark. Each rank also times
its epoch between two barriers; rank 0's figures are kept as ``rank0_epoch_s``.

Nothing here can hang the suite: every wait has a timeout, a rank that dies is reported
with its rank and error, and the processes are terminated when the benchmark ends.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import queue
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from . import data
from .config import CnnSize
from .devices import BenchDevice, rank_device
from .fingerprint import cpu_threads
from .workloads import cnn

# Long enough for a seed-size CPU epoch on one core; short enough that a hung rank ends the
# benchmark. --bench-dist-timeout changes it.
TIMEOUT_S = 600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class RankEpoch:
    rank: int
    epoch_s: float  # between the barriers before and after the epoch
    samples: int
    data_wait_s: float
    first_batch_s: float
    loss: float
    peak_memory_bytes: int | None  # this rank's GPU; None on the CPU


class RankFailed(RuntimeError):
    """A rank died, hung past the timeout, or raised; the message names the rank and the error."""


def _worker(rank, world_size, device_id, port, variant, size, data_root, threads, workers, timeout_s, start_method, commands, results):
    parent = os.getppid()
    # A spawned process makes "spawn" its default start method, and the loader variant's
    # DataLoader would then start its workers by spawning a fresh interpreter every epoch
    # (seconds each; measured: a 1.7 s GPU epoch became 11 s). The ranks start them the way
    # the single-process benchmarks do.
    multiprocessing.set_start_method(start_method, force=True)
    try:
        torch.set_num_threads(threads)
        device = rank_device(device_id, rank, world_size)
        if device.is_cuda:
            torch.cuda.set_device(device.torch_device)
        dist.init_process_group(
            device.backend,
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
        images = data.load(data_root)
        batch = cnn.batch_per_process(size, world_size)
        trainer = cnn.Trainer(device, variant, images, size, workers, shard=(rank, world_size), batch_size=batch)
        device.synchronize()  # the model and data are on the device: setup ends here
        results.put(("ready", rank, (images.name, trainer.n_train, trainer.workers, multiprocessing.get_start_method())))
        while True:
            try:
                command = commands.get(timeout=5.0)
            except queue.Empty:
                if os.getppid() != parent:  # the suite is gone (killed): nobody will stop this rank
                    break
                continue
            if command == "epoch":
                dist.barrier()
                start = time.perf_counter()
                loss = trainer.epoch()
                device.synchronize()  # this rank's interval ends when its GPU is done, as in timing.measure
                dist.barrier()
                seconds = time.perf_counter() - start
                stats = trainer.stats[-1]
                record = RankEpoch(
                    rank, seconds, trainer.samples_per_epoch, stats.data_wait_s, stats.first_batch_s, float(loss), device.peak_memory_bytes()
                )
                results.put(("epoch", rank, record))
            elif command == "evaluate":
                results.put(("evaluate", rank, trainer.evaluate() if rank == 0 else None))
            else:
                break
    except Exception as exc:  # reported to the parent with the rank; the traceback would be lost in a child
        results.put(("error", rank, f"{type(exc).__name__}: {exc}"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


class DistributedEpochs:
    """World-size processes training the CNN with DDP; :meth:`epoch` is one timed round."""

    def __init__(self, device: BenchDevice, variant: str, size: CnnSize, data_root: Path | None, timeout_s: float = TIMEOUT_S):
        self.device, self.world_size, self.timeout_s = device, device.world_size, timeout_s
        # Compute threads are shared out, so ranks do not fight over cores; loader workers are
        # what one process has (see cnn.loader_workers), so the data pipeline is the same.
        self.threads = max(1, cpu_threads() // self.world_size)
        workers = cnn.loader_workers(size)
        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(self.world_size)]
        port = free_port()
        self.processes = [
            ctx.Process(
                target=_worker,
                args=(
                    rank, self.world_size, device.id, port, variant, size, data_root, self.threads, workers, timeout_s,
                    multiprocessing.get_start_method(), self.commands[rank], self.results,
                ),  # fmt: skip
                # Not daemonic: a rank's DataLoader starts worker processes of its own, which a
                # daemonic process may not. close() ends the ranks, and a rank whose parent is
                # gone stops by itself.
                daemon=False,
            )
            for rank in range(self.world_size)
        ]
        self.epochs: list[list[RankEpoch]] = []
        for process in self.processes:
            process.start()
        try:
            ready = self._collect("ready")
        except BaseException:
            self.close()
            raise
        self.dataset, _, self.workers, self.loader_start_method = ready[0]
        self.samples_per_rank = [n for _, n, _, _ in ready]

    def _collect(self, kind: str) -> list:
        """Every rank's answer of ``kind``, in rank order; RankFailed on an error, a death or the timeout."""
        answers: dict[int, object] = {}
        deadline = time.monotonic() + self.timeout_s
        while len(answers) < self.world_size:
            try:
                got, rank, payload = self.results.get(timeout=1.0)
            except queue.Empty:
                dead = [(r, p.exitcode) for r, p in enumerate(self.processes) if p.exitcode not in (None, 0)]
                if dead:
                    raise RankFailed(", ".join(f"rank {r} died (exit code {code})" for r, code in dead)) from None
                if time.monotonic() > deadline:
                    missing = sorted(set(range(self.world_size)) - set(answers))
                    raise RankFailed(f"rank {missing[0]} did not answer '{kind}' within {self.timeout_s:.0f} s") from None
                continue
            if got == "error":
                # A rank that died takes its peers' collectives down with it: they report
                # "connection reset" first. Name the one that died first, then the error.
                dead = self._dead(wait_s=3.0)
                first = ", ".join(f"rank {r} died (exit code {code})" for r, code in dead)
                raise RankFailed(f"{first}; then rank {rank}: {payload}" if dead else f"rank {rank}: {payload}")
            answers[rank] = payload
        return [answers[r] for r in range(self.world_size)]

    def _dead(self, wait_s: float) -> list[tuple[int, int]]:
        """Ranks that exited with an error, waiting up to ``wait_s`` for a dying one to be reaped."""
        deadline = time.monotonic() + wait_s
        while True:
            dead = [(r, p.exitcode) for r, p in enumerate(self.processes) if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                return dead
            time.sleep(0.1)

    def _all(self, command: str) -> list:
        for commands in self.commands:
            commands.put(command)
        return self._collect(command)

    def epoch(self) -> float:
        """One epoch on every rank; returns rank 0's last-batch loss."""
        records = self._all("epoch")
        self.epochs.append(records)
        return records[0].loss

    def evaluate(self) -> tuple[float, float]:
        return self._all("evaluate")[0]

    def close(self) -> None:
        for commands, process in zip(self.commands, self.processes):
            if process.is_alive():
                commands.put("stop")
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)

    # What the CNN benchmark reads from a trainer, for the ranks together.
    @property
    def n_train(self) -> int:
        return sum(self.samples_per_rank)

    @property
    def samples_per_epoch(self) -> int:
        return sum(r.samples for r in self.epochs[-1]) if self.epochs else self.n_train

    @property
    def stats(self) -> list:
        return [cnn.EpochStats(records[0].data_wait_s, records[0].first_batch_s) for records in self.epochs]
