"""One function per CLI command: turn parsed arguments into library calls and printed results."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ..config import TrainConfig
from ..data import fashion_mnist as fm
from ..errors import ConfigError
from ..io import write_csv
from .main import config_from_args


def maybe_init_distributed(env: dict[str, str]) -> bool:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1)."""
    if int(env.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() and env.get("LINEARNET_BACKEND") != "gloo" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(env.get("LOCAL_RANK", "0")))
    # After torchrun restarts the workers, the store still holds the dead group's addresses: a prefix
    # per restart keeps the new group from connecting to them.
    store, rank, world = next(dist.rendezvous("env://"))
    store = dist.PrefixStore(f"linearnet-restart-{env.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
    dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world)
    return True


def wait_for_all_ranks() -> None:
    import torch.distributed as dist

    dist.barrier()


def shutdown_distributed() -> None:
    """Free DDP wrappers (gc) and the process group while the interpreter is fully alive.

    Left to interpreter teardown, gloo's worker threads can abort the process ("terminate called
    without an active exception").
    """
    import gc

    import torch.distributed as dist

    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()


def cmd_train(args: argparse.Namespace, env: dict[str, str]) -> int:
    from ..training.run import default_run_dir, find_resumable, read_run_config, staging_dir, target_dir, train_run

    world = int(env.get("WORLD_SIZE", "1"))
    restarted = int(env.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    if restarted and args.out and (staging_dir(target_dir(Path(args.out))) / "config.json").exists():
        args.resume = args.out  # torchrun restarted the workers: continue the run being built
    if world > 1 and not (args.out or args.resume):
        raise ConfigError("under torchrun pass --out DIR, so that every rank names the same run folder.")
    if args.resume:
        run_dir = target_dir(Path(args.resume))  # R or R.partial: the interrupted R.partial is continued
        config = read_run_config(find_resumable(run_dir))
        if config.model != args.model:
            raise ConfigError(f"{run_dir} holds a {config.model} run, not {args.model}.")
        if not restarted:  # (torchrun's restart repeats the original command line: nothing to compare)
            _refuse_changed_settings(args, config, run_dir)
        if args.epochs is not None:
            config = config.replace(epochs=args.epochs)
    else:
        config = config_from_args(args)
        run_dir = Path(args.out) if args.out else default_run_dir(config)
    args._run_dir = run_dir
    streamed = config.is_csv and (config.stream or config.chunk_rows or Path(config.data).suffix != ".csv")
    if config.impl == "closed-form" and streamed:
        from ..scale.streaming import train_streaming

        train_streaming(config, run_dir, overwrite=args.overwrite)
        return 0
    result = train_run(config, run_dir, resume=bool(args.resume), overwrite=args.overwrite or restarted,
                       data_env=fm.env_data_dir(env))
    if result.run_dir is not None:
        print(f"run folder: {result.run_dir}")
    return 0


# Settings a resumed run keeps from its config.json (--epochs may change; device and progress may too).
RESUME_KEEPS = ("impl", "target", "lr", "batch_size", "loss", "huber_delta", "weight_decay", "lr_schedule",
                "val_fraction", "resize", "seed", "num_examples", "noise", "chunk_rows", "shuffle_buffer",
                "val_data", "checkpoint_rows")


def _refuse_changed_settings(args: argparse.Namespace, config: TrainConfig, run_dir: Path) -> None:
    """A --resume with an option that differs from the run's own setting is refused (it used to be ignored)."""
    changed = [f"--{name.replace('_', '-')}" for name in RESUME_KEEPS
               if getattr(args, name, None) is not None and getattr(args, name) != getattr(config, name)]
    if changed:
        raise ConfigError(f"--resume continues {run_dir} with its own settings, and {', '.join(changed)} would change "
                          "them; leave them out (only --epochs can change), or start a new run with --out.")


def cmd_predict(args: argparse.Namespace, env: dict[str, str]) -> int:
    from ..inference import TrainedModel

    model = TrainedModel.load(args.run_dir)
    if model.image is not None:
        from ..evaluation import plots

        ds = fm.load_fashion_mnist(root=args.data_dir, env_dir=fm.env_data_dir(env))
        X, y = ds.test_images[:args.n], ds.test_labels[:args.n]
        pred = model.predict(X)
        names = model.classes
        run = Path(args.run_dir)
        out = Path(args.out) if args.out else (run if run.is_dir() else run.parent) / f"predictions-{args.n}.png"
        plots.save_figure(plots.predictions_figure(X, [names[int(i)] for i in y], [names[int(i)] for i in pred]),
                          out)
        print(f"{'true':>12} -> predicted")
        for t, p in zip(y, pred):
            print(f"{names[int(t)]:>12} -> {names[int(p)]}")
        print(f"picture: {out}")
        return 0
    if not args.data:
        columns = ", ".join((model.feature_names or [])[:10]) or "the model's features"
        raise ConfigError(f"--data PATH.csv is required to predict with this model: a table with the columns "
                          f"{columns}.")
    header, preds = model.predict_csv(args.data)
    rows = [{header[0]: p} for p in preds]
    if args.out:
        write_csv(args.out, rows)
        print(f"{len(rows)} predictions written to {args.out}")
    else:
        print(header[0])
        for p in preds:
            print(p)
    return 0


def cmd_evaluate(args: argparse.Namespace, env: dict[str, str]) -> int:
    import json

    from ..data.tabular import load_csv
    from ..evaluation import metrics as M
    from ..inference import TrainedModel
    from ..training.run import read_run_config

    run_dir = Path(args.run_dir)
    model = TrainedModel.load(run_dir)
    config = read_run_config(run_dir) if (run_dir / "config.json").exists() else None
    if args.data or (config is not None and config.is_csv):
        target = config.target if config else None
        if target is None:
            raise ConfigError("cannot tell the target column of this model; evaluate a CSV-trained run.")
        task = "regression" if model.kind == "linreg" else "classification"
        source, rows = args.data or (config.val_data if config.val_data else config.data), "all"
        if not args.data and config.val_data:  # the run's own validation table
            rows = "validation"
        if not args.data and not config.val_data and _streamed(config):  # its rows picked by index
            pred, y = _streamed_validation(config, model)
            rows = "validation"
        else:
            table = load_csv(source, target, model.feature_names, task=task, classes=model.classes)
            X, y = table.X, table.y
            if rows == "all" and not args.data:  # the run's own validation rows: the same seeded split
                X, y = _validation_rows(config, X, y)
                rows = "validation"
            pred = model.predict(X)
        if task == "regression":
            result = {"rmse": M.rmse(pred, y.reshape(-1)), "r2": M.r2_score(pred, y.reshape(-1)),
                      "rows": len(pred)}
        else:
            result = {"accuracy": float((pred == y).double().mean()), "rows": len(pred)}
        result["data"], result["split"] = str(source), rows
    elif config is not None and config.data == "synthetic":  # the run's own data, drawn again from its seed
        from ..data import synthetic_regression, train_val_split

        X, y = synthetic_regression(config.true_w, config.true_b, config.num_examples, config.noise, seed=config.seed)
        tr, va = train_val_split(len(X), config.resolved_val_fraction, config.seed)
        rows = va if len(va) else tr
        pred = model.predict(X[rows])
        result = {"rmse": M.rmse(pred, y[rows].reshape(-1)), "r2": M.r2_score(pred, y[rows].reshape(-1)),
                  "rows": len(rows), "data": f"synthetic (seed {config.seed})",
                  "split": "validation" if len(va) else "training (the run kept no validation rows)"}
    elif model.image is not None:
        ds = fm.load_fashion_mnist(root=args.data_dir, env_dir=fm.env_data_dir(env))
        pred = model.predict(ds.test_images)
        cm = M.confusion_matrix(pred, ds.test_labels, 10)
        result = {"test_acc": float((pred == ds.test_labels).double().mean()), "rows": len(pred),
                  "per_class_accuracy": dict(zip(fm.TEXT_LABELS, M.per_class_accuracy(cm).tolist()))}
    else:
        raise ConfigError("pass --data PATH.csv with labelled rows to evaluate this model.")
    print(json.dumps(result, indent=2))
    return 0


def _validation_rows(config: TrainConfig, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows an in-memory CSV run held out for validation (its seeded split of the same file)."""
    from ..data import train_val_split

    _, va = train_val_split(len(X), config.resolved_val_fraction, config.seed)
    if not len(va):
        raise ConfigError("this run kept no validation rows (--val-fraction 0); pass --data with labelled rows.")
    return X[va], y[va]


def _streamed(config: TrainConfig) -> bool:
    """Whether the run read its table in chunks (--stream, --chunk-rows, a .npy/Parquet file or a folder)."""
    return bool(config.stream or config.chunk_rows) or Path(config.data).suffix != ".csv"


def _streamed_validation(config: TrainConfig, model) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and targets on the rows a streamed run held out (picked by row index, as in training),
    read chunk by chunk: only the validation rows' predictions are kept."""
    from ..data.tabular import canonical_label
    from ..scale.sgd_stream import encode_labels
    from ..scale.streaming import iter_table_chunks

    fraction = config.resolved_val_fraction
    if fraction <= 0:
        raise ConfigError("this run kept no validation rows (--val-fraction 0); pass --data with labelled rows.")
    classify = model.kind == "softmax"
    lookup = {canonical_label(str(c)): i for i, c in enumerate(model.classes or [])}
    preds, targets = [], []
    for c in iter_table_chunks(config.data, config.target, model.feature_names, config.chunk_rows,
                               labels=classify, part="val", val_fraction=fraction)[1]:
        preds.append(model.predict(torch.from_numpy(c.X)))
        if classify:  # the stream's own encoder: an unseen label names its file and row
            targets.append(encode_labels(c, lookup, config.target or "y", "validation"))
        else:
            targets.append(torch.from_numpy(c.y))
    if not preds:
        raise ConfigError(f"{config.data} holds no validation rows for this run; pass --data with labelled rows.")
    return torch.cat(preds), torch.cat(targets)


def cmd_show(args: argparse.Namespace, env: dict[str, str]) -> int:
    from ..evaluation.summary import describe_run

    print(describe_run(Path(args.run_dir)))
    return 0


def cmd_plot(args: argparse.Namespace, env: dict[str, str]) -> int:
    from ..evaluation import plots

    out = plots.save_figure(plots.normal_figure(), args.out)
    print(f"normal densities: {out}")
    return 0


def cmd_demo(args: argparse.Namespace, env: dict[str, str]) -> int:
    from ..demos import vectorization_demo

    r = vectorization_demo(args.n)
    print(f"adding two {r['n']}-vectors: python loop {r['loop_seconds'] * 1e3:.2f} ms, vectorized "
          f"{r['vectorized_seconds'] * 1e6:.1f} us, {r['speedup']:.0f}x faster")
    return 0


def cmd_data(args: argparse.Namespace, env: dict[str, str]) -> int:
    ds = fm.load_fashion_mnist(root=args.data_dir, env_dir=fm.env_data_dir(env),
                               allow_download=not args.no_download)
    if args.action == "fetch":
        print(f"Fashion-MNIST ready: {ds.source}, verified, loaded in {ds.load_seconds:.2f} s")
    elif args.action == "info":
        print(f"source: {ds.source}")
        for split in ("train", "test"):
            X, y = ds.split(split)
            counts = fm.class_counts(y)
            print(f"{split}: {len(X)} images {tuple(X.shape[1:])} uint8, pixels {int(X.min())}-{int(X.max())}")
            print("  per class: " + ", ".join(f"{n} {c}" for n, c in zip(fm.TEXT_LABELS, counts)))
    elif args.action == "show":
        from ..evaluation import plots

        X, y = ds.split(args.split)
        n = min(args.n, len(X))
        cols = min(9, n)
        fig = plots.image_grid(X[:n], -(-n // cols), cols, fm.get_fashion_mnist_labels(y[:n]))
        print(f"image grid: {plots.save_figure(fig, args.out)}")
    else:
        from ..data.speed import read_pass_times

        for name, seconds in read_pass_times(ds, args.batch_size).items():
            print(f"{name:>32}: {seconds * 1e3:8.1f} ms")
    return 0


def cmd_chapter(args: argparse.Namespace, env: dict[str, str]) -> int:
    from ..chapter import run_chapter

    start = time.perf_counter()
    run_chapter(Path(args.out), softmax=not args.skip_softmax, data_dir=args.data_dir,
                data_env=fm.env_data_dir(env))
    print(f"whole chapter: {time.perf_counter() - start:.1f} s")
    return 0
