"""Every stored run keeps its answers: what `show`, `speedup` and `compare` said of the runs in
results/ and of the golden runs when they were recorded (tests/data/make-expected: the code of
6fb65b6, before the reading side was rebuilt) is what they say now, exit status included."""

from __future__ import annotations

import json
import shutil

import pytest

from devicebench import cli

from .conftest import ROOT

ANSWERS = json.loads((ROOT / "tests" / "data" / "expected" / "answers.json").read_text())


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
    assert (code, capsys.readouterr().out) == (answer["exit"], answer["stdout"])
