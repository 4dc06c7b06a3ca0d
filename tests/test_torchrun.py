"""The suite under torchrun, as on a cluster: two "nodes" (two launchers) meeting on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from devicebench import cli
from devicebench.measure import distributed
from devicebench.reading import runs

from .conftest import BENCHES, ROOT

TIMEOUT_S = 240


def launch_two_nodes(tmp_path, *pytest_args: str, env_extra: dict | None = None) -> list[subprocess.CompletedProcess]:
    """``torchrun --nnodes 2 --node-rank {0,1}`` with a c10d rendezvous on 127.0.0.1, one rank per node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS", "TORCHELASTIC"))}
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(env_extra or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["DEVICEBENCH_CACHE"] = str(tmp_path / "cache")
    endpoint = f"127.0.0.1:{distributed.free_port()}"
    run_id = uuid.uuid4().hex[:12]
    launchers = []
    for node in (0, 1):
        cmd = [
            sys.executable, "-m", "torch.distributed.run",
            "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node), "--max-restarts", "0",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", run_id,
            "-m", "pytest", str(BENCHES), "-p", "no:cacheprovider", "-p", "no:randomly", "--benchmark-only", "--bench-size=smoke",
            "--bench-devices=cpu,ddp:cpu", "--bench-dist-timeout=60", "--benchmark-autosave", f"--benchmark-storage=file://{tmp_path / 'results'}",
            *pytest_args,
        ]  # fmt: skip
        log = open(tmp_path / f"node{node}.log", "w")
        launchers.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    done = []
    for proc, log in launchers:
        try:
            proc.wait(timeout=TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, (tmp_path / f"node{len(done)}.log").read_text()))
    return done


def test_two_nodes_on_loopback_store_one_run_from_rank_0(tmp_path, capsys):
    nodes = launch_two_nodes(tmp_path, "-k", "cnn and resident")
    for node in nodes:
        assert node.returncode == 0, node.stdout[-3000:]
    files = sorted((tmp_path / "results").glob("*/*.json"))
    assert len(files) == 1, files  # rank 0 alone stores the run
    run = runs.load_run(files[0])
    by_name = {b["name"]: b for b in run["benchmarks"]}
    assert set(by_name) == {"test_cnn[ddp:cpu-resident]"}
    info = by_name["test_cnn[ddp:cpu-resident]"]["extra_info"]
    assert (info["world_size"], info["backend"], info["launcher"], info["nodes"]) == (2, "gloo", "torchrun", 2)
    fingerprint = run["machine_info"]["devicebench"]["fingerprint"]
    assert fingerprint["nodes"] == 2 and "-2-nodes-" in fingerprint["slug"]  # stored and compared apart from one machine's runs
    assert len(info["samples_per_rank"]) == 2 and sum(info["samples_per_rank"]) == info["samples"]
    [(host, software)] = info["node_software"].items()  # both "nodes" are this machine
    assert info["hosts"] == [host] and software["torch"] == run["machine_info"]["devicebench"]["torch"]
    assert by_name["test_cnn[ddp:cpu-resident]"]["stats"]["rounds"] >= 3
    skipped = {s["name"]: s["reason"] for s in run["devicebench"]["skipped"]}
    assert skipped["test_cnn[cpu-resident]"].startswith("launched by torchrun: only ddp:cpu and ddp:cuda run")
    assert skipped["test_cnn[cuda:0-resident]"].startswith("not selected")
    # The stored run is an ordinary one: show reads it.
    assert cli.main(["show", str(files[0])]) == 0
    assert "test_cnn[ddp:cpu-resident]" in capsys.readouterr().out


def test_a_failing_rank_ends_every_node_and_is_named(tmp_path):
    nodes = launch_two_nodes(tmp_path, "-p", "tests.plugins.rank_fails", "-k", "cnn and resident", env_extra={"DEVICEBENCH_FAIL_RANK": "1"})
    assert all(node.returncode != 0 for node in nodes), [node.stdout[-2000:] for node in nodes]
    output = "\n".join(node.stdout for node in nodes)
    assert "RuntimeError: injected failure on rank 1" in output
    assert "rank 1 failed in" in output  # the rank stopped its session instead of running on alone


def test_a_torchrun_run_from_a_gpu_machine_reads_like_any_other(capsys):
    """Made by .ci/gpu-check on an H200: torchrun, one rank, NCCL (see tests/data/make-golden)."""
    path = ROOT / "tests" / "data" / "runs" / "gpu" / "torchrun-ddp-cuda-smoke.json"
    run = runs.load_run(path)
    [bench] = run["benchmarks"]
    info = bench["extra_info"]
    assert bench["name"] == "test_cnn[ddp:cuda-resident]"
    assert (info["world_size"], info["backend"], info["launcher"], info["nodes"]) == (1, "nccl", "torchrun", 1)
    assert info["cuda_event_median_s"] > 0  # rank 0 is a real rank with its own GPU: events and memory are its own
    assert cli.main(["show", str(path)]) == 0
    assert "NVIDIA H200" in capsys.readouterr().out
