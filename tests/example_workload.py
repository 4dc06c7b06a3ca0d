"""A workload declared outside devicebench, as adding one takes: this module and one bench file.

Loaded with ``-p tests.example_workload`` beside ``tests/data/example/test_mlp_block.py``: a
two-layer MLP block's forward and backward, with a bf16 variant where a device has bf16
tensor cores. ``tests/test_architecture.py`` runs it through the real plugin.
"""

from dataclasses import dataclass

import torch

from devicebench import workloads
from devicebench.workloads import Step, Variant, Workload


@dataclass(frozen=True)
class BlockSize:
    batch: int
    width: int


def build(device, variant, size, context=None):
    torch.manual_seed(0)
    block = device.wrap(torch.nn.Sequential(torch.nn.Linear(size.width, 4 * size.width), torch.nn.GELU(), torch.nn.Linear(4 * size.width, size.width)))
    x = torch.randn(size.batch, size.width, device=device.torch_device)
    dtype = torch.bfloat16 if variant.name == "bf16" else None

    def step():
        with torch.autocast(device.backend.autocast_type, dtype=dtype, enabled=dtype is not None):
            loss = block(x).float().pow(2).mean()
        loss.backward()
        return loss

    return Step(call=step, work=size.batch)


WORKLOAD = workloads.register(
    Workload(
        name="mlp_block",
        variants=(Variant("fp32"), Variant("bf16", needs=frozenset({"bf16"}), cpu_reference="fp32")),
        sizes={"smoke": BlockSize(batch=32, width=64), "seed": BlockSize(batch=512, width=1024)},
        unit="samples_per_s",
        build=build,
        size_keys=("batch", "width"),
    )
)
