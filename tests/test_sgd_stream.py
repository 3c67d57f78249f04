"""SGD beyond memory (``--stream``): same answers as in memory, exact resume, one-sentence errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linearnet.config import TrainConfig
from linearnet.data import Standardizer
from linearnet.data.moments import ColumnMoments
from linearnet.data.split import is_val_row
from linearnet.errors import ConfigError, DataError
from linearnet.persist import load_model
from linearnet.scale.sgd_stream import StreamBatches
from linearnet.training.checkpoint import load_checkpoint
from linearnet.training.run import train_run


def _table(n: int, d: int, k: int | None, seed: int):
    """Features with offsets and scales; a linear target (regression) or the argmax of a linear score."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 20, d) + rng.uniform(-100, 100, d)
    W = rng.normal(size=(d, k or 1)) / X.std(0)[:, None]
    score = (X - X.mean(0)) @ W
    if k is None:
        return X, score[:, 0] * 3 + 5 + rng.normal(0, 0.3, n)
    return X, (score + rng.gumbel(0, 0.3, score.shape)).argmax(1)


def _write_csv(path, X, y, labels=None):
    d = X.shape[1]
    with open(path, "w") as fh:
        fh.write(",".join([f"f{i}" for i in range(d)] + ["y"]) + "\n")
        for row, t in zip(X, y):
            fh.write(",".join(f"{v:.17g}" for v in row) + "," + (labels[t] if labels else f"{t:.17g}") + "\n")
    return path


def _parquet(path, X, y):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({**{f"f{i}": X[:, i] for i in range(X.shape[1])}, "y": y}), path, row_group_size=500)
    return path


def _train(tmp_path, name, **kw):
    cfg = TrainConfig.create(kw.pop("model", "softmax"), target="y", progress=False, checkpoint_every=1, **kw)
    return train_run(cfg, tmp_path / name, log=lambda _m: None, write_figures=False)


def test_column_moments_match_in_memory_standardizer():
    X, _ = _table(5000, 4, None, 0)
    X[:, 2] = 1.7e9  # a constant column with a big offset: std 1, as in memory
    m = ColumnMoments(4)
    for part in np.array_split(X, 7):
        m.add(part)
    ref = Standardizer.fit(torch.from_numpy(X))
    got = m.standardizer()
    assert torch.allclose(got.mean, ref.mean, rtol=1e-12) and torch.allclose(got.std, ref.std, rtol=1e-10)
    assert float(got.std[2]) == 1.0


def test_shuffle_buffer_yields_every_row_once_in_a_mixed_order():
    rows = np.arange(1000, dtype=np.float64)

    def chunks(_order, all_ranks=False):
        from linearnet.data.tabular import Chunk

        for s in range(0, 1000, 90):
            r = rows[s:s + 90]
            yield Chunk(r[:, None], r, r.astype(np.int64), [])

    src = StreamBatches(chunks, lambda c: (torch.from_numpy(c.X), torch.from_numpy(c.y)), 64, shuffle_buffer=300)
    first = torch.cat([y for _, y in src])
    second = torch.cat([y for _, y in src])
    assert sorted(first.tolist()) == rows.tolist() and sorted(second.tolist()) == rows.tolist()
    assert not torch.equal(first, second)  # a fresh order each epoch
    # rows move across chunk boundaries: the first batch holds rows from beyond the first chunk
    assert float(first[:64].max()) >= 90
    plain = StreamBatches(chunks, lambda c: (torch.from_numpy(c.X), torch.from_numpy(c.y)), 64)
    assert torch.cat([y for _, y in plain]).tolist() == rows.tolist()


@pytest.mark.parametrize("impl", ["scratch", "concise"])
def test_streamed_softmax_matches_in_memory(tmp_path, impl):
    X, y = _table(4000, 5, 3, 1)
    labels = ["cat", "dog", "eel"]
    train = _write_csv(tmp_path / "train.csv", X[:3000], y[:3000], labels)
    val = _write_csv(tmp_path / "val.csv", X[3000:], y[3000:], labels)
    common = dict(impl=impl, data=str(train), val_data=str(val), epochs=3, batch_size=100, lr=0.2)
    mem = _train(tmp_path, "mem", **common)
    st = _train(tmp_path, "st", stream=True, chunk_rows=700, shuffle_buffer=1500, **common)
    assert st.data.classes == mem.data.classes == labels
    assert torch.allclose(st.data.x_scaler.std, mem.data.x_scaler.std, rtol=1e-10)
    assert mem.metrics["val_acc"] > 0.8
    assert abs(st.metrics["val_acc"] - mem.metrics["val_acc"]) <= 0.01
    assert len(st.history) == 3 and "val_acc" in st.history[-1]
    m = load_model(tmp_path / "st")
    assert m.meta["classes"] == labels and "x_mean" in m.extras


