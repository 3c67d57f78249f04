"""Out-of-core closed form: peak memory independent of the file size."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .harness import Report


def _write_csv(path: Path, rows: int, d: int = 100) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    w = rng.normal(size=d)
    names = [f"x{i}" for i in range(d)] + ["y"]
    with pacsv.CSVWriter(str(path), pa.schema([(n, pa.float64()) for n in names])) as writer:
        for i in range(0, rows, 100_000):
            m = min(100_000, rows - i)
            X = rng.normal(size=(m, d)).round(6)
            y = X @ w + 3 + rng.normal(0, 0.1, m)
            writer.write_table(pa.table(dict(zip(names, [*X.T, y]))))


_HWM_WRAPPER = r"""
import atexit, runpy, sys
out = sys.argv[1]
def report():
    with open("/proc/self/status") as fh:
        hwm = next(line.split()[1] for line in fh if line.startswith("VmHWM"))
    with open(out, "w") as fh:
        fh.write(hwm)
atexit.register(report)
sys.argv = ["linearnet", *sys.argv[2:]]
runpy.run_module("linearnet", run_name="__main__")
"""


def _peak_rss_run(args: list[str], tmp: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``linearnet ARGS`` in a fresh process.

    The peak is the child's own VmHWM read at exit (getrusage of a forked child would count the
    parent's pages too).
    """
    hwm = os.path.join(tmp, "hwm.txt")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _HWM_WRAPPER, hwm, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    with open(hwm) as fh:
        return seconds, int(fh.read()) / 1024


def bench_streaming(rep: Report, quick: bool) -> None:
    sizes = [40_000, 200_000] if quick else [250_000, 2_500_000]
    lines = ["**Out-of-core closed form on generated CSV files** (d = 100 float64 features, `--chunk-rows 20000`;"
             " target: peak RSS < 500 MB and within 10% between the two sizes)", "",
             "| rows | file MB | wall s (incl. start-up) | MB/s | peak RSS MB |", "|---|---|---|---|---|"]
    out = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("LINEARNET_BENCH_TMP")) as tmp:
        for rows in sizes:
            path = Path(tmp) / f"{rows}.csv"
            _write_csv(path, rows)
            mb = path.stat().st_size / 2**20
            args = ["train", "linreg", "--impl", "closed-form", "--data", str(path), "--target", "y",
                    "--chunk-rows", "20000", "--no-progress", "--out", str(Path(tmp) / "run"), "--overwrite"]
            seconds, peak = _peak_rss_run(args, tmp)
            path.unlink()
            out.append({"rows": rows, "file_mb": mb, "seconds": seconds, "peak_rss_mb": peak})
            lines.append(f"| {rows:,} | {mb:.0f} | {seconds:.1f} | {mb / seconds:.0f} | {peak:.0f} |")
    ratio = out[1]["peak_rss_mb"] / out[0]["peak_rss_mb"]
    lines.append(f"\npeak RSS ratio, larger / smaller file: {ratio:.3f}")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    rep.markdown.append(text)
    rep.data["streaming"] = {"runs": out, "peak_ratio": ratio}
