"""A store that a fleet's CI jobs share: stored runs on a branch of a git repository.

Runs made by ephemeral CI jobs, on many machines, end up in one durable place, as
github-action-benchmark keeps its data on a gh-pages branch: ``devicebench store push`` adds
runs to the branch (``devicebench-runs`` by default) as ``<machine slug>/<platform>/NNNN_*.json``,
numbered after the runs already there, and ``devicebench store pull`` brings the branch into a
folder that ``history`` and ``report`` read (through the index beside the runs).

Two jobs pushing at once lose nothing: a push is git's compare-and-swap on the branch (accepted
only as a fast-forward of what the job read), so the job that comes second is refused, reads
the branch again, numbers its runs after the other's and pushes again. A run whose content is
already in its folder is not stored twice (a job run again). The push reads no file of the
branch (``--filter=blob:none``, where the server allows it): its cost does not grow with the
history.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .reading.run_ids import stored_runs
from .reading.runs import RUN_FILE, BadRun, as_run, load_run

BRANCH = "devicebench-runs"
ATTEMPTS = 20
SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
PLATFORM = re.compile(r"[A-Za-z0-9]+-[A-Za-z0-9]+-[0-9.]+-[0-9]+bit")
NUMBER = re.compile(r"([0-9]{4,})_")
IDENTITY = {"GIT_AUTHOR_NAME": "devicebench", "GIT_AUTHOR_EMAIL": "devicebench@localhost", "GIT_COMMITTER_NAME": "devicebench", "GIT_COMMITTER_EMAIL": "devicebench@localhost"}


class StoreError(Exception):
    """What went wrong, in one line."""


def _said(proc: subprocess.CompletedProcess, default: str) -> str:
    """git's own reason, in one line: its first fatal or error line, else its last line."""
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    first = next((line for line in lines if line.startswith(("fatal:", "error:"))), lines[-1] if lines else default)
    return first[:300]


@dataclass(frozen=True)
class Stored:
    source: Path
    path: str  # where it is on the branch; "" when its content was there already
    existing: str = ""  # the file that already held the same content


