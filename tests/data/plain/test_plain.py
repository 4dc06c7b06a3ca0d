"""A benchmark for plain pytest-benchmark (run with --noconftest): runs without the devicebench block."""


def test_sum(benchmark):
    benchmark(sum, range(10_000))
