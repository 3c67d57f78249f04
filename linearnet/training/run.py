"""One training run, start to finish: data, model, loop, checkpoints, and the run folder.

The run folder holds ``config.json``, ``history.csv``, ``metrics.json``, ``model.safetensors``,
the figures, and ``checkpoint.safetensors`` for ``--resume``. Only rank 0 of a distributed job
writes it. Every input is checked before anything is written; a run is built in ``<out>.partial``
and renamed to ``<out>`` only once its model is written, so a failed command never leaves or
destroys anything that looks like a finished run, and an interrupted one keeps what ``--resume`` needs.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..config import TrainConfig
from ..errors import ConfigError, DataError, DivergenceError, OutputError
from ..evaluation import metrics as M
from ..evaluation import plots
from ..evaluation.live import LiveFigure
from ..io import _fsync_dir, write_csv, write_json
from ..models import build_learner, build_net
from ..models.closed_form import least_squares
from ..persist import ModelFile, save_model
from ..scale.distributed import rank_world as _rank_world
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, restore_rng_states, save_checkpoint
from .loop import LossWatch, fit
from .prepare import PreparedData, prepare

Log = Callable[[str], None]


@dataclass
class RunResult:
    """What a run produced: its folder (None on non-zero ranks), history, final metrics and model."""

    run_dir: Path | None
    history: list[dict]
    metrics: dict[str, Any]
    model: ModelFile
    net: torch.nn.Module | None = None
    data: PreparedData | None = None


def default_run_dir(config: TrainConfig, root: Path = Path("runs")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / f"{stamp}-{config.model}-{config.impl}"


PARTIAL_SUFFIX = ".partial"  # a run being built (or interrupted) lives beside its final place


def staging_dir(target: Path) -> Path:
    """Where the run for ``target`` is built: ``<target>.partial``, a sibling."""
    return target.with_name(target.name + PARTIAL_SUFFIX)


def target_dir(path: Path) -> Path:
    """The final place of a run named either way (``R`` or ``R.partial``)."""
    return path.with_name(path.name[:-len(PARTIAL_SUFFIX)]) if path.name.endswith(PARTIAL_SUFFIX) else path


def check_new_run_dir(target: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that cannot take a new run, before any work is done or anything written."""
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target} exists and is not a folder; choose another --out.")
    for folder in (target, staging_dir(target)):  # --overwrite replaces a run, never a folder of other files
        if folder.is_dir() and any(folder.iterdir()) and not (folder / "config.json").is_file():
            raise OutputError(f"{folder} holds files but no linearnet run (no config.json); choose another --out "
                              "(--overwrite replaces only a run).")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise OutputError(f"{target} already holds a run; pass --overwrite to replace it, --resume {target} to "
                          "continue it, or choose another --out.")
    staging = staging_dir(target)
    if staging.is_dir() and any(staging.iterdir()) and not overwrite:
        raise OutputError(f"{staging} holds an interrupted run; pass --resume {target} to continue it, "
                          "--overwrite to start again, or choose another --out.")
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create {target}: {parent} is not a writable folder; choose another --out.")


def find_resumable(path: Path) -> Path:
    """The folder a ``--resume`` continues: the interrupted ``R.partial`` if there is one, else ``R``."""
    target = target_dir(Path(path))
    for candidate in (staging_dir(target), target):
        if (candidate / "config.json").is_file():
            return candidate
    raise ConfigError(f"{path} is not a run folder (no config.json).")


