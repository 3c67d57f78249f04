"""Coverage-guided fuzzing (atheris) of the three parsers that read untrusted bytes.

    python fuzz/run.py idx|csv|model [--seconds 60]      one target, bounded time
    python fuzz/run.py all [--seconds 60]                every target, one process each

Any input must give a valid result or the package's own error (DataError / ModelFileError); any
other exception, a hang (> 5 s for one input) or memory beyond 2 GB is a crash that libFuzzer reports
with the input that caused it. The number of executions is printed at the end.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

TARGETS = ("idx", "csv", "model")


def _target(name: str):
    import atheris

    with atheris.instrument_imports(include=["linearnet"]):
        from linearnet.data.idx import parse_idx
        from linearnet.data.tabular import load_csv
        from linearnet.errors import DataError, ModelFileError
        from linearnet.persist import parse_model_bytes

    tmp = tempfile.NamedTemporaryFile(suffix=".csv", delete=False)
    tmp.close()
    atexit.register(os.unlink, tmp.name)

    def idx(data: bytes) -> None:
        try:
            arr = parse_idx(data)
        except DataError:
            return
        assert arr.nbytes <= len(data)

    def csv(data: bytes) -> None:
        with open(tmp.name, "wb") as fh:
            fh.write(data)
        try:
            table = load_csv(tmp.name, target="y")
        except DataError:
            return
        assert len(table.X) == len(table.y)

    def model(data: bytes) -> None:
        try:
            parse_model_bytes(data)
        except ModelFileError:
            return

    return {"idx": idx, "csv": csv, "model": model}[name]


CRASHES = Path(__file__).parent / "crashes"


def fuzz_one(name: str, seconds: int) -> None:
    import atheris

    CRASHES.mkdir(exist_ok=True)  # libFuzzer would otherwise drop crash-* files into the working directory
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-timeout=5", "-rss_limit_mb=2048",
                   f"-artifact_prefix={CRASHES}/"], _target(name))
    atheris.Fuzz()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("target", choices=[*TARGETS, "all"])
    p.add_argument("--seconds", type=int, default=60)
    args = p.parse_args()
    if args.target != "all":
        fuzz_one(args.target, args.seconds)
        return 0
    failed = []
    for name in TARGETS:  # libFuzzer ends its process, so each target gets its own
        proc = subprocess.run([sys.executable, __file__, name, "--seconds", str(args.seconds)],
                              capture_output=True, text=True)
        done = re.search(r"Done (\d+) runs", proc.stderr + proc.stdout)
        if proc.returncode != 0:
            failed.append(name)
            print(proc.stderr[-4000:], file=sys.stderr)
        runs = done.group(1) if done else "?"
        status = "0 unexpected exceptions" if proc.returncode == 0 else "CRASH (input and trace above)"
        print(f"fuzz {name}: {runs} executions in {args.seconds} s, {status}", flush=True)
    return int(bool(failed))


if __name__ == "__main__":
    raise SystemExit(main())
