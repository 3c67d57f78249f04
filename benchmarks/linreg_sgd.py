"""One SGD epoch of linear regression on a tall table: the analytic gradients beside scratch and concise."""

from __future__ import annotations

import torch

from .harness import Report, measure

BATCH, LR = 256, 0.01


def bench_linreg_sgd(rep: Report, quick: bool) -> None:
    from linearnet.data import Batches
    from linearnet.models import build_learner, build_net
    from linearnet.training import fit

    n, d = (20_000, 100) if quick else (1_000_000, 100)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g)
    y = X @ torch.randn(d, 1, generator=g) + 1.0 + 0.1 * torch.randn(n, 1, generator=g)
    ends: dict[str, torch.Tensor] = {}

    def epoch(impl: str):
        # nn.MSELoss is twice the chapter's squared loss: concise at lr / 2 takes the same steps
        lr = LR / 2 if impl == "concise" else LR

        def run():
            net = build_net("linreg", impl, d, seed=0)
            fit(build_learner(net, "linreg", impl, lr), Batches(X, y, BATCH, shuffle=True, seed=1), 1)
            ends[impl] = torch.cat([t.reshape(-1) for t in net.export()])
        return run

    cases = {f"linearnet {impl}": epoch(impl) for impl in ("scratch", "concise", "analytic")}
    times = measure(cases, 1 if quick else 3)  # warm up even when quick: torch.optim's first step costs seconds
    gaps = {impl: float((ends[impl] - ends["scratch"]).abs().max()) for impl in ends}
    rows = rep.table("linreg_sgd", f"Linear regression, one SGD epoch on a {n:,} x {d} float32 table, batch {BATCH}, "
                     f"lr {LR}", times, "linearnet scratch",
                     {f"linearnet {k}": f"max parameter gap to scratch {v:.1e}" for k, v in gaps.items()},
                     target="analytic >= 2x faster than scratch")
    rep.data["linreg_sgd"]["parameter_gap"] = gaps
    line = (f"analytic vs scratch: {rows['linearnet analytic']['speedup']:.2f}x faster per epoch "
            f"(concise {rows['linearnet concise']['speedup']:.2f}x)")
    print(line)
    rep.markdown[-1] += f"\n{line}\n"
