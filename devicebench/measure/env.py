"""What torchrun tells each of its processes, read from the environment.

The bottom layer: it imports nothing of devicebench, so every module may ask whether this
process is one rank of a torchrun job without pulling in the distributed machinery.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Launch:
    """This process's place in a torchrun job."""

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
