"""DistributedDataParallel training: ranks spawned from pytest, and ranks started by torchrun.

Spawned (:class:`DistributedEpochs`): ``world_size`` processes (``torch.multiprocessing``
spawn) each join a process group over TCP on 127.0.0.1 with a free port (gloo on the CPU,
NCCL on GPUs), build their trainer (a picklable factory the workload gives, so this module
knows no workload) and train their shard. The parent sends "epoch" to every rank and waits
for every rank's answer: that round trip is what pytest-benchmark times, so the run JSON
holds DDP results beside every other benchmark. Each rank also times its epoch between two
barriers; rank 0's figures are kept as ``rank0_epoch_s``. Nothing here can hang the suite:
every wait has a timeout, a rank that dies is reported with its rank and exit code, and the
processes are terminated when the benchmark ends.

Under torchrun (:func:`launched_device`, :class:`LaunchedEpochs`), every process is one rank
of the same pytest session, on one node or across several:

    torchrun --nnodes 2 --nproc-per-node gpu --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m pytest benches --benchmark-only --bench-devices=ddp:cuda -k ddp

Only the ``ddp:cpu`` and ``ddp:cuda`` benchmarks run there; every timed round ends with the
rank's GPU synchronized and a barrier of all ranks, ranks agree on the number of rounds
through rank 0, and only rank 0 stores the run. torchrun's rendezvous waits ``--rdzv-conf
join_timeout`` (600 s by default) for the other nodes; every collective here times out after
``--bench-dist-timeout`` seconds.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import multiprocessing
import os
import queue
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from devicebench.reading.host import cpu_threads

from . import backends, env
from .config import DIST_TIMEOUT_S
from .devices import BenchDevice, rank_device

_timeout_s = DIST_TIMEOUT_S  # set from --bench-dist-timeout


def set_timeout(seconds: float) -> None:
    global _timeout_s
    _timeout_s = seconds


def threads_per_rank(ranks_on_this_machine: int) -> int:
    """Compute threads of each rank: the machine's shared out, so ranks do not fight over cores.

    (Loader workers are not shared out: each rank has one process's, see the CNN workload.)
    """
    return max(1, cpu_threads() // max(1, ranks_on_this_machine))


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


def _worker(rank, world_size, device_id, port, factory, threads, timeout_s, start_method, commands, results):
    parent = os.getppid()
    # A spawned process makes "spawn" its default start method, and the loader variant's
    # DataLoader would then start its workers by spawning a fresh interpreter every epoch
    # (seconds each; measured: a 1.7 s GPU epoch became 11 s). The ranks start them the way
    # the single-process benchmarks do.
    multiprocessing.set_start_method(start_method, force=True)
    try:
        torch.set_num_threads(threads)
        device = rank_device(device_id, rank, world_size)
        device.backend.set_current(device.torch_device)
        dist.init_process_group(
            device.collective,
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
        trainer = factory(device, rank, world_size)
        device.synchronize()  # the model and data are on the device: setup ends here
        results.put(("ready", rank, (trainer.dataset, trainer.n_train, trainer.workers, multiprocessing.get_start_method())))
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


@dataclass(frozen=True)
class _Stats:
    data_wait_s: float
    first_batch_s: float


class DistributedEpochs:
    """World-size processes training with DDP; :meth:`epoch` is one timed round.

    ``factory(device, rank, world_size)`` builds each rank's trainer in its own process: it
    must be picklable (a module-level function, or a ``functools.partial`` of one), and the
    trainer must have ``epoch()``, ``evaluate()``, ``stats``, ``dataset``, ``n_train``,
    ``samples_per_epoch`` and ``workers``.
    """

    def __init__(self, device: BenchDevice, factory: Callable[..., Any], timeout_s: float | None = None):
        self.device, self.world_size = device, device.world_size
        self.timeout_s = _timeout_s if timeout_s is None else timeout_s
        self.threads = threads_per_rank(self.world_size)
        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(self.world_size)]
        port = free_port()
        self.processes = [
            ctx.Process(
                target=_worker,
                args=(
                    rank, self.world_size, device.id, port, factory, self.threads, self.timeout_s,
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
        return [_Stats(records[0].data_wait_s, records[0].first_batch_s) for records in self.epochs]


# --- ranks started by torchrun -------------------------------------------------------------------


@functools.cache
def _barrier_group():
    """Joins the process group of all ranks (gloo on the CPU, NCCL on GPUs); returns a gloo group of them for barriers."""
    launch = env.current()
    torch.set_num_threads(threads_per_rank(launch.local_world_size))
    cuda = backends.BACKENDS["cuda"]
    use_nccl = cuda.unavailable() is None and cuda.collective_available() is None and cuda.count() >= launch.local_world_size
    if use_nccl:
        cuda.set_current(cuda.device(launch.local_rank))
    backend = "cpu:gloo,cuda:nccl" if use_nccl else "gloo"
    timeout = datetime.timedelta(seconds=_timeout_s)
    dist.init_process_group(backend, init_method="env://", timeout=timeout)
    atexit.register(dist.destroy_process_group)
    return dist.new_group(backend="gloo", timeout=timeout)


def launched_device(device_id: str) -> BenchDevice:
    """This process's device for ``ddp:cpu`` or ``ddp:cuda`` under torchrun, with the process group joined."""
    launch = env.current()
    local = launch.local_rank if device_id == "ddp:cuda" else None
    return rank_device(device_id, launch.rank, launch.world_size, local=local, group=_barrier_group(), launch=launch)


def _software(device: BenchDevice) -> dict:
    """What one rank runs on: versions and device, so that a multi-node figure names every node's."""
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "nccl": device.backend.collective_version() if device.collective == "nccl" else None,
        "device_name": device.backend.name(device.torch_device),
        "cpu_threads": cpu_threads(),
    }


class LaunchedEpochs:
    """This rank's trainer under torchrun, with the totals of all ranks that a DDP result records."""

    def __init__(self, device: BenchDevice, trainer: Any):
        self.device, self.trainer = device, trainer
        self.world_size, self.threads = device.launch.world_size, torch.get_num_threads()
        self.workers = trainer.workers
        shards = [None] * self.world_size
        mine = (trainer.n_train, trainer.samples_per_epoch, socket.gethostname(), _software(device))
        dist.all_gather_object(shards, mine, group=device.group)
        self.samples_per_rank = [samples for _, samples, _, _ in shards]
        self.n_train = sum(n for n, _, _, _ in shards)
        self.hosts = sorted({host for _, _, host, _ in shards})
        # The run's machine_info is rank 0's; every node's versions and device go with the result.
        self.node_software = {host: software for _, _, host, software in shards}
        self.samples_per_epoch = sum(self.samples_per_rank)

    def epoch(self):
        return self.trainer.epoch()

    def evaluate(self) -> tuple[float, float]:
        return self.trainer.evaluate()

    @property
    def stats(self) -> list:
        return self.trainer.stats
