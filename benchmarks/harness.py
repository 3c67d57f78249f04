"""Benchmark harness: timing (interleaved, after a warm-up), markdown tables, the README update.

Every benchmark module exposes one ``bench_<name>(rep, quick)`` that measures its cases with
:func:`measure` and reports them through :class:`Report` against a baseline measured in the same run.
"""


import argparse
import os
import platform
import re
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent.parent / "README.md"


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cfg = torch.__config__.show()
    blas = "MKL" if "USE_MKL=ON" in cfg or "mkl" in cfg.lower() else "OpenBLAS/other"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "blas": blas, "torch threads": torch.get_num_threads()}


def measure(cases: dict, repeats: int, warmup: bool = True) -> dict[str, list[float]]:
    """Interleaved timings: one warm-up each, then ``repeats`` rounds of every case in turn."""
    if warmup:
        for fn in cases.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


class Report:
    """Collects markdown tables (printed as they come) and the raw numbers."""

    def __init__(self, figure_dir: Path | None = None) -> None:
        self.markdown: list[str] = []
        self.data: dict = {}
        self.figure_dir = figure_dir  # where plots go; None (no --update-readme) leaves the tree untouched

    def table(self, key: str, title: str, times: dict[str, list[float]], baseline: str,
              notes: dict[str, str] | None = None, target: str = "") -> dict:
        base = statistics.median(times[baseline])
        lines = [f"**{title}**" + (f" (target: {target})" if target else ""), "",
                 f"| case | min s | median s | max s | speed-up vs {baseline} | note |", "|---|---|---|---|---|---|"]
        rows = {}
        for name, ts in times.items():
            med = statistics.median(ts)
            rows[name] = {"min": min(ts), "median": med, "max": max(ts), "speedup": base / med}
            lines.append(f"| {name} | {min(ts):.4f} | {med:.4f} | {max(ts):.4f} | {base / med:.1f}x | "
                         f"{(notes or {}).get(name, '')} |")
        text = "\n".join(lines) + "\n"
        print("\n" + text, flush=True)
        self.markdown.append(text)
        self.data[key] = rows
        return rows


def quiet():
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)



def update_readme(facts: dict, names) -> None:
    """Rebuild README's benchmark block from the per-benchmark sections saved in benchmarks/results/."""
    start, end = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
    text = README.read_text()
    if start not in text or end not in text:
        raise SystemExit("README.md has no benchmark markers")
    sections = [(RESULTS / f"{name}.md").read_text() for name in names if (RESULTS / f"{name}.md").exists()]
    header = ("Machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()) + ". Each section names the command "
              "and date that produced it.\n\n")
    block = f"{start}\n{header}" + "\n".join(sections) + end
    README.write_text(re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _m: block, text, flags=re.S))


def main(argv, benchmarks: dict) -> int:
    """``python -m benchmarks [NAME ...] [--quick] [--json OUT] [--update-readme]`` over ``benchmarks``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="Run the benchmarks; print tables.")
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(benchmarks)}")
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat (under 2 minutes)")
    p.add_argument("--json", help="write all results here")
    p.add_argument("--update-readme", action="store_true", help="write the tables into README.md")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in benchmarks]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(benchmarks)}")
    facts = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    rep = Report(RESULTS if args.update_readme else None)
    RESULTS.mkdir(exist_ok=True)
    for name in args.names or list(benchmarks):
        first = len(rep.markdown)
        benchmarks[name](rep, args.quick)
        if args.update_readme:
            cmd = f"python -m benchmarks {name}" + (" --quick" if args.quick else "")
            (RESULTS / f"{name}.md").write_text(f"`{cmd}` ({time.strftime('%Y-%m-%d')}):\n\n"
                                                + "\n".join(rep.markdown[first:]))
    if args.json:
        from linearnet.io import write_json

        write_json(args.json, {"machine": facts, "quick": args.quick, **rep.data})
    if args.update_readme:
        update_readme(facts, benchmarks)
    return 0