def test_streamed_regression_parquet_folder_matches_in_memory(tmp_path):
    X, y = _table(5000, 4, None, 2)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(4000), 3)):
        _parquet(folder / f"p{i}.parquet", X[part], y[part])
    _write_csv(tmp_path / "train.csv", X[:4000], y[:4000])
    val = _write_csv(tmp_path / "val.csv", X[4000:], y[4000:])
    common = dict(model="linreg", impl="concise", epochs=3, batch_size=32, lr=0.01, val_data=str(val))
    mem = _train(tmp_path, "mem", data=str(tmp_path / "train.csv"), **common)
    st = _train(tmp_path, "st", data=str(folder), stream=True, chunk_rows=400, **common)
    assert st.data.info["train_rows"] == 4000
    assert abs(st.metrics["val_rmse"] - mem.metrics["val_rmse"]) <= 0.02 * mem.metrics["val_rmse"]
    assert st.metrics["val_rmse"] < 0.35  # the noise is 0.3


def test_validation_rows_by_index_in_each_file(tmp_path):
    X, y = _table(3000, 3, None, 7)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(3000), 3)):
        _parquet(folder / f"p{i}.parquet", X[part], y[part])
    st = _train(tmp_path, "st", model="linreg", impl="scratch", data=str(folder), stream=True, epochs=1,
                batch_size=32, lr=0.01, val_fraction=0.25)
    assert st.data.info["train_rows"] == 3 * 750  # a quarter of each file's rows, picked by row index
    val = np.concatenate([part[is_val_row(np.arange(len(part)), 0.25)]
                          for part in np.array_split(np.arange(3000), 3)])
    assert len(val) == 750
    m = load_model(tmp_path / "st")  # weights in standardized units; the scalers are stored beside them
    pred = ((X[val] - m.extras["x_mean"].numpy()) / m.extras["x_std"].numpy()) @ m.weight.double().numpy().T
    pred = (pred + m.bias.double().numpy()) * m.extras["y_std"].numpy() + m.extras["y_mean"].numpy()
    rmse = float(np.sqrt(((pred[:, 0] - y[val]) ** 2).mean()))
    assert st.metrics["val_rmse"] == pytest.approx(rmse, rel=1e-5)


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    X, y = _table(1500, 4, 3, 3)
    data = _write_csv(tmp_path / "t.csv", X, y, ["a", "b", "c"])
    common = dict(impl="scratch", data=str(data), stream=True, chunk_rows=200, shuffle_buffer=500, epochs=4,
                  batch_size=32)
    full = _train(tmp_path, "full", **common)

    def killer(msg):
        if msg.startswith("epoch 3"):  # after epoch 3's line, before its checkpoint
            raise KeyboardInterrupt

    cfg = TrainConfig.create("softmax", target="y", progress=False, checkpoint_every=1, **common)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "cut", log=killer, write_figures=False)
    ckpt = load_checkpoint(tmp_path / "cut.partial")  # an interrupted run waits in its staging folder
    assert ckpt["epoch"] == 2 and ckpt["stream"]["epoch"] == 2
    resumed = train_run(cfg, tmp_path / "cut", resume=True, log=lambda _m: None, write_figures=False)
    assert torch.equal(resumed.model.weight, full.model.weight) and torch.equal(resumed.model.bias, full.model.bias)