class RunFolder:
    """The life of one run's folder: built in ``<target>.partial``, published to ``<target>``."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.staging = staging_dir(target)
        self.created = False  # whether this command made the staging folder (and so may remove it)
        self.new_parents: list[Path] = []  # folders above it that this command made, deepest first

    def open(self, config: TrainConfig, source: Path | None) -> Path:
        """Make the staging folder: new (``source`` None), a copy of a finished run, or the interrupted one."""
        if source == self.staging:
            for stale in self.staging.glob(".*.tmp"):  # temp files of a killed writer; the real files are intact
                stale.unlink(missing_ok=True)
            write_json(self.staging / "config.json", config.to_dict())  # --epochs may have changed
            return self.staging
        building = self.staging.with_name(self.staging.name + ".copy")
        self.new_parents = [p for p in building.parents if not p.exists()]
        try:
            for old in (self.staging, building):  # an interrupted run the user chose to --overwrite
                if old.exists():
                    shutil.rmtree(old)
            building.mkdir(parents=True)
            self.created = True
            write_json(building / "config.json", config.to_dict())
            if source is not None:  # continuing a finished run: on a copy, so a failure leaves it intact
                for name in (CHECKPOINT_NAME, "history.csv"):
                    if (source / name).is_file():
                        shutil.copy2(source / name, building / name)
            os.replace(building, self.staging)  # whole: another rank may be looking for it
        except OSError as exc:
            shutil.rmtree(building, ignore_errors=True)
            raise OutputError(f"cannot create {self.staging}: {exc.strerror or exc}; choose another --out.") from None
        return self.staging

    def publish(self) -> Path:
        """Put the built run in place, replacing a previous one only now (aside, in, then delete)."""
        aside = self.target.with_name(self.target.name + ".replaced")
        try:
            if aside.exists():
                shutil.rmtree(aside)
            if self.target.exists():
                os.replace(self.target, aside)
            try:
                os.replace(self.staging, self.target)
            except OSError:
                if aside.exists():  # put the previous run back
                    os.replace(aside, self.target)
                raise
        except OSError as exc:
            raise OutputError(f"could not move {self.staging} to {self.target}: {exc.strerror or exc}.") from None
        _fsync_dir(self.target.parent)
        shutil.rmtree(aside, ignore_errors=True)
        return self.target

    def discard(self) -> None:
        """After a failure: remove the staging folder if this command made it (an interrupted one stays)."""
        if self.created:
            shutil.rmtree(self.staging, ignore_errors=True)
            for parent in self.new_parents:  # e.g. runs/ made for this run alone
                try:
                    parent.rmdir()
                except OSError:
                    break


def train_run(config: TrainConfig, run_dir: str | Path | None = None, *, resume: bool = False,
              overwrite: bool = False, log: Log = print, data_env: str | None = None,
              write_figures: bool = True, live: bool = True) -> RunResult:
    """Run ``config`` into ``run_dir`` (a new run, or continued when ``resume``) and return the result.

    ``run_dir`` may name the run or its ``.partial`` staging folder; the result names the final folder.
    torch runs on ``config.resolved_threads`` threads meanwhile (set back afterwards).
    """
    previous = torch.get_num_threads()
    threads = config.resolved_threads
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train_run(config, run_dir, resume=resume, overwrite=overwrite, log=log, data_env=data_env,
                          write_figures=write_figures, live=live)
    finally:
        if threads is not None:
            torch.set_num_threads(previous)


def _train_run(config: TrainConfig, run_dir: str | Path | None, *, resume: bool, overwrite: bool, log: Log,
               data_env: str | None, write_figures: bool, live: bool) -> RunResult:
    rank, world = _rank_world()
    writer = rank == 0
    say = log if writer else (lambda _msg: None)
    target = default_run_dir(config) if run_dir is None else target_dir(Path(run_dir))
    source = find_resumable(target) if resume else None
    if writer and not resume:
        check_new_run_dir(target, overwrite)
    data = prepare(config, rank=rank, world_size=world, data_env=data_env, log=say)
    if config.data == "fashion-mnist":
        say(f"Fashion-MNIST from {data.source}, loaded in {data.load_seconds:.2f} s")
    folder = RunFolder(target) if writer else None
    try:
        if config.impl == "closed-form":
            return _closed_form(config, data, folder, say, write_figures)
        return _sgd(config, data, folder, source, say, write_figures, live)
    except DataError as exc:  # bad input met mid-run (a streamed file): keep a checkpoint to resume from
        if folder is not None and (folder.staging / CHECKPOINT_NAME).exists():
            raise DataError(f"{str(exc).rstrip('.')}; the last checkpoint is kept in {folder.staging}: fix the "
                            f"data, then continue with --resume {target}.") from None
        if folder is not None:
            folder.discard()
        raise
    except Exception as exc:
        # A failure leaves nothing that looks like a run. But a crash after a checkpoint (a torchrun
        # peer that died mid-collective, a full disk) keeps the staging folder: it is what --resume and
        # an elastic restart continue from. A diverged run is removed: resuming it would diverge again.
        keep = (folder is not None and (folder.staging / CHECKPOINT_NAME).exists()
                and not isinstance(exc, DivergenceError))
        if folder is not None and not keep:
            folder.discard()
        raise


# ----- SGD ------------------------------------------------------------------------------------------
def _sgd(config: TrainConfig, data: PreparedData, folder: RunFolder | None, source: Path | None, say: Log,
         write_figures: bool, live: bool) -> RunResult:
    writer = folder is not None
    device = data.train.device
    net = build_net(config.model, config.impl, data.num_inputs, data.num_outputs, seed=config.seed).to(device)
    history: list[dict] = []
    ckpt = load_checkpoint(source) if source is not None and (source / CHECKPOINT_NAME).exists() else None
    if source is not None and ckpt is None:
        say(f"{source} has no checkpoint yet; starting it from the beginning")
    if ckpt is not None:
        net.load_state_dict({k: v.to(device) for k, v in ckpt["params"].items()})
        restore_rng_states(ckpt["rng_tensors"], ckpt["rng_meta"], data.batch_generators)
        history = ckpt["history"]
        if ckpt.get("stream") is not None and hasattr(data.train, "restore"):
            data.train.restore(ckpt["stream"], ckpt["stream_tensors"])
        inside = (ckpt.get("stream") or {}).get("inside")
        say(f"resuming {source} after epoch {ckpt['epoch']} of {config.epochs}"
            + (f", inside epoch {ckpt['epoch'] + 1} after {inside['tally'].get('n', 0)} rows" if inside else ""))
    module = net
    if dist.is_available() and dist.is_initialized() and config.impl == "analytic":
        from ..models.analytic import DistributedAnalytic  # no autograd: it all-reduces the gradients itself

        net = DistributedAnalytic(module)
    elif dist.is_available() and dist.is_initialized():
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    train_batches = data.train
    if isinstance(net, torch.nn.parallel.DistributedDataParallel) and data.info.get("streamed"):
        from ..scale.sgd_stream import JoinedBatches  # ranks with unequal shares: every row still counts

        train_batches = JoinedBatches(data.train, net)
    learner = build_learner(net, config.model, config.impl, config.lr, config.weight_decay, config.loss,
                            config.huber_delta)
    if ckpt is not None:
        learner.load_optimizer_state(ckpt["optimizer"])
    classify = data.task == "classification"
    every = _checkpoint_every(config, data)
    run_dir = folder.open(config, source) if writer else None  # inputs and model are ready: now write
    live_fig = LiveFigure(run_dir / "curves.png" if classify else run_dir / "loss.png", announce=say) \
        if (writer and live and write_figures) else None

    done = list(history)  # the epochs completed, for a checkpoint taken inside the next one
    watch = LossWatch(ckpt.get("start_loss") if ckpt is not None else None)  # the scale of a blow-up

    def on_epoch(record: dict, hist: list[dict]) -> None:
        done[:] = hist
        say(summary_line(record, data))
        if not writer:
            return
        write_csv(run_dir / "history.csv", hist)  # as epochs complete, so a run can be watched
        if every and (record["epoch"] % every == 0 or record["epoch"] == config.epochs):
            save_checkpoint(run_dir, module.state_dict(), learner.optimizer_state(), record["epoch"], hist,
                            data.batch_generators, getattr(data.train, "state", lambda: None)(),
                            start_loss=watch.start)
        last = record["epoch"] == config.epochs
        # redrawn at most once a second; the final curves are shown in a notebook at once, and drawn to
        # the file with the run's other figures (in parallel with them)
        if live_fig is not None and (live_fig.jupyter or not last):
            live_fig.show(lambda: _history_figure(hist, data), final=last)

    if writer and config.checkpoint_rows and hasattr(data.train, "on_boundary"):
        def inside_epoch(stream: dict, tensors: dict) -> None:  # at a chunk end, every batch so far trained on
            save_checkpoint(run_dir, module.state_dict(), learner.optimizer_state(), len(done), done,
                            data.batch_generators, stream, tensors, start_loss=watch.start)

        data.train.on_boundary = inside_epoch
    history = fit(learner, train_batches, config.epochs, eval_sets=data.evals, classify=classify,
                  base_lr=config.lr, lr_schedule=config.lr_schedule, history=history,
                  progress=config.progress and writer, on_epoch=on_epoch, watch=watch)
    weight, bias = module.export()
    model = _model_file(config, data, weight, bias)
    metrics = _metrics(config, data, history, module, weight, bias)
    if writer:
        _write_outputs(run_dir, history, metrics, model, data, module, write_figures)
        run_dir = folder.publish()
        say(final_line(metrics, data))
    return RunResult(run_dir, history, metrics, model, module, data)


def _checkpoint_every(config: TrainConfig, data: PreparedData) -> int:
    if config.checkpoint_every is not None:
        return config.checkpoint_every
    rows = data.info["train_rows"] if "train_rows" in data.info else len(data.train.X)
    return 1 if rows * max(config.epochs, 1) >= 100_000 else 0


def summary_line(record: dict, data: PreparedData) -> str:
    """One line per epoch, in the chapter's form."""
    if data.task == "regression":
        main = record.get("train_eval_loss", record["train_loss"])
        line = f"epoch {record['epoch']}, loss {main:f}"
        if "val_loss" in record:
            line += f", val loss {record['val_loss']:f}"
        return line
    line = f"epoch {record['epoch']}, train loss {record['train_loss']:.4f}, train acc {record['train_acc']:.3f}"
    for name in ("val", "test"):
        if f"{name}_acc" in record:
            line += f", {name} acc {record[f'{name}_acc']:.3f}"
    return line + f", {record['seconds']:.2f} s"


