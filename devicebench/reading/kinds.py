"""Device ids as data: which ids exist, what kind of device and mode each names, and parsing
``--bench-devices``. No torch here: the pytest plugin reads these while it loads, in every
session of the environment (see :mod:`devicebench.measure.devices` for the devices themselves).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """A device id's kind of device and mode."""

    id: str
    backend: str
    mode: str  # "single", "dp" (DataParallel in one process) or "ddp" (one process a rank)
    ladder: bool = False  # also run on 1..N-1 GPUs, as ``<id>:K``


# In the order results list them; a new kind of device adds its ids here and a backend entry.
KINDS = (
    Kind("cpu", "cpu", "single"),
    Kind("cuda:0", "cuda", "single"),
    Kind("dp", "cuda", "dp", ladder=True),
    Kind("ddp:cpu", "cpu", "ddp"),
    Kind("ddp:cuda", "cuda", "ddp", ladder=True),
    Kind("mps", "mps", "single"),
)
BY_ID = {k.id: k for k in KINDS}
# The backends that are accelerators (``backends.BACKENDS[name].accelerator``, which a test
# holds this to), so that readers of stored runs need no torch to tell a GPU from the CPU.
ACCELERATOR_BACKENDS = frozenset({"cuda", "mps"})
DEVICE_IDS = tuple(BY_ID)
LADDER = re.compile(r"^(dp|ddp:cuda):([1-9][0-9]*)$")
VALID = f"valid devices: {', '.join(DEVICE_IDS)}, dp:K, ddp:cuda:K"


def kind_of(device_id: str) -> Kind:
    ladder = LADDER.match(device_id)
    return BY_ID[ladder.group(1)] if ladder else BY_ID[device_id]


def is_known(device_id: str) -> bool:
    return device_id in BY_ID or LADDER.match(device_id) is not None


def single_accelerators() -> list[str]:
    """The single-device accelerator ids, in the order results list them: ``cuda:0``, ``mps``."""
    return [k.id for k in KINDS if k.mode == "single" and k.backend in ACCELERATOR_BACKENDS]


def parse_device_list(text: str) -> tuple[str, ...]:
    """``"cpu,cuda:0"`` -> ``("cpu", "cuda:0")``; an unknown id is a ValueError naming the valid ones."""
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    if not ids:
        raise ValueError(f"no device given; {VALID}")
    unknown = [i for i in ids if not is_known(i)]
    if unknown:
        raise ValueError(f"unknown device {', '.join(map(repr, unknown))}; {VALID}")
    return tuple(dict.fromkeys(ids))


def is_selected(device_id: str, selected: tuple[str, ...]) -> bool:
    """``dp`` and ``ddp:cuda`` select their ladders (``dp:K``, ``ddp:cuda:K``) too."""
    ladder = LADDER.match(device_id)
    return device_id in selected or (ladder is not None and ladder.group(1) in selected)
