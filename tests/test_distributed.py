"""DistributedDataParallel's processes: a failing rank is reported with its rank and error, and nothing is left running."""

import functools
import multiprocessing
import socket

import pytest

from devicebench.measure import devices, distributed
from devicebench.workloads import cnn

from .test_data import write_idx

SMOKE = cnn.WORKLOAD.size("smoke")


def ddp_cpu(variant: str, root, timeout_s: float = 120) -> distributed.DistributedEpochs:
    """The CNN's DDP ranks on the CPU, as the benchmark starts them."""
    factory = functools.partial(cnn.rank_trainer, variant=variant, size=SMOKE, data_root=root)
    return distributed.DistributedEpochs(devices.open_device("ddp:cpu"), factory, timeout_s)


def test_a_rank_that_fails_is_named_and_every_process_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEBENCH_CACHE", str(tmp_path / "cache"))
    raw = tmp_path / "root" / "MNIST" / "raw"
    write_idx(raw, compress=False)
    (raw / "train-images-idx3-ubyte").write_bytes(b"not an idx file")  # every rank fails to load it
    started = []
    real_init = distributed.DistributedEpochs.__init__

    def keep_processes(self, *args, **kwargs):
        try:
            real_init(self, *args, **kwargs)
        finally:
            started.extend(self.processes)

    monkeypatch.setattr(distributed.DistributedEpochs, "__init__", keep_processes)
    with pytest.raises(distributed.RankFailed, match=r"rank [01]: DataError: .*not readable as MNIST IDX files"):
        ddp_cpu("resident", tmp_path / "root")
    assert len(started) == 2 and not any(p.is_alive() for p in started)


def test_the_port_is_chosen_free():
    port = distributed.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nobody holds it


def test_a_rank_may_start_dataloader_workers(tmp_path, monkeypatch):
    """The ranks are not daemonic processes: the loader variant's workers need a parent that may have children."""
    monkeypatch.setenv("DEVICEBENCH_CACHE", str(tmp_path / "cache"))
    write_idx(tmp_path / "root" / "MNIST" / "raw", compress=False)
    ranks = ddp_cpu("loader", tmp_path / "root")
    try:
        # One process's loader workers in each rank: the data pipeline DDP is compared with.
        assert ranks.workers == cnn.loader_workers(SMOKE) >= 1
        assert ranks.loader_start_method == multiprocessing.get_start_method()  # not "spawn", inherited from the rank
        loss = ranks.epoch()
        assert loss == loss and [r.samples for r in ranks.epochs[-1]] == ranks.samples_per_rank
    finally:
        ranks.close()
    assert not any(p.is_alive() for p in ranks.processes)


def test_the_rank_that_died_is_named_first(tmp_path, monkeypatch):
    """Killed mid-job, rank 1 takes rank 0's collective down: the report names rank 1 and its exit code."""
    monkeypatch.setenv("DEVICEBENCH_CACHE", str(tmp_path / "cache"))
    write_idx(tmp_path / "root" / "MNIST" / "raw", compress=False)
    ranks = ddp_cpu("resident", tmp_path / "root")
    try:
        ranks.processes[1].kill()
        with pytest.raises(distributed.RankFailed, match=r"^rank 1 died \(exit code -9\)"):
            ranks.epoch()
    finally:
        ranks.close()
    assert not any(p.is_alive() for p in ranks.processes)