def final_line(metrics: dict, data: PreparedData) -> str:
    if "w_error" in metrics:
        return (f"w error: {[round(v, 6) for v in metrics['w_error']]}, b error: {metrics['b_error']:.6f} "
                f"(train {metrics['train_seconds']:.3f} s)")
    if data.task == "regression":
        if "val_rmse" not in metrics:
            return f"no validation split (val_fraction 0) (train {metrics['train_seconds']:.3f} s)"
        rmse, r2 = metrics["val_rmse"], metrics["val_r2"]
        r2_text = f"R^2 {r2:.4f}" if r2 == r2 else "R^2 undefined (the validation targets do not vary)"
        return f"validation RMSE {rmse:.6g}, {r2_text} (train {metrics['train_seconds']:.3f} s)"
    parts = [f"{k} {metrics[k]:.4f}" for k in ("train_loss", "train_acc", "val_acc", "test_acc") if k in metrics]
    return ", ".join(parts) + f" (train {metrics['train_seconds']:.2f} s, load {metrics['load_seconds']:.2f} s)"


# ----- closed form ----------------------------------------------------------------------------------
def _closed_form(config: TrainConfig, data: PreparedData, folder: RunFolder | None, say: Log,
                 write_figures: bool) -> RunResult:
    if data.task != "regression":
        raise ConfigError("the closed-form solution is for linear regression only.")
    start = time.perf_counter()
    if _rank_world()[1] > 1:  # each rank reduces its share of rows; the statistics are all-gathered
        from ..models.closed_form import solve_moments
        from ..scale.distributed import sharded_moments

        sol = solve_moments(sharded_moments(data.X_train, data.y_train))
    else:
        sol = least_squares(data.X_train, data.y_train)
    seconds = time.perf_counter() - start
    weight, bias = sol.weight, sol.bias  # float64 end to end: stored and applied so
    from ..models.scratch import squared_loss

    module = build_net("linreg", "scratch", data.num_inputs, 1, seed=config.seed).to(data.X_train.dtype)
    module.load(weight, bias)
    with torch.no_grad():
        loss = float(squared_loss(module(data.X_train), data.y_train).mean())
    history = [{"epoch": 0, "lr": 0.0, "train_loss": loss, "seconds": seconds}]
    model = _model_file(config, data, weight, bias)
    metrics = _metrics(config, data, history, module, weight, bias)
    metrics.update({"method": sol.method, "condition_number": sol.condition})
    say(f"closed form ({sol.method}), loss {loss:f}")
    run_dir = None
    if folder is not None:
        _write_outputs(folder.open(config, None), history, metrics, model, data, module, write_figures)
        run_dir = folder.publish()
        say(final_line(metrics, data))
    return RunResult(run_dir, history, metrics, model, module, data)


