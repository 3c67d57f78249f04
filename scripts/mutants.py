"""Mutation check: break the core on purpose, one named change at a time, and require a test to notice.

Each mutation is an exact text replacement in one file of a temporary copy of the repository; only the
tests named beside it run (``pytest -x``). A mutation whose tests still pass is a *survivor* and makes
the script exit 1, listing it. A mutation whose original text is no longer in its file is an ERROR (exit
2): the code moved on and the table must follow, never silently skip. Run: ``make mutants`` or
``python scripts/mutants.py [-j 2] [NAME ...]`` (``--list`` prints the table).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


T_EXACT = "tests/test_exact.py"
T_LIN = "tests/test_linreg.py"
T_SM = "tests/test_softmax.py"
T_REL = "tests/test_reliability.py"
T_FM = "tests/test_fashion_mnist.py"
T_D2L = "tests/test_d2l_listings.py"
T_CLAIMS = "tests/test_readme_claims.py"

# name | file | original text -> mutated text | tests that must catch it
M = Mutant
MUTANTS: list[Mutant] = [
    # --- the survivors listed in issue #18 ---
    M("rank-shard-skipped", "linearnet/data/batches.py",
      "idx = idx[self.rank::self.world_size]", "idx = idx",
      (f"{T_EXACT}::test_rank_shards_are_disjoint_and_cover_each_global_batch",)),
    M("moments-all-rows-on-every-rank", "linearnet/scale/distributed.py",
      "lo, hi = n * rank // world, n * (rank + 1) // world", "lo, hi = 0, n",
      (f"{T_EXACT}::test_sharded_moments_each_rank_reduces_its_own_rows",)),
    M("metrics-not-reduced-across-ranks", "linearnet/training/loop.py",
      "        dist.all_reduce(totals)", "        pass",
      ("tests/test_distributed.py::test_ranks_count_every_example_once",)),
    M("idx-int32-little-endian", "linearnet/data/idx.py",
      '0x0C: np.dtype(">i4")', '0x0C: np.dtype("<i4")',
      (f"{T_EXACT}::test_idx_bytes_are_the_documented_big_endian_layout",)),
    M("idx-float64-little-endian", "linearnet/data/idx.py",
      '0x0E: np.dtype(">f8")', '0x0E: np.dtype("<f8")',
      (f"{T_EXACT}::test_idx_bytes_are_the_documented_big_endian_layout",)),
    M("idx-int32-float32-codes-swapped", "linearnet/data/idx.py",
      '0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4")', '0x0C: np.dtype(">f4"), 0x0D: np.dtype(">i4")',
      (f"{T_EXACT}::test_idx_bytes_are_the_documented_big_endian_layout",)),
    M("cholesky-threshold-1e300", "linearnet/models/closed_form.py",
      "NORMAL_EQUATIONS_MAX_COND = 1e6", "NORMAL_EQUATIONS_MAX_COND = 1e300",
      (f"{T_EXACT}::test_solver_switches_to_qr_above_condition_1e6",)),
    M("eigh-solution-scaled", "linearnet/models/closed_form.py",
      "w = (vecs @ (inv_vals[:, None] * (vecs.t() @ B))) / scale[:, None]",
      "w = 1.01 * (vecs @ (inv_vals[:, None] * (vecs.t() @ B))) / scale[:, None]",
      (f"{T_EXACT}::test_eigen_solve_of_ill_conditioned_moments_matches_lstsq",
       f"{T_EXACT}::test_singular_moments_give_the_pseudo_inverse_solution")),
    M("sklearn-softmax-intercept-uncorrected", "linearnet/sklearn.py",
      "self.intercept_ = b - self.coef_ @ mean", "self.intercept_ = b",
      (f"{T_EXACT}::test_softmax_regression_intercept_is_in_the_callers_units",)),
    M("saved-weights-scaled", "linearnet/training/run.py",
      "return ModelFile(config.model, weight.cpu().to(dtype),",
      "return ModelFile(config.model, 1.01 * weight.cpu().to(dtype),",
      (f"{T_EXACT}::test_csv_closed_form_fits_exactly_the_training_rows",)),
    M("predictions-scaled", "linearnet/inference.py",
      "            return out.reshape(-1)", "            return 1.02 * out.reshape(-1)",
      (f"{T_EXACT}::test_csv_standardizer_uses_training_rows_and_predict_applies_it",)),
    M("csv-trains-on-validation-rows", "linearnet/training/prepare.py",
      "X_tr, y_tr = table.X[tr], table.y[tr]", "X_tr, y_tr = table.X, table.y",
      (f"{T_EXACT}::test_csv_closed_form_fits_exactly_the_training_rows",)),
    M("standardizer-fitted-on-all-rows", "linearnet/training/prepare.py",
      "x_scaler = Standardizer.fit(X_tr) if", "x_scaler = Standardizer.fit(table.X) if",
      (f"{T_EXACT}::test_csv_standardizer_uses_training_rows_and_predict_applies_it",)),
    M("data-sources-env-before-data-dir", "linearnet/data/fashion_mnist.py",
      'for label, given in (("root", root), ("LINEARNET_DATA", env_dir)):',
      'for label, given in (("LINEARNET_DATA", env_dir), ("root", root)):',
      (f"{T_EXACT}::test_data_sources_are_tried_in_the_documented_order",)),
    M("d2l-train-epoch-loss-halved", "linearnet/d2l/v017.py",
      "metric.add(float(l.detach().sum()),", "metric.add(float(l.detach().sum()) / 2,",
      (f"{T_D2L}::test_train_epoch_ch3_reports_the_mean_loss_and_accuracy",)),
    M("d2l-predict-shows-true-labels", "linearnet/d2l/v017.py",
      "preds = get_fashion_mnist_labels(net(X).argmax(axis=1))", "preds = get_fashion_mnist_labels(y)",
      (f"{T_D2L}::test_predict_ch3_titles_show_the_predictions_with_resize",)),
    M("d2l-synthetic-data-no-noise", "linearnet/d2l/v017.py",
      "noise=0.01, seed=None)", "noise=0.0, seed=None)",
      (f"{T_D2L}::test_synthetic_data_has_the_chapters_noise",)),
    # --- one per core function ---
    M("squared-loss-not-halved", "linearnet/models/scratch.py",
      "return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2", "return (y_hat - y.reshape(y_hat.shape)) ** 2",
      (f"{T_LIN}::test_squared_loss_gradient_matches_hand_formula_and_autograd",)),
    M("huber-linear-part-wrong", "linearnet/models/scratch.py",
      "delta * (r - 0.5 * delta)", "delta * r",
      (f"{T_LIN}::test_huber_matches_torch",)),
    M("softmax-no-max-shift", "linearnet/models/scratch.py",
      "return X.detach().amax(dim=1, keepdim=True)", "return torch.zeros_like(X[:, :1])",
      (f"{T_SM}::test_softmax_log_softmax_cross_entropy_match_torch_even_at_1000",)),
    M("cross-entropy-sign", "linearnet/models/scratch.py",
      "return torch.logsumexp(shifted, 1) - shifted.gather(", "return torch.logsumexp(shifted, 1) + shifted.gather(",
      (f"{T_SM}::test_softmax_log_softmax_cross_entropy_match_torch_even_at_1000",)),
    M("sgd-ignores-batch-size", "linearnet/models/scratch.py",
      "param -= lr * (param.grad / batch_size + weight_decay * param)",
      "param -= lr * (param.grad + weight_decay * param)",
      (f"{T_LIN}::test_sgd_divides_by_actual_batch_size_and_zeroes_grads",)),
    M("moments-merge-drops-correction", "linearnet/models/closed_form.py",
      "self.cxx + other.cxx + f * torch.outer(dx, dx)", "self.cxx + other.cxx",
      (f"{T_EXACT}::test_moments_merge_equals_one_pass_statistics",)),
    M("cholesky-solution-scaled", "linearnet/models/closed_form.py",
      "w = torch.cholesky_solve(B, L) / scale[:, None]", "w = 1.01 * torch.cholesky_solve(B, L) / scale[:, None]",
      (f"{T_EXACT}::test_solver_switches_to_qr_above_condition_1e6",)),
    M("standardizer-no-centring", "linearnet/data/tabular.py",
      "return ((X.to(torch.float64) - self.mean) / self.std).to(X.dtype)",
      "return (X.to(torch.float64) / self.std).to(X.dtype)",
      (f"{T_EXACT}::test_csv_standardizer_uses_training_rows_and_predict_applies_it",)),
    M("idx-magic-unchecked", "linearnet/data/idx.py",
      "if data[0] != 0 or data[1] != 0:", "if False:",
      (f"{T_FM}::test_malformed_idx_raises_data_error_naming_the_file",)),
    M("checkpoint-batch-rng-not-restored", "linearnet/training/checkpoint.py",
      'g.set_state(tensors[f"rng.batches.{name}"])', "pass",
      (f"{T_REL}::test_resume_continues_with_more_epochs_like_one_long_run",)),
    M("checkpoint-params-not-restored", "linearnet/training/run.py",
      "net.load_state_dict({k: v.to(device) for k, v in ckpt[\"params\"].items()})", "pass",
      (f"{T_REL}::test_resume_continues_with_more_epochs_like_one_long_run",)),
    M("split-validation-share-ignored", "linearnet/data/split.py",
      "n_val = int(round(n * val_fraction))", "n_val = 1",
      (f"{T_EXACT}::test_csv_closed_form_fits_exactly_the_training_rows",)),
    M("model-shape-check-skipped", "linearnet/persist.py",
      "self.bias.shape[0] != self.weight.shape[0]:", "False:",
      (f"{T_REL}::test_model_files_with_wrong_shapes_or_newer_versions_are_refused",)),
    M("analytic-huber-gradient-unclipped", "linearnet/models/analytic.py",
      "delta * (a - 0.5 * delta)).sum(), r.clamp(-delta, delta)", "delta * (a - 0.5 * delta)).sum(), r",
      ("tests/test_analytic.py::test_loss_derivatives_match_autograd_per_output",)),
    M("analytic-cross-entropy-gradient-no-one-hot", "linearnet/models/analytic.py",
      "torch.full(cols.shape, -1.0,", "torch.full(cols.shape, 0.0,",
      ("tests/test_analytic.py::test_loss_derivatives_match_autograd_per_output",)),
    M("analytic-sgd-ignores-batch-size", "linearnet/models/analytic.py",
      "step = self.lr / X.shape[0]", "step = self.lr",
      ("tests/test_analytic.py::test_one_step_applies_autograds_gradient",)),
    M("accuracy-tail-not-counted", "linearnet/training/loop.py",
      "    if outs:\n        correct += _count_correct(outs, labels, on_cpu)\n", "",
      (f"{T_SM}::test_epoch_accuracy_counts_every_batch_including_the_tail",)),
    M("analytic-ranks-sgd-ignores-batch-size", "linearnet/models/analytic.py",
      "alpha=-lr / batch_size)", "alpha=-lr)",
      ("tests/test_analytic.py::test_two_ranks_equal_one_process",)),
    M("blowup-probe-on-the-training-model", "linearnet/training/loop.py",
      "probe_sum += float(at_start.eval_step(X, y)[0])", "probe_sum += float(learner.eval_step(X, y)[0])",
      ("tests/test_divergence.py::test_small_batches_blowing_up_in_the_first_epoch_are_caught_against_the_true_start",)),
    M("blowup-start-not-checkpointed", "linearnet/training/run.py",
      "LossWatch(ckpt.get(\"start_loss\") if ckpt is not None else None)", "LossWatch(None)",
      ("tests/test_sgd_stream.py::test_a_converged_run_resumed_inside_its_first_epoch_is_not_called_diverged",)),
    M("lr-step-schedule-off", "linearnet/training/loop.py",
      "return base_lr * 0.1", "return base_lr",
      (f"{T_CLAIMS}::test_lr_schedules_follow_their_formulas",)),
    M("lr-cosine-not-halved", "linearnet/training/loop.py",
      "return base_lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))",
      "return base_lr * (1 + math.cos(math.pi * epoch / epochs))",
      (f"{T_CLAIMS}::test_lr_schedules_follow_their_formulas",)),
    M("streamed-weights-scaled", "linearnet/scale/streaming.py",
      'ModelFile("linreg", sol.weight.double(),', 'ModelFile("linreg", 1.01 * sol.weight.double(),',
      ("tests/test_streaming.py::test_cli_streaming_run_folder",)),
    # --- added since: analytic sign and all-reduce, run folders, integrity, file modes, streams, d2l 1.0 ---
    M("analytic-squared-gradient-sign", "linearnet/models/analytic.py",
      "r.t(), beta=0, alpha=0.5).view(()), r", "r.t(), beta=0, alpha=0.5).view(()), -r",
      ("tests/test_analytic.py::test_one_step_applies_autograds_gradient",)),
    M("analytic-ranks-not-summed", "linearnet/models/analytic.py",
      "        dist.all_reduce(flat)", "        pass",
      ("tests/test_analytic.py::test_two_ranks_equal_one_process",)),
    M("failed-run-staging-kept", "linearnet/training/run.py",
      "        if self.created:\n            shutil.rmtree(self.staging",
      "        if False:\n            shutil.rmtree(self.staging",
      ("tests/test_run_folder.py::test_six_failed_commands_leave_no_folder",)),
    M("model-digest-unchecked", "linearnet/persist.py",
      "if recorded is not None and recorded != tensors_digest(tensors):", "if False:",
      ("tests/test_integrity.py::test_checkpoint_with_a_flipped_bit_is_refused_and_an_older_one_loads",)),
    M("files-ignore-umask", "linearnet/io.py",
      "_FILE_MODE = 0o666 & ~_read_umask()", "_FILE_MODE = 0o600",
      ("tests/test_file_modes.py::test_written_files_honour_the_umask",)),
    M("constant-column-absolute-cutoff", "linearnet/data/tabular.py",
      "constant = ~(std > 4 * torch.finfo(torch.float64).eps * mean.abs())",
      "constant = ~(std > 1e-12 * mean.abs().clamp_min(1.0))",
      ("tests/test_tables.py::test_constant_only_relative_to_own_magnitude",)),
    M("stream-moments-merge-drops-correction", "linearnet/data/moments.py",
      "self.m2 = self.m2 + m2 + delta ** 2 * (self.n * n / total)", "self.m2 = self.m2 + m2",
      ("tests/test_sgd_stream.py::test_column_moments_match_in_memory_standardizer",)),
    M("stream-buffer-end-dropped", "linearnet/scale/sgd_stream.py",
      "carry = rest if carry is None else (torch.cat([carry[0], rest[0]]), torch.cat([carry[1], rest[1]]))",
      "pass",
      ("tests/test_sgd_stream.py::test_shuffle_buffer_yields_every_row_once_in_a_mixed_order",)),
    M("shuffle-buffer-samples-freed-slots", "linearnet/scale/sgd_stream.py",
      "        if not len(self.free):\n            return perm", "        if True:\n            return perm",
      ("tests/test_sgd_stream.py::test_shuffle_buffer_with_uneven_chunks_lets_every_row_out_once",)),
    M("shuffle-buffer-leaves-in-slot-order", "linearnet/scale/sgd_stream.py",
      "leave = self._live_in_random_order()[:m]", "leave = self._live_in_random_order()[:m].sort().values",
      ("tests/test_sgd_stream.py::test_shuffle_buffer_lets_out_a_uniform_sample_in_random_order",)),
    M("parquet-nulls-not-nan", "linearnet/data/tabular.py",
      "to_tensor(null_to_nan=True, row_major=False)", "to_tensor(null_to_nan=False, row_major=False)",
      ("tests/test_tables.py::test_parquet_numeric_columns_read_alike_in_one_call_or_column_by_column",)),
    M("stream-resume-restarts-file", "linearnet/scale/streaming.py",
      "            skip = start[1] if fi == start[0] else 0", "            skip = 0",
      ("tests/test_sgd_stream.py::test_checkpoint_inside_an_epoch_then_resume_equals_uninterrupted",)),
    M("uneven-ranks-not-padded", "linearnet/scale/sgd_stream.py",
      "        if self.pad_to is not None and steps < self.pad_to:", "        if False:",
      ("tests/test_distributed.py::test_uneven_ranks_train_on_every_row_once",)),
    M("sigterm-exit-130", "linearnet/cli/main.py",
      "file=sys.stderr)\n        return 143 if terminated else 130", "file=sys.stderr)\n        return 130",
      ("tests/test_sigterm.py::test_sigterm_keeps_checkpoint_prints_resume_and_exits_143",)),
    M("d2l-board-every-n-not-averaged", "linearnet/d2l/v10.py",
      "Point(float(sum(p[0] for p in points)) / n, float(sum(p[1] for p in points)) / n)",
      "Point(float(points[-1][0]), float(points[-1][1]))",
      ("tests/test_d2l_en_listings.py::test_board_draw_only_collects_between_renders",
       "tests/test_d2l_en_listings.py::test_oo_design_listing")),
    M("default-checkpoint-cadence-off", "linearnet/training/run.py",
      "return 1 if rows * max(config.epochs, 1) >= 100_000 else 0", "return 0",
      (f"{T_CLAIMS}::test_default_checkpoint_cadence",)),
]


def _copy_repo(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files only (no .venv, no runs)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def check_patterns(mutants: list[Mutant]) -> list[str]:
    """Every mutation's original text must occur exactly once in its file."""
    errors = []
    for m in mutants:
        path = ROOT / m.file
        text = path.read_text() if path.is_file() else ""
        count = text.count(m.old)
        if count != 1:
            errors.append(f"{m.name}: original text found {count} times in {m.file} (expected once): {m.old!r}")
    return errors


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
    return env


