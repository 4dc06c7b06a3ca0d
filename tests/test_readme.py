"""What README.md claims holds as users read it: its headline figures are the tool's own answer
for the run it names, and pass the project's own check against CUDA events."""

import re

from devicebench.reading import runs, speedup, targets
from devicebench.reading.units import format_seconds, ratio

from .conftest import ROOT


def _headline() -> tuple[str, list[list[str]]]:
    text = (ROOT / "README.md").read_text()
    folder = re.search(r"The answer, from the run stored in `(results/[^`]+)`", text).group(1)
    table = text[text.index("| workload | variant | cpu | cuda:0 |") :].split("\n\n", 1)[0].splitlines()[2:]
    return folder, [[cell.strip() for cell in line.strip("|").split("|")] for line in table]


def test_the_front_pages_figures_are_the_stored_runs_and_agree_with_their_cuda_events():
    folder, rows = _headline()
    [path] = sorted((ROOT / folder).glob("*/*.json"))
    run = runs.load(path)
    assert rows, "the front page shows no figures"
    matrix = {(r.workload, r.variant): r for r in speedup.matrix(run)}
    checks = {c.name: c for c in targets.check_against_events(run)}
    for workload, variant, cpu, gpu, over in rows:
        row = matrix[(workload, variant)]
        figure = row.accelerators["cuda:0"]
        assert [cpu, gpu, over] == [format_seconds(row.cpu_s), format_seconds(figure.median_s), f"{ratio(figure.over_cpu)} vs {row.cpu_reference}"]
        check = checks[f"test_{workload}[cuda:0-{variant}]"]
        assert check.agrees, f"{check.name}: {check.relative_diff:.1%} from its CUDA events"