def test_file_that_disappears_mid_training_names_it_and_keeps_the_checkpoint(tmp_path):
    X, y = _table(2000, 3, None, 4)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(2000), 2)):
        _write_csv(folder / f"p{i}.csv", X[part], y[part])

    def remover(msg):
        if msg.startswith("epoch 1"):
            (folder / "p1.csv").unlink()

    cfg = TrainConfig.create("linreg", impl="concise", data=str(folder), target="y", stream=True, epochs=3,
                             progress=False, checkpoint_every=1, val_fraction=0.0)
    with pytest.raises(DataError, match=r"p1\.csv: file not found") as info:
        train_run(cfg, tmp_path / "run", log=remover, write_figures=False)
    assert info.value.exit_code == 2 and "--resume" in str(info.value)
    assert load_checkpoint(tmp_path / "run.partial")["epoch"] == 1 and not (tmp_path / "run").exists()


def test_cli_bad_row_far_into_the_file(cli, tmp_path):
    X, y = _table(3000, 3, 2, 5)
    path = _write_csv(tmp_path / "t.csv", X, y, ["no", "yes"])
    lines = path.read_text().splitlines()
    lines[2500] = lines[2500].replace(",", ",oops,", 1)
    path.write_text("\n".join(lines) + "\n")
    code, out, err = cli("train", "softmax", "--data", path, "--target", "y", "--stream", "--chunk-rows", "200",
                         "--out", tmp_path / "r", "--no-progress")
    assert code == 2
    assert err.strip().count("\n") == 0 and "t.csv" in err and "line 2501" in err and "Traceback" not in err


def test_cli_new_label_in_a_later_chunk_of_the_validation_data(cli, tmp_path):
    X, y = _table(2000, 3, 2, 6)
    train = _write_csv(tmp_path / "t.csv", X[:1500], y[:1500], ["no", "yes"])
    val = _write_csv(tmp_path / "v.csv", X[1500:], y[1500:], ["no", "yes"])
    lines = val.read_text().splitlines()
    lines[400] = lines[400].rsplit(",", 1)[0] + ",maybe"
    val.write_text("\n".join(lines) + "\n")
    code, out, err = cli("train", "softmax", "--data", train, "--val-data", val, "--target", "y", "--stream",
                         "--chunk-rows", "100", "--epochs", "2", "--checkpoint-every", "1", "--out", tmp_path / "r",
                         "--no-progress")
    assert code == 2
    assert "v.csv: line 401" in err and "'maybe'" in err and err.strip().count("\n") == 0


def test_config_checks():
    with pytest.raises(ValueError, match="shuffle-buffer applies to --stream"):
        TrainConfig.create("softmax", data="x.csv", target="y", shuffle_buffer=10)
    with pytest.raises(ValueError, match="--stream trains from a file"):
        TrainConfig.create("softmax", stream=True)
    assert TrainConfig.create("softmax", data="x.csv", val_data="v.csv").resolved_val_fraction == 0.0
    with pytest.raises(ConfigError, match="--val-data replaces the rows --val-fraction would hold out"):
        TrainConfig.create("softmax", data="x.csv", val_data="v.csv", val_fraction=0.1)  # rows held out for nothing
    assert TrainConfig.create("softmax", data="x.csv", val_data="v.csv", val_fraction=0.0).val_fraction == 0.0
    with pytest.raises(ValueError, match="checkpoint-rows applies to --stream"):
        TrainConfig.create("softmax", data="x.csv", target="y", checkpoint_rows=1000)
    with pytest.raises(ValueError, match="checkpoint-rows must be a positive"):
        TrainConfig.create("softmax", data="x.csv", target="y", stream=True, checkpoint_rows=0)


def test_checkpoints_inside_an_epoch_are_refused_under_torchrun():
    from linearnet.errors import ConfigError
    from linearnet.scale.sgd_stream import prepare_stream

    cfg = TrainConfig.create("softmax", data="x.csv", target="y", stream=True, checkpoint_rows=1000)
    with pytest.raises(ConfigError, match="under torchrun checkpoints are taken between epochs"):
        prepare_stream(cfg, {"rank": 0, "world_size": 2, "device": "cpu"}, 256)


def _inside_epoch(path):
    """The (epoch, rows trained on) of a checkpoint taken inside an epoch, else None (or unreadable yet)."""
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as fh:
            stream = json.loads(fh.metadata().get("stream", "null")) or {}
    except Exception:  # a file replaced under us: try again at the next poll
        return None
    inside = stream.get("inside")
    return (stream["epoch"], inside["tally"].get("n", 0)) if inside else None


