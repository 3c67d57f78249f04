"""Argument parsing and dispatch. The only place that reads ``sys.argv`` and the environment.

It imports nothing heavy: ``--help`` and argument errors answer before torch or matplotlib load
(the commands import them when they run).
"""

from __future__ import annotations

import _thread
import argparse
import gc
import os
import signal
import sys
import threading
from pathlib import Path

from ..config import TrainConfig
from ..errors import DataError, LinearNetError


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``kill``, torchrun's agent) stops a run as Ctrl-C does."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


class _Redelivery:
    """Sends again a Ctrl-C or SIGTERM that Python swallowed (a ``sys.unraisablehook``).

    Python runs a signal's handler at the next bytecode, which may be inside a weakref callback
    (an import's module lock is freed through one) or a ``__del__``: an exception raised there
    cannot propagate, so Python prints "Exception ignored in ..." and the command would carry on.
    The signal is sent again from a timer thread a moment later, when the callback (and this hook:
    a signal marked from here would be handled inside it) has returned; :meth:`settle` raises it
    directly if the command ends first.
    """

    DELAY = 0.01  # seconds

    def __init__(self, previous_hook) -> None:
        self.previous_hook, self.timer, self.fired, self.exc = previous_hook, None, False, None

    def __call__(self, unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            return self.previous_hook(unraisable)
        self.exc = unraisable.exc_value
        signum = signal.SIGTERM if isinstance(self.exc, Terminated) else signal.SIGINT
        self.timer = threading.Timer(self.DELAY, self._fire, (signum,))
        self.timer.daemon = True
        self.timer.start()

    def _fire(self, signum: int) -> None:
        self.fired = True
        _thread.interrupt_main(signum)

    def settle(self) -> None:
        """At the command's end: a swallowed signal not yet sent again is raised here."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join()  # a signal sent meanwhile is handled on return from this call
            if not self.fired:
                raise type(self.exc)()


def _positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train linear or softmax regression and write a run folder")
    p.add_argument("model", choices=["linreg", "softmax"])
    p.add_argument("--impl", default=None, help="scratch | concise | analytic (hand-derived gradients, fastest) | "
                   "closed-form (linreg); default scratch")
    p.add_argument("--data", default=None,
                   help="synthetic (linreg default) | fashion-mnist (softmax default) | a table: PATH.csv | "
                        "PATH.parquet | PATH.npy | a folder of CSV or Parquet files")
    p.add_argument("--target", help="table: the column to predict")
    p.add_argument("--features", help="table: comma-separated feature columns (default: all but the target)")
    p.add_argument("--no-standardize", action="store_true", help="table: use raw feature values")
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=_positive_int, help="global minibatch size (split across torchrun ranks)")
    p.add_argument("--loss", choices=["squared", "huber"])
    p.add_argument("--huber-delta", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--lr-schedule", choices=["constant", "cosine", "step"])
    p.add_argument("--val-fraction", type=float, help="share of training rows held out for validation")
    p.add_argument("--resize", type=_positive_int, help="Fashion-MNIST: resize images to R x R")
    p.add_argument("--normalize", action="store_true", help="Fashion-MNIST: standardize pixels")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"])
    p.add_argument("--seed", type=_positive_int)
    p.add_argument("--num-examples", type=_positive_int, help="synthetic: number of examples (default 1000)")
    p.add_argument("--noise", type=float, help="synthetic: label noise std (default 0.01)")
    p.add_argument("--data-dir", help="Fashion-MNIST: folder with the IDX files")
    p.add_argument("--no-download", action="store_true", help="Fashion-MNIST: never download")
    p.add_argument("--chunk-rows", type=_positive_int,
                   help="closed form and --stream: read the table in chunks of N rows")
    p.add_argument("--stream", action="store_true",
                   help="SGD from PATH (file or folder) in chunks through a shuffle buffer, never all in memory")
    p.add_argument("--shuffle-buffer", type=_positive_int, metavar="ROWS",
                   help="--stream: rows mixed in the shuffle buffer (default 4 chunks' worth)")
    p.add_argument("--val-data", metavar="PATH", help="a separate validation table (no rows held out of --data)")
    p.add_argument("--checkpoint-every", type=_positive_int, help="epochs between checkpoints (0: none)")
    p.add_argument("--checkpoint-rows", type=_positive_int, metavar="ROWS",
                   help="--stream: also checkpoint inside an epoch, at the first chunk end after every ROWS rows")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="CPU threads for torch's kernels (default: 1 with --stream, else one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--allow-many-classes", action="store_true",
                   help="softmax: treat a fractional numeric target with many values as classes")
    p.add_argument("--out", help="run folder (default runs/<timestamp>-<model>-<impl>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linearnet", description="Linear neural networks, done right.")
    parser.add_argument("--version", action="version", version=f"linearnet {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    p = sub.add_parser("predict", help="predict with a trained run")
    p.add_argument("run_dir")
    p.add_argument("--data", help="CSV with the model's feature columns (CSV models)")
    p.add_argument("--n", type=_positive_int, default=6, help="Fashion-MNIST: number of test images to show")
    p.add_argument("--out", help="output CSV (CSV models; default: print) or PNG (image models; default: "
                                 "RUN_DIR/predictions-N.png)")
    p.add_argument("--data-dir")
    p = sub.add_parser("evaluate", help="evaluate a trained run on its test data or a CSV")
    p.add_argument("run_dir")
    p.add_argument("--data", help="labelled CSV (default: the run's own evaluation data: Fashion-MNIST's test "
                                  "set, or the validation rows of the run's CSV)")
    p.add_argument("--data-dir")
    p = sub.add_parser("show", help="a trained run: configuration, final metrics, coefficients")
    p.add_argument("run_dir")
    p = sub.add_parser("plot", help="the chapter's figures")
    p.add_argument("what", choices=["normal"])
    p.add_argument("--out", default="normal.png")
    p = sub.add_parser("demo", help="the chapter's demos")
    p.add_argument("what", choices=["vectorize"])
    p.add_argument("--n", type=_positive_int, default=10000)
    p = sub.add_parser("data", help="Fashion-MNIST: fetch, info, show, bench")
    p.add_argument("action", choices=["fetch", "info", "show", "bench"])
    p.add_argument("--data-dir")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--n", type=_positive_int, default=18)
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--out", default="fashion_mnist.png")
    p.add_argument("--batch-size", type=_positive_int, default=256)
    p = sub.add_parser("chapter", help="run every experiment of the chapter and compare with its numbers")
    p.add_argument("--out", default="runs/chapter", help="folder for the chapter's runs and figures")
    p.add_argument("--skip-softmax", action="store_true", help="linear regression only")
    p.add_argument("--data-dir")
    return parser


def _version() -> str:
    """The installed package's version (read from its metadata: importing nothing heavy)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("linearnet")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The training configuration the arguments describe (chapter defaults for the rest)."""
    data = args.data
    if data is not None and data not in ("synthetic", "fashion-mnist") and not Path(data).exists():
        raise DataError(f"{data}: file not found; check the --data path.")
    impl = args.impl or "scratch"
    return TrainConfig.create(
        args.model, impl=impl, data=data, target=args.target,
        features=tuple(f.strip() for f in args.features.split(",")) if args.features else None,
        standardize=not args.no_standardize, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        loss=args.loss, huber_delta=args.huber_delta, weight_decay=args.weight_decay,
        lr_schedule=args.lr_schedule, val_fraction=args.val_fraction, resize=args.resize,
        normalize=args.normalize or None, device=args.device, seed=args.seed, num_examples=args.num_examples,
        noise=args.noise, data_dir=args.data_dir, allow_download=not args.no_download,
        chunk_rows=args.chunk_rows, checkpoint_every=args.checkpoint_every, stream=args.stream or None,
        checkpoint_rows=args.checkpoint_rows,
        shuffle_buffer=args.shuffle_buffer, val_data=args.val_data, threads=args.threads,
        progress=not args.no_progress, allow_many_classes=args.allow_many_classes or None)


def main(argv: list[str] | None = None, executable: bool = False) -> int:
    """Entry point: returns the process exit code (2 for user errors, 130 for Ctrl-C, 143 for SIGTERM).

    ``executable``: this process is the command and ends with it (see :func:`run`).
    """
    args = build_parser().parse_args(argv)
    env = dict(os.environ)
    try:
        if args.command == "train" and not args.resume:
            config_from_args(args)  # a bad argument is answered before torch loads
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if _main_thread() else None
        unraisable = sys.unraisablehook
        redelivery = _Redelivery(unraisable) if previous is not None else None  # signals reach the main thread
        if redelivery is not None:
            sys.unraisablehook = redelivery
        try:
            return _dispatch(args, env, executable)
        finally:
            if redelivery is not None:
                try:
                    redelivery.settle()  # while our SIGTERM handler is still in place
                finally:
                    signal.signal(signal.SIGTERM, previous)
                    sys.unraisablehook = unraisable
    except LinearNetError as exc:
        print(f"linearnet: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader of our output left (`linearnet predict ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush has nowhere to go
        return 141  # what a shell reports for a writer ended by SIGPIPE
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        run_dir = getattr(args, "_run_dir", None)
        if env.get("RANK", "0") != "0":  # under torchrun rank 0 speaks for the job
            return 143 if terminated else 130
        hint = f"; resume with: linearnet train {args.model} --resume {run_dir}" if run_dir else ""
        if run_dir and not _has_checkpoint(Path(run_dir)):
            hint = (f"; no checkpoint was written yet (--checkpoint-every N sets how often), so --resume {run_dir} "
                    "starts it again" if _resumable(Path(run_dir)) else
                    "; it stopped before its run folder was made: run the same command again")
        print(f"\nlinearnet: {'stopped by SIGTERM' if terminated else 'interrupted'}{hint}", file=sys.stderr)
        return 143 if terminated else 130


def run() -> int:
    """The ``linearnet`` executable (console script and ``python -m linearnet``): :func:`main`, quickly.

    The objects that live as long as the process (torch's ~165,000, imported once) are frozen out of
    the garbage collector after the imports, so its full collections during a run (matplotlib
    allocates enough to trigger several) and the final one at exit do not walk them again: 0.2-0.4 s
    of a ``train`` command. An in-process caller of :func:`main` (the tests, a notebook) is left alone:
    there, freezing would keep garbage that exists at that moment forever.
    """
    code = main(executable=True)
    gc.freeze()
    return code


def _has_checkpoint(run_dir: Path) -> bool:
    """Whether an interrupted run (``R.partial``, or ``R`` being continued) holds a checkpoint to resume from."""
    name = run_dir.name[:-len(".partial")] if run_dir.name.endswith(".partial") else run_dir.name
    return any((run_dir.with_name(n) / "checkpoint.safetensors").is_file() for n in (name + ".partial", name))


def _resumable(run_dir: Path) -> bool:
    """Whether ``--resume run_dir`` finds a run folder (the command may stop before it makes one)."""
    from ..training.run import find_resumable

    try:
        find_resumable(run_dir)
    except LinearNetError:
        return False
    return True


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _dispatch(args: argparse.Namespace, env: dict[str, str], executable: bool = False) -> int:
    from . import commands

    if executable:
        gc.freeze()  # torch and the data stack are loaded now: see run()

    distributed = commands.maybe_init_distributed(env)
    try:
        code = getattr(commands, f"cmd_{args.command}")(args, env)
        if distributed:  # every rank leaves together: none tears down while rank 0 still writes
            commands.wait_for_all_ranks()
        return code
    finally:
        if distributed:
            commands.shutdown_distributed()
