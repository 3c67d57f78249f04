"""`linearnet train softmax` timed end to end beside its parts (start-up, data load, training), same run.

The target (issue 14): the wall time of the whole command exceeds the sum of its parts by at most
0.5 s, i.e. figures, checkpoints and the run folder stay off the critical path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .harness import Report

# What a training run imports before it can start: the interpreter plus the package's heavy modules. The
# probe leaves with os._exit: the interpreter's teardown after a run belongs to the command's overhead.
STARTUP = [sys.executable, "-c", "import linearnet.cli.commands, linearnet.training.run, linearnet.evaluation.live; "
           "import os; os._exit(0)"]


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def bench_cli_end_to_end(rep: Report, quick: bool) -> None:
    epochs = 2 if quick else 10
    repeats = 1 if quick else 3
    times: dict[str, list[float]] = {"parts: start-up + data load + training": [],
                                     f"linearnet train softmax, {epochs} epochs, end to end": [],
                                     "start-up (interpreter + imports)": [], "data load": [], "training": []}
    with tempfile.TemporaryDirectory(prefix="linearnet-bench-") as tmp:
        run = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "linearnet", "train", "softmax", "--epochs", str(epochs), "--no-progress",
               "--out", str(run), "--overwrite"]
        _timed(STARTUP)  # warm-up: file caches, the verified-data stamp
        for _ in range(repeats):
            startup = _timed(STARTUP)
            whole = _timed(cmd)
            metrics = json.loads((run / "metrics.json").read_text())
            load, train = metrics["load_seconds"], metrics["train_seconds"]
            for name, value in zip(times, (startup + load + train, whole, startup, load, train)):
                times[name].append(value)
    rows = rep.table("cli_end_to_end", "`linearnet train softmax` end to end beside its parts (one process each)",
                     times, "parts: start-up + data load + training", target="end to end <= parts + 0.5 s")
    names = list(times)
    overhead = rows[names[1]]["median"] - rows[names[0]]["median"]
    print(f"overhead beyond start-up + load + training: {overhead:.2f} s (target <= 0.5 s)")
    rep.data["cli_end_to_end"] = {"rows": rows, "overhead_seconds": overhead, "epochs": epochs}
