"""Every stored run keeps its answers: what `show`, `speedup` and `compare` said of the runs in
results/ and of the golden runs when they were recorded (tests/data/make-expected: the code of
6fb65b6, before the reading side was rebuilt, in answers.json; runs stored later, by the code
that stored them, in answers-COMMIT.json) is what they say now, exit status included.

JSON answers may gain keys; every recorded key keeps its value, except for the two changes
made on purpose since (issue 20): an efficiency above 100% of its ceiling is withheld (the
row names the device whose ceiling was not reached), and a comparison with nothing tested
says only that."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from devicebench import cli

from .conftest import ROOT

ANSWERS = [answer for path in sorted((ROOT / "tests" / "data" / "expected").glob("answers*.json")) for answer in json.loads(path.read_text())]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The runs the answers name, copied as they were, so that runs stored later lend no history."""
    root = tmp_path_factory.mktemp("stored")
    for answer in ANSWERS:
        for arg in answer["argv"]:
            if arg.endswith(".json"):
                (root / arg).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / arg, root / arg)
    return root


@pytest.mark.parametrize("answer", ANSWERS, ids=[" ".join(a["argv"][:2]).replace("/", "|") for a in ANSWERS])
def test_a_stored_run_gets_the_answer_it_got(answer, stored, monkeypatch, capsys):
    monkeypatch.chdir(stored)
    code = cli.main(answer["argv"])
    out = capsys.readouterr().out
    assert code == answer["exit"]
    if "json" not in answer["argv"]:
        assert out == answer["stdout"]
        return
    kept(json.loads(answer["stdout"]), json.loads(out), "")


NOTHING_TESTED = "no benchmark had the runs for a test"


def kept(old, new, where: str, row: dict | None = None) -> None:
    """Every value of ``old`` is in ``new``, where it was (``new`` may hold more), but for the changes made on purpose."""
    if isinstance(old, dict):
        assert isinstance(new, dict), where
        row = new if "ceiling_not_reached" in new else row  # a speed-up row: its devices whose ceiling was not reached
        for key, value in old.items():
            assert key in new, f"{where}.{key} is gone"
            path = f"{where}.{key}"
            if key == "procedure" and isinstance(value, str) and "Holm-adjusted over 0 benchmark(s)" in value:
                assert new[key] == NOTHING_TESTED, path
            elif _ceiling_efficiency(path) and isinstance(value, float) and value > 1:
                assert new[key] is None and row is not None and row["ceiling_not_reached"], f"{path}: {value:.0%} of a ceiling is withheld, and said"
            else:
                kept(value, new[key], path, row)
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), where
        for i, (a, b) in enumerate(zip(old, new)):
            kept(a, b, f"{where}[{i}]", row)
    else:
        assert old == new, f"{where}: {old!r} -> {new!r}"


def _ceiling_efficiency(path: str) -> bool:
    """A share of a ceiling (a row's cpu_efficiency, an accelerator's efficiency), not a scaling efficiency."""
    return path.endswith(".cpu_efficiency") or bool(re.search(r"\.accelerators\.[^.]+\.efficiency$", path))
