"""Benchmarks: ``python -m benchmarks [NAME ...] [--quick] [--json OUT] [--update-readme]``.

Every benchmark runs its cases interleaved (A B A B ...) after a warm-up, prints min/median/max
seconds and the median ratio to its baseline measured in the same run, and records the machine.
``--update-readme`` writes the tables between the benchmark markers of README.md. One module per
benchmark; :mod:`benchmarks.harness` holds what they share.
"""

from __future__ import annotations

from . import harness
from .accuracy import bench_accuracy
from .cli_end_to_end import bench_cli_end_to_end
from .closed_form import bench_closed_form
from .d2l_book import bench_d2l_book
from .linreg_sgd import bench_linreg_sgd
from .read import bench_read
from .scaling import bench_scaling
from .sklearn_fit import bench_sklearn
from .softmax import bench_softmax
from .stream_sgd import bench_stream_sgd
from .streaming import bench_streaming

# The order here is the order of the README's tables.
BENCHMARKS = {"read": bench_read, "softmax": bench_softmax, "accuracy": bench_accuracy, "sklearn": bench_sklearn,
              "linreg_sgd": bench_linreg_sgd, "closed_form": bench_closed_form, "streaming": bench_streaming,
              "stream_sgd": bench_stream_sgd, "scaling": bench_scaling,
              "cli_end_to_end": bench_cli_end_to_end,
              "d2l_book": bench_d2l_book}


def main(argv=None) -> int:
    return harness.main(argv, BENCHMARKS)


if __name__ == "__main__":
    raise SystemExit(main())
