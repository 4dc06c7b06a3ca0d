"""The suite under torchrun: every process is one DDP rank, on one node or across several.

    torchrun --nnodes 2 --nproc-per-node gpu --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m pytest benches --benchmark-only --bench-devices=ddp:cuda -k ddp

Each rank runs the same pytest session. Only the ``ddp:cpu`` and ``ddp:cuda`` benchmarks run
(anything else would share its node with the other ranks and time the crowd); their world
size is the launcher's. Every rank trains its shard of the data; every timed round ends with
the rank's GPU synchronized and a barrier of all ranks, so rank 0's rounds (what
pytest-benchmark times there) span the slowest rank's epoch. Ranks agree on the number of
rounds through rank 0. Only rank 0 stores the run, in the usual place and format, so
``devicebench show/compare/report`` read it like any other.

Timeouts: torchrun's rendezvous waits ``--rdzv-conf join_timeout`` (600 s by default) for
the other nodes; every collective here times out after ``--bench-dist-timeout`` seconds (600 by
default), a rank whose benchmark failed stops its session (the others' collectives then fail),
and torchrun ends the other ranks of a node when one exits with an error.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import os
import socket
from dataclasses import dataclass

import torch

from .fingerprint import cpu_threads

_timeout_s = 600.0  # set from --bench-dist-timeout
ONLY_DDP = "launched by torchrun: only ddp:cpu and ddp:cuda run (other benchmarks would share the node with the ranks)"


@dataclass(frozen=True)
class Launch:
    """What torchrun tells each of its processes, through the environment."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    run_id: str | None

    @property
    def nodes(self) -> int:
        return max(1, self.world_size // max(1, self.local_world_size))

    def describe(self) -> dict:
        return {
            "launcher": "torchrun",
            "nodes": self.nodes,
            "ranks_per_node": self.local_world_size,
            "rdzv_run_id": self.run_id,
        }


@functools.cache
def current() -> Launch | None:
    """This process's place in a torchrun job, or None when torchrun did not start it."""
    env = os.environ
    if "TORCHELASTIC_RUN_ID" not in env or "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    try:
        return Launch(
            rank=int(env["RANK"]),
            world_size=int(env["WORLD_SIZE"]),
            local_rank=int(env.get("LOCAL_RANK", "0")),
            local_world_size=int(env.get("LOCAL_WORLD_SIZE", "1")),
            node_rank=int(env.get("GROUP_RANK", "0")),
            run_id=env.get("TORCHELASTIC_RUN_ID"),
        )
    except ValueError:
        return None


def is_secondary_rank() -> bool:
    """A rank other than 0: it runs every round with the others but stores nothing."""
    launch = current()
    return launch is not None and launch.rank != 0


def skip_reason(device_id: str) -> str | None:
    """Why a device does not run under this torchrun job, or None (also when not launched)."""
    launch = current()
    if launch is None:
        return None
    if device_id not in ("ddp:cpu", "ddp:cuda"):
        if device_id.startswith("ddp:cuda:"):
            return f"launched by torchrun: the world size is the launcher's ({launch.world_size}), not {device_id}'s"
        return ONLY_DDP
    if device_id == "ddp:cuda" and torch.cuda.device_count() < launch.local_world_size:
        return f"launched by torchrun with {launch.local_world_size} ranks on this node, but {torch.cuda.device_count()} GPUs are visible"
    return None


def set_timeout(seconds: float) -> None:
    global _timeout_s
    _timeout_s = seconds


@functools.cache
def _barrier_group():
    """Joins the process group of all ranks (gloo on the CPU, NCCL on GPUs); returns a gloo group of them for barriers."""
    import torch.distributed as dist

    launch = current()
    torch.set_num_threads(max(1, cpu_threads() // launch.local_world_size))  # ranks must not fight over cores
    use_nccl = torch.cuda.is_available() and dist.is_nccl_available() and torch.cuda.device_count() >= launch.local_world_size
    if use_nccl:
        torch.cuda.set_device(launch.local_rank)
    backend = "cpu:gloo,cuda:nccl" if use_nccl else "gloo"
    timeout = datetime.timedelta(seconds=_timeout_s)
    dist.init_process_group(backend, init_method="env://", timeout=timeout)
    atexit.register(dist.destroy_process_group)
    return dist.new_group(backend="gloo", timeout=timeout)


def rank_device(device_id: str):
    """This process's device for ``ddp:cpu`` or ``ddp:cuda``, with the process group joined."""
    from .devices import rank_device as _rank_device

    launch = current()
    gpu = launch.local_rank if device_id == "ddp:cuda" else None
    return _rank_device(device_id, launch.rank, launch.world_size, gpu=gpu, group=_barrier_group(), launch=launch)


def _nccl_version() -> str:
    version = torch.cuda.nccl.version()  # a tuple in current torch, an int in older ones
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def _software(device) -> dict:
    """What one rank runs on: versions and device, so that a multi-node figure names every node's."""
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "nccl": _nccl_version() if device.is_cuda else None,
        "device_name": torch.cuda.get_device_name(device.torch_device) if device.is_cuda else None,
        "cpu_threads": cpu_threads(),
    }


class LaunchedEpochs:
    """This rank's CNN trainer, with the totals of all ranks that the CNN benchmark records."""

    def __init__(self, device, variant: str, images, size):
        import torch.distributed as dist

        from .workloads import cnn

        launch = device.launch
        self.device, self.world_size, self.threads = device, launch.world_size, torch.get_num_threads()
        # As devicebench.distributed gives each rank: one process's loader workers, a share of the global batch.
        batch = cnn.batch_per_process(size, launch.world_size)
        self.trainer = cnn.Trainer(
            device, variant, images, size, cnn.loader_workers(size), shard=(launch.rank, launch.world_size), batch_size=batch
        )
        self.workers = self.trainer.workers
        shards = [None] * launch.world_size
        mine = (self.trainer.n_train, self.trainer.samples_per_epoch, socket.gethostname(), _software(device))
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


class StopAllRanks:
    """A pytest plugin for torchrun's ranks: after a failed benchmark this rank stops its session.

    The ranks run every benchmark in lockstep; one that failed and went on to the next would
    meet the others in the wrong collective. Stopping ends this rank's process, the others'
    collectives then fail (or torchrun ends them), and rank 0 still stores what it measured.
    """

    session = None

    def pytest_sessionstart(self, session) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed and self.session is not None:
            rank = current().rank
            self.session.shouldstop = f"rank {rank} failed in {report.nodeid}; the ranks run in lockstep, so rank {rank} stops"
