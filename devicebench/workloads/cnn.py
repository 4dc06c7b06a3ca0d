"""The tutorial's small CNN, one training epoch per timed round, on MNIST-format images.

Model (about 54k parameters): Conv2d 1->32 k3, MaxPool 2, Conv2d 32->64 k5, MaxPool 2,
Dropout2d 0.1, AdaptiveMaxPool 1x1, Flatten, Linear 64->32, ReLU, Linear 32->10; Adam,
cross-entropy, batch 128. The model keeps training from round to round, so the accuracy
after the timed epochs is a real check of what the timed code learned.

Variants:
- ``loader``: torch's DataLoader over torchvision's dataset with ``ToTensor`` and worker
  processes, as the tutorial does it (pinned memory on a GPU);
- ``resident``: the whole training set as one tensor on the device, batches picked by a
  permutation index: no host work per batch;
- ``bf16`` (bf16 tensor cores): ``resident`` under bf16 autocast with channels_last tensors;
- ``cudagraph`` (CUDA graphs): ``resident`` with the whole training step captured in a CUDA
  graph and replayed per batch (a partial last batch would change shapes: it is dropped);
- ``compile``: ``resident`` with the model (forward, and backward through AOTAutograd) and the
  optimizer's step under ``torch.compile``; the first batch compiles, and a partial last batch
  compiles once more (a recompile in the cold epoch, counted; see :mod:`devicebench.measure.compiling`);
  evaluation runs the same weights eagerly;
- ``compile-reduce-overhead``: the same in ``mode="reduce-overhead"`` (the compiler's CUDA graphs).

Every variant runs under PyTorch's defaults (cuDNN TF32 on, autotuning off), so variants
differ only in what they name, and trains ``epochs`` per size. Under DDP each rank trains its
shard with its share of the same global batch (see :func:`batch_per_process`).

Each epoch also records how long the host waited for data (``data_wait_s``) and how long
the first batch took to arrive (``first_batch_s``, worker start-up included).
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass

import torch

from devicebench.measure import compiling, data, distributed
from devicebench.measure.precision import PYTORCH_DEFAULTS
from devicebench.reading.host import cpu_threads

from . import COMPILE_NO_DDP, Context, Step, Timed, Variant, Workload, compiled_variants
from .cnn_training import CnnSize, Trainer, build_model, parameter_count


def loader_workers(size: CnnSize) -> int:
    """DataLoader workers of every training process: the same in one process and in each DDP rank.

    A DDP job runs the same script in every rank, with the same ``num_workers``; giving the
    ranks fewer would measure a different data pipeline, not DDP.
    """
    return min(size.loader_workers, cpu_threads())


def batch_per_process(size: CnnSize, world_size: int) -> int:
    """Each DDP rank's batch, so that the global batch (and so the optimizer's steps) equals one process's."""
    return max(1, size.batch_size // world_size)


@dataclass(frozen=True)
class AccuracyFloor:
    """What the CNN must reach on real data after the timed epochs at seed size.

    Measured: Fashion-MNIST gave 0.80 after 1 epoch and 0.85 after 4 (2 CPU cores, both
    variants, see README); 0.82-0.85 after 2-4 epochs on an H100. The tutorial reports about
    0.96 on MNIST after 3 epochs. The floors sit well below, so a run that trains wrong (a
    broken step, labels out of step with images) fails while noise between runs does not.
    """

    MNIST: float = 0.93
    FashionMNIST: float = 0.78


FLOORS = AccuracyFloor()
# Time to accuracy: training seconds until validation accuracy first reaches this target, as
# MLPerf and DAWNBench measure training. Set where the seed size's 2 epochs get (Fashion-MNIST:
# 0.80 after 1 epoch, 0.82-0.84 after 2, measured on every variant; MNIST: 0.95, from the
# tutorial's curve, unmeasured here), so a seed run reaches it and the figure says more than
# one epoch's time.
TARGET_ACCURACY = {"MNIST": 0.95, "FashionMNIST": 0.82, "synthetic": 0.90}


def check(dataset: str, size_name: str, final_loss: float, val_accuracy: float) -> None:
    """Raise AssertionError unless training gave finite numbers, beat chance, and cleared the floor on real data at seed size."""
    if not (math.isfinite(final_loss) and math.isfinite(val_accuracy)):
        raise AssertionError(f"training diverged: final loss {final_loss}, val accuracy {val_accuracy}")
    if val_accuracy <= 0.1:
        raise AssertionError(f"val accuracy {val_accuracy:.4f} is no better than chance (0.1)")
    floor = getattr(FLOORS, dataset, None)
    if size_name == "seed" and floor is not None and val_accuracy < floor:
        raise AssertionError(f"val accuracy {val_accuracy:.4f} on {dataset} is below the floor {floor}")


def time_to_accuracy(
    epoch_s: list[float], accuracies: list[float], target: float, setup_s: float = 0.0
) -> tuple[float | None, int | None]:
    """Seconds from the first touch of the data until accuracy first reaches ``target``, and the epochs it took.

    As MLPerf counts a training run: ``setup_s`` (model, data on the device, a CUDA graph's
    capture) and every epoch, the cold one included; evaluation is not counted.
    """
    elapsed = setup_s
    for i, (seconds, accuracy) in enumerate(zip(epoch_s, accuracies)):
        elapsed += seconds
        if accuracy >= target:
            return elapsed, i + 1
    return None, None


def rank_trainer(device, rank: int, world_size: int, *, variant: str, size: CnnSize, data_root) -> Trainer:
    """One DDP rank's trainer, inside its own process: it loads the images itself, trains its
    shard with its share of the global batch, and has one process's loader workers."""
    images = data.load(data_root)
    return Trainer(device, variant, images, size, loader_workers(size), shard=(rank, world_size), batch_size=batch_per_process(size, world_size))


def build(device, variant: Variant, size: CnnSize, context: Context) -> Step:
    """The step: one epoch a call, evaluated between epochs (untimed), checked after the last."""
    images = context.images()
    batch = batch_per_process(size, device.world_size)
    info = {"dataset": images.name, "batch_size": size.batch_size, "global_batch": batch * device.world_size, "epochs": size.epochs}
    if device.is_ddp:
        info["batch_per_rank"] = batch
    close = None
    if device.drives_ranks:  # one process per rank, each on its shard; see devicebench.measure.distributed
        factory = functools.partial(rank_trainer, variant=variant.name, size=size, data_root=context.data_root)
        trainer = distributed.DistributedEpochs(device, factory, context.dist_timeout_s)
        close = trainer.close
    elif device.launch is not None:  # this process is one rank of torchrun's
        launch = device.launch
        local = Trainer(device, variant.name, images, size, loader_workers(size), shard=(launch.rank, launch.world_size), batch_size=batch)
        trainer = distributed.LaunchedEpochs(device, local)
        info.update(hosts=trainer.hosts, node_software=trainer.node_software)
    else:
        trainer = Trainer(device, variant.name, images, size, loader_workers(size), batch_size=batch, compile_mode=variant.compile_mode)
    info.update(
        n_train=trainer.n_train,
        n_test=min(size.n_test, len(images.test)),
        samples=trainer.samples_per_epoch,
        workers=trainer.workers,
        parameters=parameter_count(build_model()),
    )
    accuracies: list[float] = []

    def evaluate_last_epoch() -> None:  # untimed: runs before each epoch, after the one before it
        if len(trainer.stats) > len(accuracies):
            accuracies.append(trainer.evaluate()[1])

    def finish(timed: Timed) -> dict:
        # Read back only now: every .item() above would have been a sync inside an epoch.
        last = timed.last
        final_loss = last.item() if torch.is_tensor(last) else last  # DDP's ranks send a float
        val_loss, val_accuracy = trainer.evaluate()
        out = {}
        if device.drives_ranks and trainer.epochs:
            rank0 = [records[0].epoch_s for records in trainer.epochs[-len(timed.round_s) :]] if timed.round_s else []
            peak = max((r.peak_memory_bytes or 0 for r in trainer.epochs[-1]), default=0) or None
            out.update(rank0_epoch_s=rank0, peak_memory_bytes=peak)
        if device.is_ddp:
            out.update(samples_per_rank=trainer.samples_per_rank, threads_per_rank=trainer.threads)
            if timed.median_s:
                out["per_rank_samples_per_s"] = [n / timed.median_s for n in trainer.samples_per_rank]
        accuracies.append(val_accuracy)
        out.update(final_loss=final_loss, val_loss=val_loss, val_accuracy=val_accuracy, accuracy_per_epoch=accuracies)
        if timed.round_s:
            timed_stats = trainer.stats[-len(timed.round_s) :]
            epoch_s = statistics.median(timed.round_s)
            data_wait_s = statistics.median(s.data_wait_s for s in timed_stats)
            target = TARGET_ACCURACY[images.name]
            tta_s, tta_epochs = time_to_accuracy(timed.call_s, accuracies, target, setup_s=timed.setup_s)
            out.update(
                epoch_s=epoch_s,
                data_wait_s=data_wait_s,
                step_s=epoch_s - data_wait_s,
                first_batch_s=trainer.stats[0].first_batch_s,
                first_batch_steady_s=statistics.median(s.first_batch_s for s in timed_stats),
                target_accuracy=target,
                time_to_accuracy_s=tta_s,
                epochs_to_accuracy=tta_epochs,
            )
        check(images.name, context.size_name, final_loss, val_accuracy)
        if variant.compile_mode is not None:  # the same compile from a warm cache: one more batch, after all was read
            out["compile_warm_s"] = compiling.warm_compile_s(device, trainer.warm_step)
        return out

    return Step(
        call=trainer.epoch,
        work=trainer.samples_per_epoch,
        setup=evaluate_last_epoch,
        info=info,
        rounds=size.rounds,
        finish=finish,
        close=close,
        **_counted(trainer),
    )


def _counted(trainer) -> dict:
    """An epoch is too long to count whole: its first training step stands in for it (DDP's ranks are not counted)."""
    if not isinstance(trainer, Trainer):
        return {}
    return {"count": trainer.first_batch, "counted": f"the first of an epoch's {trainer.batches_per_epoch} training steps"}


ON_THREADS = "DataParallel runs its replicas on threads and cannot be captured in a CUDA graph"

WORKLOAD = Workload(
    name="cnn",
    variants=(
        Variant("loader", PYTORCH_DEFAULTS),
        Variant("resident", PYTORCH_DEFAULTS),
        # Both keep the data on the device, as resident does: resident is their CPU reference.
        Variant(
            "bf16",
            PYTORCH_DEFAULTS,
            needs=frozenset({"bf16"}),
            cpu_reference="resident",
            no_ddp="bf16 under DistributedDataParallel is not measured yet; ddp runs loader and resident",
        ),
        Variant(
            "cudagraph",
            PYTORCH_DEFAULTS,
            needs=frozenset({"graphs"}),
            cpu_reference="resident",
            no_dp=ON_THREADS,
            no_ddp="cudagraph under DistributedDataParallel is not measured yet; ddp runs loader and resident",
        ),
        # resident's work, compiled: set against resident on its own device.
        *compiled_variants("resident", PYTORCH_DEFAULTS, no_ddp=COMPILE_NO_DDP),
    ),
    sizes={
        # A CPU epoch takes 15-23 s on 2 cores, and four CPU benchmarks train (cpu and ddp:cpu,
        # loader and resident): 2 epochs, the cold one and one timed, keep them near 3 minutes of
        # the seed suite's 4. The run is the unit of evidence, so one timed epoch is the run's
        # figure, as one median is; 2 epochs take Fashion-MNIST to 0.82-0.84, past the floor (0.78).
        "seed": CnnSize(n_train=60_000, n_test=10_000, epochs=2),
        "smoke": CnnSize(n_train=1024, n_test=512, epochs=4, loader_workers=2),
    },
    unit="samples_per_s",
    build=lambda *args: build(*args),
    devices="training",
    size_keys=("batch_size",),
)