def _git(repo: Path | None, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``git -C repo ARGS`` (or plain ``git ARGS``), as devicebench, with one-line errors."""
    where = ["-C", str(repo)] if repo is not None else []
    try:
        proc = subprocess.run(["git", *where, *args], capture_output=True, text=True, env={**os.environ, **IDENTITY, **(env or {})})
    except FileNotFoundError:
        raise StoreError("git is not installed: the store is a git repository") from None
    if check and proc.returncode != 0:
        raise StoreError(f"git {args[0]}: {_said(proc, 'failed')}")
    return proc


def destination(path: Path, run) -> tuple[str, str]:
    """(folder, name after its number) of a run on the branch: ``<slug>/<platform>``, from what the
    run says (a name read from an untrusted file becomes a path only if it is plain)."""
    slug = str(run.fingerprint.get("slug") or "")
    slug = slug if SAFE.fullmatch(slug) else "unknown-machine"
    platform = path.parent.name if PLATFORM.fullmatch(path.parent.name) else "runs"
    rest = path.name.split("_", 1)[1] if RUN_FILE.fullmatch(path.name) else path.name
    rest = rest if SAFE.fullmatch(rest) and rest.endswith(".json") else "run.json"
    return f"{slug}/{platform}", rest


def runs_to_store(sources: list[str]) -> list[Path]:
    """The run files of ``sources`` (files, or folders of stored runs), each checked: a file that is not a run is refused."""
    found: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            paths = stored_runs(source)
            if not paths:
                raise StoreError(f"{source}: no stored runs (NNNN_*.json) in this folder")
        elif source.is_file():
            paths = [source]
        else:
            raise StoreError(f"{source}: no such file or folder")
        found += [p for p in paths if p not in found]
    return found


def push(remote: str, sources: list[str], branch: str = BRANCH, message: str = "", log=print) -> list[Stored]:
    """Add the runs of ``sources`` to ``branch`` of ``remote`` (created if missing), retrying when another writer got there first."""
    remote = _where(remote)
    paths = runs_to_store(sources)
    runs = []
    for path in paths:
        try:
            runs.append((path, as_run(load_run(path), path)))
        except BadRun as exc:
            raise StoreError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="devicebench-store-") as scratch:
        repo = Path(scratch)
        _git(repo, "init", "-q", "--bare")
        _git(repo, "remote", "add", "store", remote)
        for attempt in range(1, ATTEMPTS + 1):
            tip = _fetch(repo, branch)
            stored, commit = _commit(repo, tip, runs, message or f"devicebench store: {len(runs)} run(s)")
            if commit is None:
                return stored
            pushed = _git(repo, "push", "-q", "store", f"{commit}:refs/heads/{branch}", check=False)
            if pushed.returncode == 0:
                return stored
            if not _moved(repo, branch, tip):
                raise StoreError(f"git push to {remote}: {_said(pushed, 'refused')}")
            log(f"another job stored runs first (attempt {attempt} of {ATTEMPTS}): reading the branch again")
            time.sleep(random.uniform(0.1, 0.5) * attempt)
    raise StoreError(f"{remote}: the branch {branch} kept moving; {ATTEMPTS} attempts failed")


def _fetch(repo: Path, branch: str, files: bool = False) -> str | None:
    """The branch's tip fetched (its commit and trees, and its files' content only if ``files``,
    where the server allows it), or None if it does not exist yet."""
    listed = _git(repo, "ls-remote", "store", f"refs/heads/{branch}", check=False)
    if listed.returncode != 0:
        raise StoreError(f"cannot reach the store: {_said(listed, 'git ls-remote failed')}")
    if not listed.stdout.strip():
        return None
    partial = []
    if not files:
        _git(repo, "config", "remote.store.promisor", "true")
        _git(repo, "config", "extensions.partialClone", "store")
        partial = ["--filter=blob:none"]
    _git(repo, "fetch", "-q", "--depth", "1", *partial, "store", f"+refs/heads/{branch}:refs/remotes/store/{branch}")
    return _git(repo, "rev-parse", f"refs/remotes/store/{branch}").stdout.strip()


def _moved(repo: Path, branch: str, tip: str | None) -> bool:
    """Whether the branch is no longer at ``tip`` (another writer's push): then a refused push is tried again."""
    listed = _git(repo, "ls-remote", "store", f"refs/heads/{branch}", check=False)
    if listed.returncode != 0:
        return True
    now = listed.stdout.split()[0] if listed.stdout.strip() else None
    return now != tip


def _commit(repo: Path, tip: str | None, runs: list, message: str) -> tuple[list[Stored], str | None]:
    """A commit on ``tip`` adding the runs, numbered after those in their folders; None if every run is there already."""
    index = {"GIT_INDEX_FILE": str(repo / "devicebench-index")}
    Path(index["GIT_INDEX_FILE"]).unlink(missing_ok=True)
    if tip is not None:
        _git(repo, "read-tree", tip, env=index)
    listing = _git(repo, "ls-tree", "-r", tip).stdout.splitlines() if tip is not None else []
    blobs: dict[str, dict[str, str]] = {}  # folder -> {blob: path}
    numbers: dict[str, int] = {}
    for line in listing:
        meta, _, path = line.partition("\t")
        folder, _, name = path.rpartition("/")
        blobs.setdefault(folder, {})[meta.split()[2]] = path
        number = NUMBER.match(name)
        if number:
            numbers[folder] = max(numbers.get(folder, 0), int(number.group(1)))
    stored, added = [], []
    for path, run in runs:
        folder, rest = destination(path, run)
        blob = _git(repo, "hash-object", "-w", str(path.resolve())).stdout.strip()
        if blob in blobs.get(folder, {}):
            stored.append(Stored(path, "", blobs[folder][blob]))
            continue
        numbers[folder] = numbers.get(folder, 0) + 1
        target = f"{folder}/{numbers[folder]:04d}_{rest}"
        blobs.setdefault(folder, {})[blob] = target
        added.append(f"100644,{blob},{target}")
        stored.append(Stored(path, target))
    if not added:
        return stored, None
    for entry in added:
        _git(repo, "update-index", "--add", "--cacheinfo", entry, env=index)
    tree = _git(repo, "write-tree", "--missing-ok", env=index).stdout.strip()
    parents = ["-p", tip] if tip is not None else []
    commit = _git(repo, "commit-tree", tree, *parents, "-m", message).stdout.strip()
    return stored, commit


def _where(remote: str) -> str:
    """``remote`` as git will read it from another folder: a local path made absolute."""
    try:
        return str(Path(remote).resolve()) if "://" not in remote and Path(remote).exists() else remote
    except OSError:
        return remote


def _reachable(remote: str, branch: str) -> None:
    """Raise a one-line StoreError unless ``remote`` answers and has ``branch``."""
    listed = _git(None, "ls-remote", remote, f"refs/heads/{branch}", check=False)
    if listed.returncode != 0:
        raise StoreError(f"cannot reach the store: {_said(listed, 'git ls-remote failed')}")
    if not listed.stdout.strip():
        raise StoreError(f"{remote}: no branch {branch} (nothing stored yet)")


def _plain(url: str) -> str:
    """A store's URL without the credentials in it (a CI job's token changes every run)."""
    return re.sub(r"^([a-z+]+://)[^/@]*@", r"\1", url)


def pull(remote: str, folder: str | Path, branch: str = BRANCH) -> int:
    """``branch`` of ``remote`` in ``folder`` (cloned the first time, brought up to date after); the number of run files there."""
    folder, remote = Path(folder), _where(remote)
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"{folder}: not a folder")
    if not (folder / ".git").exists():
        if folder.exists() and any(folder.iterdir()):
            raise StoreError(f"{folder}: exists and is not a copy of the store; give an empty or new folder")
        _reachable(remote, branch)  # before anything is made here
        folder.mkdir(parents=True, exist_ok=True)
        _git(folder, "init", "-q")
        _git(folder, "remote", "add", "store", remote)
    else:
        known = _git(folder, "remote", "get-url", "store", check=False).stdout.strip()
        if _plain(known) != _plain(remote):
            raise StoreError(f"{folder}: a copy of another store ({_plain(known) or 'none'})")
        _git(folder, "remote", "set-url", "store", remote)  # the same store with this job's credentials
    if _fetch(folder, branch, files=True) is None:
        raise StoreError(f"{remote}: no branch {branch} (nothing stored yet)")
    _git(folder, "reset", "-q", "--hard", f"refs/remotes/store/{branch}")
    return len(stored_runs(folder))
