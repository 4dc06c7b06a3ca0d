"""The pytest side: what the plugin (:mod:`devicebench.plugin`) loads once a session uses devicebench.

Options (:mod:`.options`), the run's session (:mod:`.session`), the ``bench`` fixture's object
(:mod:`.bench`), what a run records and where it is stored (:mod:`.recording`), progress lines
(:mod:`.progress`), failures and interruptions (:mod:`.faults`), and the one module that touches
pytest-benchmark's private internals (:mod:`.pytest_benchmark_internals`). It may import the
measuring side, the reading side and the workloads; nothing below it imports it.
"""