# ----- outputs --------------------------------------------------------------------------------------
def _model_file(config: TrainConfig, data: PreparedData, weight: torch.Tensor, bias: torch.Tensor) -> ModelFile:
    meta = {"impl": config.impl, "num_inputs": data.num_inputs, "num_outputs": data.num_outputs,
            "feature_names": data.feature_names, "classes": data.classes, "image": data.image,
            "target": config.target, "loss": config.loss}
    extras = {}
    if data.x_scaler is not None:
        extras.update(x_mean=data.x_scaler.mean.double(), x_std=data.x_scaler.std.double())
    if data.y_scaler is not None:
        extras.update(y_mean=data.y_scaler.mean.double(), y_std=data.y_scaler.std.double())
    dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32  # closed form keeps float64
    return ModelFile(config.model, weight.cpu().to(dtype), bias.cpu().to(dtype), meta, extras)


def _metrics(config: TrainConfig, data: PreparedData, history: list[dict], module, weight, bias) -> dict:
    out: dict[str, Any] = {"epochs": len(history), "train_seconds": sum(r["seconds"] for r in history),
                           "load_seconds": data.load_seconds}
    if history:
        out.update({k: v for k, v in history[-1].items() if k not in ("epoch", "seconds", "lr")})
    if data.source == "synthetic":
        true_w = torch.tensor(config.true_w)
        out["w_error"] = (true_w - weight.cpu().reshape(-1)).tolist()
        out["b_error"] = float(config.true_b - bias.cpu().reshape(-1)[0])
    if data.task == "regression" and "val" in data.evals:
        out["val_rmse"], out["val_r2"] = _val_regression(module, _single(data.evals["val"]), data.y_scaler)
    if data.task == "classification":
        name = "test" if "test" in data.evals else ("val" if "val" in data.evals else None)
        if name is not None:
            preds, trues = M.predict_labels(module, _single(data.evals[name]))
            cm = M.confusion_matrix(preds, trues, data.num_outputs)
            out["confusion_split"] = name
            out["confusion_matrix"] = cm.tolist()
            out["per_class_accuracy"] = dict(zip(data.classes, M.per_class_accuracy(cm).tolist()))
    return out


