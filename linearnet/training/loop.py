"""The one training loop: a single epoch routine serves training and evaluation.

The loop knows neither implementation: it talks to a *learner* (``net``, ``train_step`` and
``eval_step``, each returning the batch's summed loss and the outputs; see
:mod:`linearnet.models.scratch` and :mod:`linearnet.models.concise`) and returns a plain history,
one dict per epoch, that reports and plots read afterwards.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import DivergenceError
from ..progress import tqdm

Record = dict[str, Any]


def scheduled_lr(base_lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """Learning rate for 0-based ``epoch``: constant, cosine decay, or x0.1 after two thirds."""
    if schedule == "cosine" and epochs > 1:
        return base_lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    if schedule == "step" and epoch >= (2 * epochs) // 3 and epochs > 1:
        return base_lr * 0.1
    return base_lr


def run_epoch(learner, batches: Iterable, train: bool, classify: bool = False,
              progress: bool = False, desc: str = "", epoch: int = 0, tally: dict | None = None,
              watch: LossWatch | None = None) -> dict[str, float]:
    """One pass over ``batches``: train (a step per batch) or evaluate (no grad, eval mode).

    ``tally``, when given, holds the running sums (``loss``, ``correct``, ``n``): the pass continues
    from them (an epoch resumed mid-way) and keeps them current after every step (for a checkpoint).

    ``watch`` (training): when its ``probe`` is set, the first :data:`PROBE_ROWS` rows are also
    evaluated by a copy of the model held at the starting parameters, and ``watch.start`` becomes
    their mean loss (the starting parameters' loss, over every rank).

    Returns ``{"loss": mean per-example loss, "acc": accuracy or None, "n": examples}``, summed over
    every rank when running distributed. A non-finite loss raises :class:`DivergenceError` naming
    the epoch and step.
    """
    net = learner.net
    net.train(train)
    distributed = dist.is_available() and dist.is_initialized()
    device = next(learner.module.parameters()).device
    on_cpu = device.type == "cpu"
    # On the CPU, Python floats are the cheapest accumulators and let every step be checked for
    # divergence; on an accelerator, tensors avoid a device sync per step (checked per epoch).
    loss_sum = 0.0 if on_cpu else torch.zeros((), dtype=torch.float64, device=device)
    correct = 0 if on_cpu else torch.zeros((), dtype=torch.int64, device=device)
    n = 0
    # DDP's forward may join collectives (inside Join), so an extra forward is not made through it
    probe = (train and watch is not None and watch.probe
             and not isinstance(net, torch.nn.parallel.DistributedDataParallel))
    probe_sum, probe_n = 0.0, 0
    at_start = _held_at_start(learner) if probe else None
    # Accuracy is counted a few dozen batches at a time: one argmax over many rows costs about what
    # one over a single batch does (~12 us of a ~250 us step), and the outputs held are small.
    outs: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    if tally is not None and "loss" in tally:  # an epoch resumed mid-way
        loss_sum, correct, n = tally["loss"], tally["correct"], tally["n"]
    if tally is not None:
        tally["held"] = (outs, labels)  # outputs not counted yet: a checkpoint counts them too
    bar = tqdm(batches, desc=desc, leave=False, disable=None if progress else True, unit="batch")
    with torch.set_grad_enabled(train):
        for step, (X, y) in enumerate(bar, start=1):
            if probe and probe_n < PROBE_ROWS:  # the starting parameters' loss on the first rows
                with torch.no_grad():
                    probe_sum += float(at_start.eval_step(X, y)[0])
                probe_n += len(y)
                if probe_n >= PROBE_ROWS and not distributed:  # known now, for a checkpoint inside this epoch
                    watch.start = probe_sum / probe_n
            l, out = learner.train_step(X, y) if train else learner.eval_step(X, y)
            if on_cpu:
                s = l.item()
                if not math.isfinite(s):
                    _diverged(epoch, step, s)
                loss_sum += s
            else:
                loss_sum += l
            if classify:
                outs.append(out)
                labels.append(y)
                if len(outs) == ACCURACY_BATCHES:
                    correct += _count_correct(outs, labels, on_cpu)
            n += len(y)
            if tally is not None:
                tally["loss"], tally["correct"], tally["n"] = loss_sum, correct, n
    if outs:
        correct += _count_correct(outs, labels, on_cpu)
    totals = torch.stack([torch.as_tensor(float(v) if on_cpu else v, dtype=torch.float64, device=device)
                          for v in (loss_sum, correct, n, probe_sum, probe_n)])
    if distributed:
        dist.all_reduce(totals)  # every rank then takes the same divergence decision
    loss_total, correct_total, count, probe_total, probe_count = (float(v) for v in totals.cpu())
    if watch is not None and watch.probe and train:
        watch.start, watch.probe = (probe_total / probe_count if probe_count else None), False
    if not math.isfinite(loss_total):
        _diverged(epoch, None, loss_total)
    count = max(count, 1.0)
    return {"loss": loss_total / count, "acc": correct_total / count if classify else None, "n": int(count)}


ACCURACY_BATCHES = 64  # batches whose predictions are counted together


def held_hits(outs: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
    """How many rows of the held batches' outputs predict their label (a 0-dim tensor; the lists stay)."""
    return (torch.cat(outs).argmax(dim=1) == torch.cat(labels)).sum()


def _count_correct(outs: list[torch.Tensor], labels: list[torch.Tensor], on_cpu: bool):
    """:func:`held_hits` (an int on the CPU), then empties the lists."""
    hits = held_hits(outs, labels)
    outs.clear()
    labels.clear()
    return int(hits) if on_cpu else hits


def _diverged(epoch: int, step: int | None, value: float, start: float | None = None) -> None:
    where = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
    what = (f"loss became {value}" if start is None else
            f"mean loss {value:.4g}, over {BLOWUP:g} times the starting loss {start:.4g}")
    raise DivergenceError(f"training diverged at {where} ({what}); try a smaller learning "
                          "rate (for example a tenth of --lr).")


# A finite loss has blown up when an epoch's mean training loss exceeds BLOWUP times the loss of the
# run's starting parameters, measured on its first PROBE_ROWS rows by a copy of the model held at
# those parameters (a single small batch can sit near zero by chance, and the steps on the first
# batches may already have blown up). SGD that is working lowers the loss from where it
# started; a factor of 1000 is far outside the wobble of a working run yet catches a cross-entropy
# that grows with the weights but never reaches inf (softmax at --lr 1e9 ends its first epoch near
# 3e9, from 2.3).
BLOWUP = 1000.0
PROBE_ROWS = 64


def _held_at_start(learner):
    """A copy of ``learner`` whose model keeps the current parameters while the original trains on."""
    import copy

    held = copy.copy(learner)
    held.net = held.module = copy.deepcopy(learner.module)
    return held


@dataclass
class LossWatch:
    """The loss of a run's starting parameters, the scale against which a finite blow-up is judged.

    Measured once, in the first epoch of a fresh run (``probe``), and saved with checkpoints so that
    a resumed run judges by the same scale. ``start`` None (a run resumed from a checkpoint written
    before it was kept, or DDP ranks, whose forward may join collectives) leaves only NaN and
    infinite losses to count as divergence.
    """

    start: float | None = None
    probe: bool = False  # measure ``start`` in the next training epoch

    def check(self, epoch: int, loss: float) -> None:
        """Raise :class:`DivergenceError` when ``loss`` exceeds BLOWUP times the starting loss."""
        if self.start is not None and self.start > 0 and loss > BLOWUP * self.start:
            _diverged(epoch, None, loss, self.start)


def fit(learner, train_batches: Iterable, epochs: int, *, eval_sets: dict[str, Iterable] | None = None,
        classify: bool = False, base_lr: float | None = None, lr_schedule: str = "constant",
        history: list[Record] | None = None, progress: bool = False,
        on_epoch: Callable[[Record, list[Record]], None] | None = None,
        watch: LossWatch | None = None) -> list[Record]:
    """Train for ``epochs`` epochs (continuing after ``history`` when resuming) and return the history.

    Each record holds ``epoch``, ``lr``, ``train_loss`` (mean over the epoch's steps), ``train_acc``
    (classification), ``<name>_loss`` / ``<name>_acc`` for each evaluation set, and ``seconds``
    (training plus evaluation of that epoch). ``on_epoch(record, history)`` runs after each epoch:
    the caller's place to report, plot and checkpoint. ``watch`` holds the starting loss that a
    blow-up is judged against (see :class:`LossWatch`; a fresh run measures it; keep it with checkpoints).
    """
    history = list(history or [])
    base_lr = learner.lr if base_lr is None else base_lr
    tally = getattr(train_batches, "tally", None)
    watch = watch if watch is not None else LossWatch()
    if watch.start is None and not history and not (tally and "loss" in tally):  # a fresh run
        watch.probe = True
    for epoch in range(len(history), epochs):
        lr = scheduled_lr(base_lr, lr_schedule, epoch, epochs)
        learner.set_lr(lr)
        start = time.perf_counter()
        stats = run_epoch(learner, train_batches, train=True, classify=classify, progress=progress,
                          desc=f"epoch {epoch + 1}/{epochs}", epoch=epoch + 1, tally=tally, watch=watch)
        watch.check(epoch + 1, stats["loss"])
        record: Record = {"epoch": epoch + 1, "lr": lr, "train_loss": stats["loss"]}
        if classify:
            record["train_acc"] = stats["acc"]
        for name, batches in (eval_sets or {}).items():
            ev = run_epoch(learner, batches, train=False, classify=classify, epoch=epoch + 1)
            record[f"{name}_loss"] = ev["loss"]
            if classify:
                record[f"{name}_acc"] = ev["acc"]
        record["seconds"] = time.perf_counter() - start
        history.append(record)
        if on_epoch is not None:
            on_epoch(record, history)
    return history
