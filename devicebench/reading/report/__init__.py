"""The history report: the answer first, then every stored run, grouped by machine.

Writes ``index.html`` (one file that opens offline: charts embedded, no scripts, nothing
fetched) and ``summary.md`` (the same answer and tables, no images, for a CI job summary),
both from one document (:mod:`.page`).

The page opens on a summary, one row per machine: the GPU over its CPU, like for like (each
variant against the CPU doing the same work, as ``speedup`` sets them), the best efficiency
against the device's own ceilings, what changed since the previous run with its evidence,
and how well the latest run was measured (interrupted, failures, medians that disagree with CUDA events,
noisy or throttled results, a shared GPU). Machines that ran the same benchmarks sit side by
side. Each machine's section has its speed-up matrix, the regressions between its recent
consecutive runs, and its history: a chart per benchmark with two runs or more (throughput
where the benchmark records one, so that up is better, with the median's 95% interval),
a table row for the others.

In concerns: :mod:`.collect` (runs found, checked, cached, grouped; histories),
:mod:`.summary` (what is said of a machine), :mod:`.charts` (drawing, kept by content),
:mod:`.page` (the document and its two renderings), :mod:`.write` (building it).
"""

from .collect import Machine, Point, RunCache, Written, collect, history, run_files
from .summary import Summary, completeness_flags, summarize
from .write import write_report

__all__ = ["Machine", "Point", "RunCache", "Summary", "Written", "collect", "history", "completeness_flags", "run_files", "summarize", "write_report"]