def _cut_after(tmp_path, monkeypatch, common: dict, enough) -> tuple[TrainConfig, list]:
    """Train ``common`` into tmp_path/cut, killed (KeyboardInterrupt) right after the checkpoint that makes
    ``enough(written)`` true is on disk; returns the config and each checkpoint's ``_inside_epoch``."""
    import linearnet.training.run as run_module

    real, written = run_module.save_checkpoint, []

    def save_then_die(*args, **kw):
        path = real(*args, **kw)
        written.append(_inside_epoch(path))
        if enough(written):
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(run_module, "save_checkpoint", save_then_die)
    cfg = TrainConfig.create(common.pop("model", "softmax"), target="y", progress=False, checkpoint_every=1, **common)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "cut", log=lambda _m: None, write_figures=False)
    monkeypatch.setattr(run_module, "save_checkpoint", real)
    return cfg, written


@pytest.mark.parametrize("impl", ["analytic", "concise"])
def test_checkpoint_inside_an_epoch_then_resume_equals_uninterrupted(tmp_path, monkeypatch, impl):
    X, y = _table(3000, 4, 3, 11)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(3000), 3)):
        _write_csv(folder / f"p{i}.csv", X[part], y[part], ["a", "b", "c"])
    common = dict(impl=impl, data=str(folder), stream=True, chunk_rows=150, shuffle_buffer=400, epochs=3,
                  batch_size=32, checkpoint_rows=700)
    full = _train(tmp_path, "full", **common)
    # killed right after the 4th checkpoint inside an epoch is on disk
    cfg, written = _cut_after(tmp_path, monkeypatch, common, lambda w: sum(x is not None for x in w) == 4)
    ckpt = load_checkpoint(tmp_path / "cut.partial")
    epoch, rows = written[-1]
    assert ckpt["epoch"] == 1 and epoch == 2 and 0 < rows < 2700  # inside the 2nd epoch, after epoch 1's
    assert "stream.pool_X" in ckpt["stream_tensors"]  # the shuffle buffer's rows travel with it
    said = []
    resumed = train_run(cfg, tmp_path / "cut", resume=True, log=said.append, write_figures=False)
    assert f"inside epoch 2 after {rows} rows" in said[0]
    assert torch.equal(resumed.model.weight, full.model.weight) and torch.equal(resumed.model.bias, full.model.bias)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    assert [r["train_acc"] for r in resumed.history] == [r["train_acc"] for r in full.history]


def test_checkpoints_inside_an_epoch_while_the_default_buffer_is_still_filling(tmp_path, monkeypatch):
    # a file smaller than the default shuffle buffer (4 chunks): no batch leaves the buffer before the
    # file ends, and --checkpoint-rows must still checkpoint at chunk ends (it silently did not)
    X, y = _table(3000, 4, 3, 12)
    data = _write_csv(tmp_path / "d.csv", X, y, ["a", "b", "c"])
    common = dict(impl="analytic", data=str(data), stream=True, chunk_rows=500, epochs=2, checkpoint_rows=500)
    full = _train(tmp_path, "full", **common)
    assert full.data.info["shuffle_buffer"] == 2000  # 4 chunks of --chunk-rows, as the README says
    # killed at the 2nd checkpoint inside epoch 2, before a single batch of it left the buffer
    cfg, inside = _cut_after(tmp_path, monkeypatch, common,
                             lambda w: len([x for x in w if x is not None and x[0] == 2]) == 2)
    assert inside[-1] == (2, 0)  # no row trained on yet in epoch 2: they are all in the saved buffer
    resumed = train_run(cfg, tmp_path / "cut", resume=True, log=lambda _m: None, write_figures=False)
    assert torch.equal(resumed.model.weight, full.model.weight) and torch.equal(resumed.model.bias, full.model.bias)