def _pytest(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "--hypothesis-seed=0", *tests]
    try:
        proc = subprocess.run(cmd, cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    return proc.returncode, proc.stdout[-1500:] + proc.stderr[-1500:]


def _run_one(m: Mutant, copy: Path, timeout: float) -> tuple[str, str, float]:
    """'killed', 'SURVIVED' or 'ERROR' for one mutation applied to ``copy`` (restored afterwards)."""
    path = copy / m.file
    original = path.read_text()
    start = time.perf_counter()
    path.write_text(original.replace(m.old, m.new, 1))
    try:
        code, tail = _pytest(copy, m.tests, timeout)
    finally:
        path.write_text(original)
    seconds = time.perf_counter() - start
    if code == 1:
        return "killed", "", seconds
    if code == 0:
        return "SURVIVED", "", seconds
    return "ERROR", f"pytest exit {code}: {tail.strip().splitlines()[-1] if tail.strip() else ''}", seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="run only these mutations")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="mutations tested at once (one repo copy each)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds allowed per mutation")
    ap.add_argument("--no-baseline", action="store_true", help="skip running the selected tests unmutated first")
    ap.add_argument("--list", action="store_true", help="print the table and exit")
    args = ap.parse_args(argv)
    mutants = MUTANTS
    if args.names:
        unknown = set(args.names) - {m.name for m in MUTANTS}
        if unknown:
            print(f"unknown mutation(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        mutants = [m for m in MUTANTS if m.name in args.names]
    if args.list:
        for m in mutants:
            print(f"{m.name:<40} {m.file:<36} {', '.join(t.split('::')[-1] for t in m.tests)}")
        return 0
    errors = check_patterns(mutants)
    if errors:
        print("mutation table out of date (the code changed; update scripts/mutants.py):", file=sys.stderr)
        for e in errors:
            print(f"  ERROR {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="linearnet-mutants-") as tmp:
        copies = []
        for i in range(max(1, args.jobs)):
            copy = Path(tmp) / f"copy{i}"
            _copy_repo(copy)
            copies.append(copy)
        where = subprocess.run([sys.executable, "-c", "import linearnet; print(linearnet.__file__)"], cwd=copies[0],
                               env=_env(copies[0]), capture_output=True, text=True).stdout.strip()
        if not where.startswith(str(copies[0])):  # else the mutations would not be the code under test
            print(f"the copy's package is not the one imported (got {where!r})", file=sys.stderr)
            return 2
        if not args.no_baseline:  # a failing test would "kill" every mutation: the unmutated code must pass
            tests = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
            code, tail = _pytest(copies[0], tests, args.timeout * 2)
            if code != 0:
                print(f"baseline: the selected tests fail on the unmutated code (exit {code}):\n{tail}",
                      file=sys.stderr)
                return 2
            print(f"baseline: {len(tests)} tests pass unmutated ({time.perf_counter() - start:.0f} s)")
        free = list(copies)

        def job(m: Mutant):
            copy = free.pop()
            try:
                return m, *_run_one(m, copy, args.timeout)
            finally:
                free.append(copy)

        results = []
        with ThreadPoolExecutor(max_workers=len(copies)) as pool:
            for m, verdict, note, seconds in pool.map(job, mutants):
                print(f"{verdict:<9} {m.name:<40} {seconds:6.1f} s  {note}", flush=True)
                results.append((m, verdict))
    bad = [(m, v) for m, v in results if v != "killed"]
    print(f"{len(results) - len(bad)} of {len(results)} mutations killed in {time.perf_counter() - start:.0f} s")
    for m, v in bad:
        print(f"{v}: {m.name} ({m.file}: {m.old!r} -> {m.new!r}); tests: {', '.join(m.tests)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
