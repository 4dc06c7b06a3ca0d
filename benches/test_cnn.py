"""The tutorial's CNN: training epochs on MNIST-format images, and the data pipeline alone."""

import contextlib
import statistics

import pytest
import torch

from devicebench import devices, distributed, launch, precision
from devicebench.workloads import cnn, pipeline


@pytest.mark.parametrize("variant", cnn.VARIANTS)
def test_cnn(bench, device, variant, request):
    bench.skip_if(cnn.unsupported(device, variant))
    image_data = request.getfixturevalue("image_data")
    size = bench.size.cnn
    workers = cnn.loader_workers(size)
    # The same global batch on every device: each DDP rank takes its share of it.
    batch = cnn.batch_per_process(size, device.world_size)
    bench.info.update(
        workload="cnn",
        variant=variant,
        dataset=image_data.name,
        batch_size=size.batch_size,
        global_batch=batch * device.world_size,
        epochs=size.epochs,
    )
    if device.is_ddp:
        bench.info["batch_per_rank"] = batch
    accuracies = []

    def evaluate_last_epoch():  # untimed: runs before each epoch, after the one before it
        if len(trainer.stats) > len(accuracies):
            accuracies.append(trainer.evaluate()[1])

    # Every variant under the same settings (PyTorch's defaults, no cuDNN autotuning), so
    # that variants differ only in what they name.
    with precision.settings(precision.PYTORCH_DEFAULTS), contextlib.ExitStack() as stack:
        if device.drives_ranks:  # one process per rank, each on its shard; see devicebench.distributed
            timeout_s = request.config.getoption("bench_dist_timeout")
            data_root = request.config.getoption("data_root")
            trainer = bench.setup(device, lambda: distributed.DistributedEpochs(device, variant, size, data_root, timeout_s))
            stack.callback(trainer.close)
        elif device.launch is not None:  # this process is one rank of torchrun's; see devicebench.launch
            trainer = bench.setup(device, lambda: launch.LaunchedEpochs(device, variant, image_data, size))
            bench.info.update(hosts=trainer.hosts, node_software=trainer.node_software)
        else:
            trainer = bench.setup(device, lambda: cnn.Trainer(device, variant, image_data, size, workers, batch_size=batch))
        bench.info.update(
            n_train=trainer.n_train,
            n_test=min(size.n_test, len(image_data.test)),
            samples=trainer.samples_per_epoch,
            workers=trainer.workers,
            parameters=cnn.parameter_count(cnn.build_model()),
        )
        last_loss = bench.run(device, trainer.epoch, setup=evaluate_last_epoch, rounds=size.rounds)
        bench.throughput("samples_per_s", trainer.samples_per_epoch)

        # Read back only now: every .item() above would have been a sync inside an epoch.
        final_loss = last_loss.item() if torch.is_tensor(last_loss) else last_loss  # DDP's ranks send a float
        val_loss, val_accuracy = trainer.evaluate()
        if device.drives_ranks and trainer.epochs:
            timed_rounds = len(bench.round_times())
            rank0 = [records[0].epoch_s for records in trainer.epochs[-timed_rounds:]] if timed_rounds else []
            bench.info.update(
                rank0_epoch_s=rank0,
                peak_memory_bytes=max((r.peak_memory_bytes or 0 for r in trainer.epochs[-1]), default=0) or None,
            )
        if device.is_ddp:
            bench.info.update(samples_per_rank=trainer.samples_per_rank, threads_per_rank=trainer.threads)
            if bench.median_s:
                bench.info["per_rank_samples_per_s"] = [n / bench.median_s for n in trainer.samples_per_rank]
    accuracies.append(val_accuracy)
    bench.info.update(final_loss=final_loss, val_loss=val_loss, val_accuracy=val_accuracy, accuracy_per_epoch=accuracies)
    timed = bench.round_times()
    if timed:
        timed_stats = trainer.stats[-len(timed) :]
        epoch_s = statistics.median(timed)
        data_wait_s = statistics.median(s.data_wait_s for s in timed_stats)
        target = cnn.TARGET_ACCURACY[image_data.name]
        tta_s, tta_epochs = cnn.time_to_accuracy(bench.call_times(), accuracies, target, setup_s=bench.info["setup_s"])
        bench.info.update(
            epoch_s=epoch_s,
            data_wait_s=data_wait_s,
            step_s=epoch_s - data_wait_s,
            first_batch_s=trainer.stats[0].first_batch_s,
            first_batch_steady_s=statistics.median(s.first_batch_s for s in timed_stats),
            target_accuracy=target,
            time_to_accuracy_s=tta_s,
            epochs_to_accuracy=tta_epochs,
        )
    cnn.check(image_data.name, bench.size.name, final_loss, val_accuracy)


@pytest.mark.parametrize("memory", pipeline.MEMORY)
@pytest.mark.parametrize("workers", pipeline.WORKERS, ids=lambda w: f"workers{w}")
def test_data_pipeline(bench, workers, memory, request):
    bench.skip_if(launch.skip_reason("cpu") or pipeline.unsupported(workers, memory))
    image_data = request.getfixturevalue("image_data")
    size = bench.size.data_pipeline
    one_pass = pipeline.build(image_data, size, workers, pinned=memory == "pinned")
    bench.info.update(
        workload="data_pipeline",
        variant=f"workers{workers}-{memory}",
        dataset=image_data.name,
        n_train=min(size.n_train, len(image_data.train)),
        batch_size=size.batch_size,
        workers=workers,
        pin_memory=memory == "pinned",
    )
    with precision.settings(precision.STRICT_FP32):  # no arithmetic here; recorded all the same
        samples = bench.run(devices.open_device("cpu"), one_pass, rounds=size.rounds)
    bench.info["samples"] = samples
    bench.throughput("samples_per_s", samples)
