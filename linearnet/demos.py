"""The chapter's side topics as code: the vectorization speed-up."""

from __future__ import annotations

import time

import torch


def vectorization_demo(n: int = 10000, repeats: int = 5) -> dict[str, float]:
    """Time adding two ``n``-vectors with a Python loop and with one vectorized ``+``.

    Returns the best-of-``repeats`` seconds of each and their ratio, and checks both agree.
    """
    a, b = torch.ones(n), torch.ones(n)
    loop_best = vec_best = float("inf")
    for _ in range(repeats):
        c = torch.zeros(n)
        t = time.perf_counter()
        for i in range(n):
            c[i] = a[i] + b[i]
        loop_best = min(loop_best, time.perf_counter() - t)
        t = time.perf_counter()
        d = a + b
        vec_best = min(vec_best, time.perf_counter() - t)
    if not torch.equal(c, d):
        raise AssertionError("loop and vectorized sums disagree")
    return {"n": n, "loop_seconds": loop_best, "vectorized_seconds": vec_best,
            "speedup": loop_best / max(vec_best, 1e-9)}
