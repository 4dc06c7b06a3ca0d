"""Your own models, timed with devicebench: a ResNet-18 training step, a TransformerEncoder's
inference, a hand-written Adam loop and an MLP's training step eager and under torch.compile,
on every device this machine has.

Copy this file into your project's tests (devicebench installed), then:

    pytest test_models.py --benchmark-only      # cpu, cuda:0, dp, ...; stored under results/<machine>/
    devicebench speedup latest                  # how much faster on the GPU, like for like; compiled vs eager
    devicebench compare 1 2                     # did the second run get slower, or train worse?

Each step's work is counted too (operators, FLOPs, host reads, copies): add a line that prints
the loss every step of test_custom_adam_loop, run again, and `devicebench compare 1 2` names
it, "the step now makes 50 more host reads of a device value ...: aten._local_scalar_dense
0 -> 50", with one run a side.

devicebench's own tests run this file through the installed plugin (tests/test_own_models.py).
"""

import pytest
import torch
import torchvision

RESNET_BATCH = 16


def test_resnet18_training_step(bench, device):
    """One SGD step of torchvision's ResNet-18 on a batch of 64x64 images (DataParallel on ``dp``)."""
    torch.manual_seed(0)
    model = device.wrap(torchvision.models.resnet18(num_classes=10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(RESNET_BATCH, 3, 64, 64, device=device.torch_device)
    y = torch.randint(0, 10, (RESNET_BATCH,), device=device.torch_device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss  # no .item() here: that would wait for the device inside the timed call

    loss = bench.run(device, step)
    bench.throughput("samples_per_s", RESNET_BATCH)
    # The model trained on every call, so this loss is after as many calls as the rounds took:
    # devicebench judges it only against runs that made as many (it records how many).
    bench.quality("final_loss", loss.item(), higher_is_better=False)


@pytest.mark.parametrize("batch", [8, 32])
def test_transformer_encoder_inference(bench, device, batch):
    """A two-layer TransformerEncoder over sequences of 64 tokens, without gradients; the batch is the variant."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=128, nhead=4, dim_feedforward=256, batch_first=True)
    model = device.wrap(torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)).eval()
    x = torch.randn(batch, 64, 128, device=device.torch_device)

    def step():
        with torch.inference_mode():
            return model(x)

    bench.run(device, step)
    bench.throughput("tokens_per_s", batch * 64)  # a unit of one's own: <things>_per_s


ADAM_STEPS = 50


def test_custom_adam_loop(bench, device):
    """50 steps of a hand-written Adam on a linear regression, each call from the same start."""
    gen = torch.Generator().manual_seed(0)
    n, features = 20_000, 8
    x = torch.randn(n, features, generator=gen).to(device.torch_device)
    y = x @ torch.arange(1.0, features + 1).to(device.torch_device) + 0.1 * torch.randn(n, generator=gen).to(device.torch_device)
    state = {}

    def reset():  # untimed, before every call: each call trains from zero weights
        state.update(w=torch.zeros(features, device=device.torch_device), m=0.0, v=0.0)

    def train():
        w, m, v = state["w"], state["m"], state["v"]
        for t in range(1, ADAM_STEPS + 1):
            grad = 2 / n * x.T @ (x @ w - y)
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad * grad
            w = w - 0.1 * (m / (1 - 0.9**t)) / ((v / (1 - 0.999**t)).sqrt() + 1e-8)
        state["w"] = w
        return ((x @ w - y) ** 2).mean()

    loss = bench.run(device, train, setup=reset)
    bench.throughput("steps_per_s", ADAM_STEPS)
    # Every call trains from the same start, so the loss is after the same work however many rounds ran.
    bench.quality("final_loss", loss.item(), higher_is_better=False, after=f"{ADAM_STEPS} Adam steps from the same start")


MLP_BATCH = 256


@pytest.mark.parametrize("compile_mode", ["eager", "default"])
def test_mlp_training_step(bench, device, compile_mode):
    """An MLP's training step, eager and under torch.compile: ``devicebench speedup`` sets the
    compiled one against the eager one on the same device and says after how many calls its
    compile time has paid off."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).to(device.torch_device)
    forward = bench.compile(device, model)  # the model as it is for eager; compiled, its compile time apart
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(MLP_BATCH, 64, device=device.torch_device)
    y = torch.randint(0, 10, (MLP_BATCH,), device=device.torch_device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss

    bench.run(device, step)
    bench.throughput("samples_per_s", MLP_BATCH)
