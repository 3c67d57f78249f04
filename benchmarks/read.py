"""The read pass: one epoch of float32 batches against the chapter's per-sample PIL pipeline."""

from __future__ import annotations

from .harness import Report, measure


def bench_read(rep: Report, quick: bool) -> None:
    from linearnet.data import fashion_mnist as fm
    from linearnet.data.speed import chapter_loader

    ds = fm.load_fashion_mnist(progress=False)
    ours = fm.batches(ds, "train", 256)
    cases = {"chapter per-sample PIL pipeline, 0 workers": lambda: [None for _ in chapter_loader(ds, "train", 256)]}
    if not quick:
        loader4 = chapter_loader(ds, "train", 256, workers=4)
        cases["chapter per-sample PIL pipeline, 4 workers"] = lambda: [None for _ in loader4]
    cases["linearnet Batches"] = lambda: [None for _ in ours]
    rep.table("read", "Read pass over the 60,000 training images, batch 256, float32 batches",
              measure(cases, 1 if quick else 3), "chapter per-sample PIL pipeline, 0 workers", target=">= 20x")