def _val_regression(module, batches, y_scaler) -> tuple[float, float]:
    """RMSE and R^2 in the target's units, accumulated batch by batch (a streamed set is never held whole)."""
    from ..data.moments import ColumnMoments

    device = next(module.parameters()).device
    sse, ys = 0.0, ColumnMoments(1)
    with torch.no_grad():
        for X, y in batches:
            pred, y = module(X.to(device)).cpu(), y.cpu()
            if y_scaler is not None:
                pred, y = y_scaler.inverse(pred), y_scaler.inverse(y)
            sse += float(((pred.double() - y.double().reshape(pred.shape)) ** 2).sum())
            ys.add(y.double().reshape(-1, 1).numpy())
    sst = float(ys.m2[0])
    return (sse / max(ys.n, 1)) ** 0.5, (1 - sse / sst if sst > 0 else float("nan"))


def _single(batches):
    """The same batch source without distributed sharding (for rank-local full evaluations)."""
    from ..data import Batches

    if hasattr(batches, "single"):  # a streamed source
        return batches.single()
    return Batches(batches.X, batches.y, batches.batch_size, transform=batches.transform, device=batches.device)


def _history_figure(history: list[dict], data: PreparedData):
    if data.task == "classification":
        keys = ["train_loss", "train_acc", "val_acc", "test_acc"]
        return plots.history_figure(history, keys)
    keys = ["train_eval_loss" if "train_eval_loss" in history[0] else "train_loss", "val_loss"]
    ylabel = "loss (on the standardized target)" if data.y_scaler is not None else "loss"  # not the data's units
    return plots.history_figure(history, keys, ylabel=ylabel, yscale="log")


def _write_outputs(run_dir: Path, history: list[dict], metrics: dict, model: ModelFile, data: PreparedData,
                   module, write_figures: bool) -> None:
    """The run's files; the figures are drawn two at a time (:func:`~linearnet.evaluation.plots.save_figures`)."""
    write_csv(run_dir / "history.csv", history)
    write_json(run_dir / "metrics.json", metrics)
    save_model(run_dir / "model.safetensors", model)
    if not write_figures:
        return
    figures = {}
    curves = run_dir / ("loss.png" if data.task == "regression" else "curves.png")
    if data.task == "classification" or (history and history[0]["epoch"] > 0):
        figures[curves] = lambda: _history_figure(history, data)
    if data.task == "classification":
        names = data.classes
        if "confusion_matrix" in metrics:
            figures[run_dir / "confusion.png"] = lambda: plots.confusion_figure(
                torch.tensor(metrics["confusion_matrix"]), names)
        if data.image is not None:
            side = data.image["side"]
            test = data.evals.get("test")
            X, y = test.X[:9], test.y[:9]
            with torch.no_grad():
                pred = module(test.transform(X.to(test.device))).argmax(1).cpu()
            figures[run_dir / "weights.png"] = lambda: plots.weights_figure(model.weight, names, side)
            figures[run_dir / "predictions.png"] = lambda: plots.predictions_figure(
                X, [names[int(i)] for i in y], [names[int(i)] for i in pred])
    plots.save_figures(figures)


def read_run_config(run_dir: Path) -> TrainConfig:
    """The resolved configuration saved in a run folder."""
    path = Path(run_dir) / "config.json"
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"{run_dir} is not a run folder (no config.json).") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); the run folder is damaged.") from None