def test_sigkill_inside_an_epoch_then_resume_is_bit_identical(tmp_path, cli):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import find_checkpoint

    X, y = _table(12000, 4, 3, 12)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(12000), 3)):
        _write_csv(folder / f"p{i}.csv", X[part], y[part], ["a", "b", "c"])
    train = ["train", "softmax", "--data", str(folder), "--target", "y", "--stream", "--chunk-rows", "250",
             "--shuffle-buffer", "600", "--checkpoint-rows", "1000", "--epochs", "3", "--batch-size", "16",
             "--checkpoint-every", "1", "--no-progress"]
    assert cli(*train, "--out", tmp_path / "ref")[0] == 0
    ref = load_model(tmp_path / "ref")
    inside = 0
    for trial, (epoch, delay) in enumerate([(2, 0.0), (3, 0.02)]):
        run = tmp_path / f"run{trial}"
        proc = subprocess.Popen([sys.executable, "-m", "linearnet", *train, "--out", str(run)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline, seen = time.time() + 120, None
        while proc.poll() is None and time.time() < deadline:
            ckpt = find_checkpoint(run)
            seen = _inside_epoch(ckpt) if ckpt is not None else None
            if seen is not None and seen[0] >= epoch:
                break
            time.sleep(0.005)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert seen is not None and seen[0] >= epoch, "the run ended before a checkpoint inside the epoch"
        code, out, err = cli("train", "softmax", "--resume", run, "--no-progress")
        assert code == 0, err
        inside += "inside epoch" in out
        got = load_model(run)
        assert torch.equal(got.weight, ref.weight) and torch.equal(got.bias, ref.bias), f"trial {trial}"
        assert not list(tmp_path.glob(f"run{trial}*/*.tmp"))
    assert inside >= 1  # at least one kill really landed inside an epoch and was resumed from there


def test_cli_evaluate_scores_the_rows_a_streamed_run_held_out(cli, tmp_path):
    import json

    # without --data, evaluate uses the run's own validation rows: picked by row index (streamed) or the
    # --val-data table, as training reported them
    X, y = _table(3000, 3, 3, 5)
    data = _write_csv(tmp_path / "d.csv", X, y, labels=["cat", "dog", "eel"])
    Xr, yr = _table(3000, 3, None, 6)
    reg = _write_csv(tmp_path / "r.csv", Xr, yr)
    val = _write_csv(tmp_path / "v.csv", *_table(800, 3, 3, 7), labels=["cat", "dog", "eel"])
    runs = {"soft": ["softmax", "--data", data, "--stream", "--impl", "analytic"],
            "reg": ["linreg", "--data", reg, "--stream", "--impl", "analytic"],
            "closed": ["linreg", "--data", reg, "--impl", "closed-form", "--chunk-rows", "700"],
            "valdata": ["softmax", "--data", data, "--stream", "--val-data", val, "--impl", "analytic"]}
    for name, (model, *args) in runs.items():
        assert cli("train", model, *args, "--target", "y", "--out", tmp_path / name, "--no-progress",
                   "--epochs", "2")[0] == 0, name
        code, out, err = cli("evaluate", tmp_path / name)
        assert code == 0, (name, err)
        result, metrics = json.loads(out), json.loads((tmp_path / name / "metrics.json").read_text())
        assert result["split"] == "validation", name
        if model == "softmax":
            assert result["accuracy"] == pytest.approx(metrics["val_acc"], abs=1e-9), name
            assert result["rows"] == (800 if name == "valdata" else int(is_val_row(np.arange(3000), 0.2).sum()))
        else:
            assert result["rmse"] == pytest.approx(metrics["val_rmse"], rel=1e-6), name
            assert result["rows"] == int(is_val_row(np.arange(3000), 0.2).sum())


def _leaving(chunk_sizes, cap, seed):
    """The rows each ``ShuffleBuffer.add`` lets out, chunks numbered consecutively from 0."""
    from linearnet.scale.sgd_stream import ShuffleBuffer

    buf = ShuffleBuffer(cap, torch.Generator().manual_seed(seed))
    out, start = [], 0
    for n in chunk_sizes:
        ids = torch.arange(start, start + n)
        start += n
        left = buf.add(ids[:, None].double(), ids)
        out.append(None if left is None else left[1].tolist())
        assert torch.equal(left[0][:, 0].long(), left[1]) if left is not None else True  # X and y stay paired
        assert len(buf) <= cap
    return out, buf


def test_shuffle_buffer_lets_out_a_uniform_sample_in_random_order():
    # cap 4, chunks of 2: the third chunk makes 6 rows, 2 of which leave; the fourth chunk's rows go into
    # the slots freed, and again 2 of the 6 rows held leave. Every row held must be equally likely.
    trials = 3000
    third, fourth, first_out = np.zeros(6), np.zeros(8), np.zeros(6)
    for seed in range(trials):
        out, _ = _leaving([2, 2, 2, 2], 4, seed)
        assert out[0] is None and out[1] is None and len(out[2]) == len(out[3]) == 2
        assert not set(out[2]) & set(out[3])  # a row leaves once
        third[out[2]] += 1
        first_out[out[2][0]] += 1
        fourth[out[3]] += 1
    assert np.allclose(third / trials, 1 / 3, atol=0.04)
    assert np.allclose(first_out / trials, 1 / 6, atol=0.03)  # the order of the rows leaving is random too
    # after the third chunk 4 of rows 0-5 are held (each with probability 2/3), with rows 6 and 7 beside
    # them; 2 of these 6 leave: rows 0-5 with probability 2/3 * 1/3, the new rows with 1/3
    assert np.allclose(fourth[:6] / trials, 2 / 9, atol=0.04)
    assert np.allclose(fourth[6:] / trials, 1 / 3, atol=0.04)


def test_shuffle_buffer_with_uneven_chunks_lets_every_row_out_once():
    sizes = [5, 1, 7, 0, 3, 10, 2, 9, 4]
    out, buf = _leaving(sizes, 6, 0)
    rest = buf.drain()
    seen = [r for o in out if o for r in o] + rest[1].tolist()
    assert sorted(seen) == list(range(sum(sizes)))
    assert len(buf) == 0 and buf.drain() is None


def test_a_streamed_run_steps_on_one_torch_thread_unless_told_and_restores_the_count(tmp_path):
    X, y = _table(600, 3, None, 4)
    data = _write_csv(tmp_path / "t.csv", X, y)
    outside = torch.get_num_threads()
    seen: list[int] = []
    try:
        torch.set_num_threads(3)  # a count neither run asks for
        for name, threads, want in (("default", None, 1), ("two", 2, 2)):
            cfg = TrainConfig.create("linreg", data=str(data), target="y", stream=True, epochs=1, progress=False,
                                     threads=threads)
            train_run(cfg, tmp_path / name, log=lambda _m: seen.append(torch.get_num_threads()),
                      write_figures=False)
            assert seen and set(seen) == {want}
            seen.clear()
            assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(outside)
    assert TrainConfig.create("linreg", data=str(data), target="y").resolved_threads is None  # in memory: torch's
    with pytest.raises(ConfigError, match="--threads must be a positive integer"):
        TrainConfig.create("linreg", threads=0)


def test_a_converged_run_resumed_inside_its_first_epoch_is_not_called_diverged(tmp_path, monkeypatch):
    # Nearly noiseless data: by the kill the model fits almost exactly, while the epoch's mean still holds
    # the first rows' large losses. The blow-up rule must judge by the starting parameters' loss (saved
    # with the checkpoint), not by the resumed, converged model's.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20000, 5))
    data = _write_csv(tmp_path / "clean.csv", X, X @ rng.normal(size=5) + 1 + rng.normal(0, 1e-4, 20000))
    common = dict(model="linreg", impl="scratch", data=str(data), stream=True, chunk_rows=500, shuffle_buffer=1000,
                  epochs=1, batch_size=32, lr=0.03, checkpoint_rows=3000, val_fraction=0.0)
    full = _train(tmp_path, "full", **common)
    cfg, written = _cut_after(tmp_path, monkeypatch, dict(common), lambda w: sum(x is not None for x in w) == 5)
    ckpt = load_checkpoint(tmp_path / "cut.partial")
    assert written[-1][0] == 1 and ckpt["start_loss"] > 0.1  # inside epoch 1; the standardized start
    resumed = train_run(cfg, tmp_path / "cut", resume=True, log=lambda _m: None, write_figures=False)
    assert torch.equal(resumed.model.weight, full.model.weight)
    assert resumed.history[0]["train_loss"] == full.history[0]["train_loss"]
    # the resumed run judged by, and passed on, the same starting loss
    start = ckpt["start_loss"]
    assert load_checkpoint(resumed.run_dir)["start_loss"] == start == load_checkpoint(full.run_dir)["start_loss"]
