"""Which runs are of the same machine and software: the hardware a comparison keys on, the
software whose change it reports, and what a stored run must share to lend its spread."""

from __future__ import annotations

import re

from .host import NOISE_ENV
from .runs import Run, as_run
from .verdicts import HARDWARE_KEYS, SOFTWARE_KEYS


def hardware_diff(base: dict | Run, cand: dict | Run) -> list[tuple[str, object, object]]:
    b, c = as_run(base), as_run(cand)
    if not b.machine or not c.machine:
        return []
    # A fingerprint names "nodes" only for a torchrun job over several machines.
    bf, cf = ({"nodes": 1, **run.fingerprint} for run in (b, c))
    # A generic CPU name gains "cpu_detail"; a run stored before that has none, which is
    # unknown, not different (compare warns).
    unknown = {"cpu_detail"} if None in (bf.get("cpu_detail"), cf.get("cpu_detail")) else set()
    return [(k, bf.get(k), cf.get(k)) for k in HARDWARE_KEYS if k not in unknown and bf.get(k) != cf.get(k)]


def _cpu_detail_unknown(base: Run, cand: Run) -> str | None:
    details = [run.fingerprint.get("cpu_detail") for run in (base, cand)]
    if (details[0] is None) != (details[1] is None):
        side = "baseline" if details[0] is None else "candidate"
        return (
            f"the {side} run does not record which CPU generation its generic CPU name stands for "
            f"(stored before devicebench did): the other is {details[1] or details[0]}"
        )
    return None


def software_changes(base: dict | Run, cand: dict | Run) -> list[tuple[str, object, object]]:
    b, c = as_run(base).machine, as_run(cand).machine
    if not b or not c:
        return []
    return [(k, b.get(k), c.get(k)) for k in SOFTWARE_KEYS if b.get(k) != c.get(k)]


def same_machine(runs: list[dict | Run]) -> None:
    """Raise ValueError when runs of one side come from different hardware."""
    for other in runs[1:]:
        diff = hardware_diff(runs[0], other)
        if diff:
            raise ValueError("runs of different machines cannot be merged: " + "; ".join(f"{k}: {a!r} vs {b!r}" for k, a, b in diff))


def history_key(run: dict | Run) -> tuple:
    """What a stored run must share with the compared ones to lend its spread: fingerprint, size, software."""
    run = as_run(run)
    return (run.fingerprint.get("id"), run.size, tuple(run.machine.get(k) for k in SOFTWARE_KEYS))


_SETTING_VALUE = re.compile(r"[\w.,:=/+ -]{0,60}")


def _process_settings(run: Run) -> dict | None:
    """The settings a run recorded that move timings between processes (read from an untrusted file: known names, plain values)."""
    found = run.machine.get("process_settings")
    if not isinstance(found, dict):
        return None
    known = (*NOISE_ENV, "LD_PRELOAD", "transparent_hugepage", "aslr")
    kept = {k: v for k, v in found.items() if k in known and (v is None or isinstance(v, bool) or (isinstance(v, str) and _SETTING_VALUE.fullmatch(v)))}
    threads = run.machine.get("torch_threads")
    if isinstance(threads, int) and not isinstance(threads, bool):
        kept["torch threads"] = threads
    return kept


def settings_differ(base_run: Run, cand_run: Run) -> str:
    """What differs between two runs' process settings, where both recorded them."""
    base, cand = _process_settings(base_run), _process_settings(cand_run)
    if base is None or cand is None:
        return ""
    return ", ".join(f"{k}: {base.get(k, 'unset')} vs {cand.get(k, 'unset')}" for k in sorted(set(base) | set(cand), key=str) if base.get(k) != cand.get(k))
