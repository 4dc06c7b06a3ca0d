"""``--bench-instructions``: each CPU benchmark's instructions per call, counted under Valgrind.

After the timed benchmarks, one Valgrind process (callgrind, instrumentation off) runs the
CPU benchmarks that passed again, torch on one thread; each counts a few calls of its step
with instrumentation on only around them (:mod:`devicebench.measure.instructions`), and the
counts are stored with the timed results, under ``instructions``. One process for the run:
starting Python and torch under Valgrind takes about half a minute here (measured), which a
process per benchmark would pay again and again.

Valgrind is a system package: where it (or a C compiler and its ``valgrind/callgrind.h``)
is missing, the option is a usage error that says what to install.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from devicebench.measure import instructions as worker

from . import options

CALLS = 2  # counted calls per benchmark: their spread is stored with them (one training step of the CNN takes minutes)
COMPILED = (
    "compiled: torch.compile builds its CPU kernels for this machine's CPU (-march=native), whose AVX-512 "
    "instructions Valgrind cannot run (it stops the process with SIGILL)"
)
INSTALL = "Debian/Ubuntu: apt-get install valgrind; it brings valgrind/callgrind.h"


def unavailable() -> str | None:
    """Why instructions cannot be counted on this machine, or None."""
    if not sys.platform.startswith("linux"):
        return f"--bench-instructions counts under Valgrind on Linux; this is {sys.platform}"
    if shutil.which("valgrind") is None:
        return f"--bench-instructions counts under Valgrind, which is not installed ({INSTALL})"
    if shutil.which(os.environ.get("CC", "cc")) is None:
        return "--bench-instructions compiles Valgrind's client requests with a C compiler, and none was found (install gcc, or set CC)"
    return None


def build_client(folder: Path) -> Path:
    """Valgrind's client requests (``valgrind/callgrind.h``) as a small library this run loads."""
    source, library = folder / "client.c", folder / "client.so"
    source.write_text(worker.CLIENT_SOURCE)
    done = subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O1", "-o", str(library), str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise pytest.UsageError(f"--bench-instructions could not compile Valgrind's client requests ({INSTALL}): {first}")
    return library


def valgrind_version() -> str:
    done = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    return done.stdout.strip() or "valgrind"


class InstructionRun:
    """The Valgrind process of one run, and the counts it gives the timed results."""

    def __init__(self, config: pytest.Config):
        reason = unavailable()
        if reason:
            raise pytest.UsageError(reason)
        self.config = config
        self.folder = Path(tempfile.mkdtemp(prefix="devicebench-callgrind-"))
        self.client = build_client(self.folder)

    def _command(self, nodeids: list[str]) -> list[str]:
        config = self.config
        args = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--collect-atstart=no",
            f"--callgrind-out-file={self.folder / 'callgrind.out'}",
            f"--log-file={self.folder / 'valgrind.log'}",
            sys.executable,
            "-m",
            "pytest",
            *nodeids,
            f"--rootdir={config.rootpath}",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            f"--bench-size={options.get(config, 'bench_size')}",
        ]
        if config.inipath is not None:
            args += ["-c", str(config.inipath)]
        if config.getoption("data_root", None) is not None:
            args.append(f"--data-root={config.getoption('data_root')}")
        given = [str(arg) for arg in config.invocation_params.args]
        for flag, value in zip(given, given[1:]):  # plugins named on the command line (-p NAME)
            if flag == "-p":
                args += ["-p", value]
        return args

    def count(self, benches: list) -> None:
        """Count the instructions of every CPU benchmark among ``benches`` that ran and passed."""
        chosen = []
        for bench in benches:
            if bench.device is None or bench.device.id != "cpu" or not bench.passed:
                continue
            if "work_note" in bench.info:  # its work runs in other processes, which Valgrind does not follow
                bench.info["instructions_note"] = bench.info["work_note"]
                continue
            if bench.info.get("compile_mode") not in (None, "eager"):
                bench.info["instructions_note"] = COMPILED
                continue
            if isinstance(bench.info.get("workers"), int) and bench.info["workers"] > 0:
                bench.info["instructions_note"] = "its batches come from DataLoader's worker processes, which are not counted"
                continue
            chosen.append(bench)
        if not chosen:
            return
        write = self._writer()
        write(
            f"devicebench: counting the instructions of {len(chosen)} CPU benchmark(s) under Valgrind, in one process "
            f"(about half a minute to start; each counted call runs 50-100x slower): {CALLS} calls each"
        )
        out = self.folder / "counts.json"
        env = {
            **os.environ,
            worker.OUT_ENV: str(out),
            worker.CLIENT_ENV: str(self.client),
            worker.DUMPS_ENV: str(self.folder / "callgrind.out"),
            worker.CALLS_ENV: str(CALLS),
            # One thread: threads spinning while they wait would count as the step's instructions.
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONHASHSEED": "0",
        }
        log = self.folder / "pytest.log"
        started = time.perf_counter()
        with open(log, "wb") as sink:
            process = subprocess.Popen(self._command([b.nodeid for b in chosen]), cwd=self.config.rootpath, env=env, stdout=sink, stderr=subprocess.STDOUT)
            reported: set[str] = set()
            try:
                while process.poll() is None:
                    time.sleep(1.0)
                    self._report(out, chosen, reported, write, started)
            except BaseException:  # interrupted: what was counted is kept
                process.kill()
                process.wait()
                self._store(self._report(out, chosen, reported, write, started), chosen, "the run was interrupted before it")
                raise
        counts = self._report(out, chosen, reported, write, started)
        self._store(counts, chosen, f"the Valgrind run ended (exit {process.returncode}) before it; its log: {log}")
        if len(counts) < len(chosen):
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            why = [line for line in (self.folder / "valgrind.log").read_text(errors="replace").splitlines() if "unhandled instruction" in line or "Process terminating" in line]
            write(f"devicebench: the Valgrind run counted {len(counts)} of {len(chosen)} benchmarks (exit {process.returncode}); kept in {self.folder}")
            for line in why[:2] + tail:
                write(f"  {line}")
        else:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _store(self, counts: dict, chosen: list, why_not: str) -> None:
        tool = valgrind_version()
        for bench in chosen:
            found = counts.get(bench.nodeid)
            if found is None:
                bench.info["instructions_note"] = f"not counted: {why_not}"
                continue
            calls = found["calls"]
            bench.info["instructions"] = {**found, "tool": f"callgrind ({tool})", "threads": 1, "spread": (max(calls) - min(calls)) / statistics.median(calls)}

    def _report(self, out: Path, chosen: list, reported: set[str], write, started: float) -> dict:
        try:
            counts = json.loads(out.read_text()) if out.exists() else {}
        except (OSError, ValueError):
            return {}
        for bench in chosen:
            if bench.nodeid in counts and bench.nodeid not in reported:
                reported.add(bench.nodeid)
                per_call = counts[bench.nodeid]["per_call"]
                write(f"devicebench: [{len(reported)}/{len(chosen)}, {time.perf_counter() - started:.0f} s] {bench.nodeid.rsplit('/', 1)[-1]}: {per_call:,} instructions per call")
        return counts

    def _writer(self):
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return lambda line: print(line, file=sys.stderr)

        def write(line: str) -> None:
            reporter.ensure_newline()
            reporter.write_line(line)

        return write
