"""Least squares: time, accuracy and peak memory against scikit-learn and numpy, fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from .harness import Report

_LSQ_CHILD = r"""
import json, sys, time, numpy as np, torch
name, n, cond, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
d = 100
if cond > 1:
    U, _ = np.linalg.qr(rng.normal(size=(n, d)))
    V, _ = np.linalg.qr(rng.normal(size=(d, d)))
    X = (U * np.logspace(0, -np.log10(cond), d)) @ V.T * np.sqrt(n)
else:
    X = rng.normal(size=(n, d))
w_true = rng.normal(size=d)
# ill-conditioned: noise-free targets, so the exact answer is w_true and each method's error is its own
y = X @ w_true + 3 + (rng.normal(0, 0.1, n) if cond <= 1 else 0)
np.save(out.replace(".npy", "-true.npy"), w_true)
from sklearn.linear_model import LinearRegression as SkLR  # imports happen before the clock starts
from linearnet.sklearn import LinearRegression as OurLR
def vmhwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
base = vmhwm()
t = time.perf_counter()
if name == "sklearn":
    coef = SkLR().fit(X, y).coef_
elif name == "lstsq":
    coef = np.linalg.lstsq(np.hstack([X, np.ones((n, 1))]), y, rcond=1e-15)[0][:-1]
elif name == "normal-equations":
    A = np.hstack([X, np.ones((n, 1))])
    coef = np.linalg.solve(A.T @ A, A.T @ y)[:-1]
else:
    coef = OurLR().fit(X, y).coef_
seconds = time.perf_counter() - t
np.save(out, coef)
print(json.dumps({"seconds": seconds, "peak_extra_mb": vmhwm() - base}))
"""


def _lsq_case(name: str, n: int, cond: float, tmp: str) -> dict:
    out = os.path.join(tmp, f"{name}-{cond}.npy")
    proc = subprocess.run([sys.executable, "-c", _LSQ_CHILD, name, str(n), str(cond), out], capture_output=True,
                          text=True, check=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["coef"] = np.load(out)
    return res


def bench_closed_form(rep: Report, quick: bool) -> None:
    n = 100_000 if quick else 1_000_000
    names = {"sklearn": "sklearn LinearRegression", "lstsq": "numpy lstsq (QR/SVD)",
             "linearnet": "linearnet closed form"}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cond in (1.0, 1e10):
            cases = dict(names)
            if cond > 1:
                cases["normal-equations"] = "plain normal equations (np.linalg.solve)"
            times: dict[str, list[float]] = {label: [] for label in cases.values()}
            notes = {}
            results = {}
            for _ in range(1 if quick or cond > 1 else 2):  # interleaved rounds, each case in a fresh process
                for key, label in cases.items():
                    r = _lsq_case(key, n, cond, tmp)
                    times[label].append(r["seconds"])
                    results[key] = r
            # well conditioned: compare with numpy's lstsq; ill-conditioned: with the exact (noise-free) answer
            ref = results["lstsq"]["coef"] if cond <= 1 else np.load(os.path.join(tmp, f"lstsq-{cond}-true.npy"))
            what = "lstsq" if cond <= 1 else "the exact w"
            errors = {}
            for key, label in cases.items():
                errors[key] = float(np.abs(results[key]["coef"] - ref).max() / np.abs(ref).max())
                peak = results[key]["peak_extra_mb"]
                notes[label] = f"max rel. coef error vs {what} {errors[key]:.1e}, extra peak RSS {peak:.0f} MB"
            title = (f"Least squares, n = {n:,}, d = 100, float64" +
                     (", condition number 1e10, noise-free targets" if cond > 1 else ""))
            rep.table(f"closed_form_cond{cond:g}", title, times, "sklearn LinearRegression", notes,
                      target=">= 2x faster than scikit-learn at equal accuracy" if cond == 1 else
                      "accurate where plain normal equations are not")
            out[f"cond{cond:g}"] = errors
    rep.data["closed_form_errors"] = out
