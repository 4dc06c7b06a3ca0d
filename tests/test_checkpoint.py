"""A DataParallel model's weights, saved as ``model.module.state_dict()``, load into a plain model."""

import pytest
import torch

from devicebench.workloads import cnn, cnn_training


@pytest.mark.parametrize(
    "device_id",
    [
        "cpu",
        pytest.param("cuda:0", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")]),
    ],
)
def test_dataparallel_checkpoint_loads_into_a_plain_model(tmp_path, device_id):
    device = torch.device(device_id)
    dp = torch.nn.DataParallel(cnn_training.build_model().to(device))
    optimizer = torch.optim.Adam(dp.parameters())
    x = torch.rand(16, 1, 28, 28, device=device)
    for _ in range(3):  # weights that differ from a fresh model's
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(dp(x), torch.arange(16, device=device) % 10).backward()
        optimizer.step()
    path = tmp_path / "cnn.pt"
    torch.save(dp.module.state_dict(), path)

    plain = cnn_training.build_model()
    torch.nn.init.zeros_(plain[-1].weight)
    plain.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    assert not any(key.startswith("module.") for key in plain.state_dict())
    dp.eval(), plain.eval()
    with torch.no_grad():
        assert torch.allclose(plain(x.cpu()), dp(x).cpu(), atol=1e-5)


def test_the_model_is_the_tutorials():
    model = cnn_training.build_model()
    assert cnn_training.parameter_count(model) == 53_994
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_time_to_accuracy_counts_setup_and_training_time_until_the_target():
    assert cnn.time_to_accuracy([3.0, 1.0, 1.0, 1.0], [0.5, 0.79, 0.81, 0.85], 0.80) == (5.0, 3)
    # A CUDA graph's capture or the data's copy to the device happen before the first epoch: counted.
    assert cnn.time_to_accuracy([3.0, 1.0, 1.0, 1.0], [0.5, 0.79, 0.81, 0.85], 0.80, setup_s=2.5) == (7.5, 3)
    assert cnn.time_to_accuracy([3.0, 1.0], [0.5, 0.6], 0.80) == (None, None)


def test_cnn_guard():
    cnn.check("FashionMNIST", "seed", 0.4, 0.84)
    cnn.check("synthetic", "smoke", 1.2, 0.3)
    with pytest.raises(AssertionError, match="below the floor"):
        cnn.check("FashionMNIST", "seed", 0.6, 0.70)
    with pytest.raises(AssertionError, match="diverged"):
        cnn.check("MNIST", "smoke", float("nan"), 0.1)
    with pytest.raises(AssertionError, match="no better than chance"):
        cnn.check("MNIST", "smoke", 2.3, 0.1)


@pytest.mark.filterwarnings("ignore:CUDA is not available or torch_xla is imported")
def test_bf16_variant_code_runs_where_it_can(monkeypatch):
    """The bf16 variant's Python (autocast wrapper, channels_last, evaluation) on the CPU; a GPU runs it for real."""
    from devicebench.measure import data, devices

    images = data.synthetic(n_train=256, n_test=128)
    size = cnn.WORKLOAD.size("smoke")
    trainer = cnn.Trainer(devices.open_device("cpu"), "bf16", images, size, workers=0)
    assert isinstance(trainer.model, cnn_training.Bf16Autocast)
    assert trainer.train_x.is_contiguous(memory_format=torch.channels_last)
    loss = trainer.epoch()
    val_loss, accuracy = trainer.evaluate()
    assert torch.isfinite(loss) and 0 <= accuracy <= 1 and val_loss > 0
