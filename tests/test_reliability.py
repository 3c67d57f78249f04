"""Reliability: exact resume after SIGKILL, Ctrl-C, atomic writes, safe model files, fuzzed inputs."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linearnet import TrainConfig, train_run
from linearnet.data.idx import parse_idx
from linearnet.data.tabular import load_csv
from linearnet.errors import DataError, LinearNetError, ModelFileError
from linearnet.persist import FORMAT_VERSION, ModelFile, load_model, parse_model_bytes, save_model

TRAIN = ["train", "linreg", "--num-examples", "2000", "--epochs", "12", "--batch-size", "8",
         "--checkpoint-every", "1", "--no-progress", "--lr", "0.01"]
KILL_TRIALS = 20


def _reference(tmp_path_factory):
    from linearnet.cli.main import main

    d = tmp_path_factory.mktemp("ref") / "run"
    assert main([*TRAIN, "--out", str(d)]) == 0
    return load_model(d)


def test_sigkill_after_each_checkpoint_then_resume_is_bit_identical(tmp_path_factory, capsys):
    """Kill schedule keyed to the checkpoints on disk: trial i waits for the checkpoint of epoch 1 + i % 10,
    then SIGKILLs 0-90 ms later (mid-epoch, or while the next checkpoint is being written)."""
    import multiprocessing

    from conftest import checkpoint_epoch, find_checkpoint

    from linearnet.cli.main import main

    ref = _reference(tmp_path_factory)
    # a fork server that has imported linearnet but run nothing: each trial forks a ready process from it
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["linearnet.cli.main"])
    resumed_after = []
    for trial in range(KILL_TRIALS):
        run = tmp_path_factory.mktemp(f"kill{trial}") / "run"
        target, delay = 1 + trial % 10, (trial % 4) * 0.03
        proc = ctx.Process(target=main, args=([*TRAIN, "--out", str(run)],))
        proc.start()
        deadline = time.time() + 120
        while proc.is_alive() and time.time() < deadline:
            ckpt = find_checkpoint(run)
            if ckpt is not None and (checkpoint_epoch(ckpt) or 0) >= target:
                break
            time.sleep(0.005)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        ckpt = find_checkpoint(run)
        epoch_on_disk = checkpoint_epoch(ckpt) if ckpt is not None else None
        capsys.readouterr()
        assert main(["train", "linreg", "--resume", str(run), "--no-progress"]) == 0, f"trial {trial}"
        out = capsys.readouterr().out
        if proc.exitcode == -signal.SIGKILL and epoch_on_disk is not None and epoch_on_disk < 12:
            assert f"after epoch {epoch_on_disk}" in out, (trial, out)
            resumed_after.append(epoch_on_disk)
        got = load_model(run)
        assert torch.equal(got.weight, ref.weight) and torch.equal(got.bias, ref.bias), f"trial {trial}"
        assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
        assert sorted(p.name for p in run.parent.iterdir()) == ["run"]  # no staging folder left
    # most trials really were killed mid-run and resumed from a checkpoint, from early and late epochs
    assert len(resumed_after) >= 15, resumed_after
    assert min(resumed_after) <= 2 and max(resumed_after) >= 9, resumed_after


def test_resume_continues_with_more_epochs_like_one_long_run(tmp_path):
    cfg = TrainConfig.create("linreg", epochs=4, checkpoint_every=1, progress=False)
    full = train_run(cfg, tmp_path / "full", log=lambda s: None)
    short = train_run(cfg.replace(epochs=2), tmp_path / "short", log=lambda s: None)
    assert len(short.history) == 2
    resumed = train_run(cfg, tmp_path / "short", resume=True, log=lambda s: None)
    assert torch.equal(resumed.model.weight, full.model.weight)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]


def _default_sigint():
    # A shell running this suite in the background starts it with SIGINT ignored, and children inherit
    # that (Python then installs no KeyboardInterrupt handler); give the child a normal terminal's Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_keeps_checkpoint_exits_130_and_resumes_bit_identically(tmp_path, capsys):
    from conftest import checkpoint_epoch, find_checkpoint

    from linearnet.cli.main import main

    run = tmp_path / "run"
    # epochs of 10,000 steps (~0.5 s): the three after the first checkpoint outlast the 0.2 s wait below
    # even on a fast machine (with 2,000-step epochs the run could end before the signal came)
    train = ["train", "linreg", "--num-examples", "100000", "--epochs", "4", "--checkpoint-every", "1",
             "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "linearnet", *train, "--out", str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    deadline = time.time() + 120
    while find_checkpoint(run) is None and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    # Ctrl-C mid-epoch: right at the first checkpoint the process may be in a lazy import, where CPython
    # can swallow a KeyboardInterrupt raised in an import-lock callback ("Exception ignored in ... cb")
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"--resume {run}" in err and "Traceback" not in err
    assert not run.exists()  # an interrupted run is not put in place; it waits in run.partial
    epoch = checkpoint_epoch(find_checkpoint(run))
    assert 1 <= epoch < 4
    capsys.readouterr()
    assert main(["train", "linreg", "--resume", str(run), "--no-progress"]) == 0
    assert f"after epoch {epoch}" in capsys.readouterr().out
    assert main([*train, "--out", str(tmp_path / "ref")]) == 0
    got, ref = load_model(run), load_model(tmp_path / "ref")
    assert torch.equal(got.weight, ref.weight) and torch.equal(got.bias, ref.bias)


def test_full_disk_leaves_no_half_written_file(cli, tmp_path, monkeypatch):
    import linearnet.io as lio

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lio.os, "replace", no_space)
    code, _, err = cli("train", "linreg", "--out", tmp_path / "r", "--no-progress")
    assert code == 2 and "No space left" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # neither the run nor its staging folder is left


def test_pickle_files_are_refused_never_loaded(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(1, 2)}, path)
    with pytest.raises(ModelFileError, match="never unpickles"):
        load_model(path)
    disguised = tmp_path / "model.safetensors"
    disguised.write_bytes(path.read_bytes())
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(disguised)


def _model():
    return ModelFile("softmax", torch.zeros(3, 2), torch.zeros(3), {"classes": ["a", "b", "c"],
                                                                   "feature_names": ["x", "y"]})


def test_model_files_with_wrong_shapes_or_newer_versions_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_model(path, _model())
    assert load_model(path).meta["classes"] == ["a", "b", "c"]
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3, 2), "bias": torch.zeros(4)}, str(path),
              metadata={"format_version": "1", "kind": "softmax", "meta": "{}"})
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(path)
    save_file({"weight": torch.zeros(3, 2), "bias": torch.zeros(3)}, str(path),
              metadata={"format_version": str(FORMAT_VERSION + 1), "kind": "softmax", "meta": "{}"})
    with pytest.raises(ModelFileError, match="newer"):
        load_model(path)
    save_file({"weight": torch.zeros(3, 2), "bias": torch.zeros(3)}, str(path),
              metadata={"format_version": "1", "kind": "softmax", "meta": '{"classes": ["a"]}'})
    with pytest.raises(ModelFileError, match="1 class labels for 3 outputs"):
        load_model(path)
    # found by the structured model-file strategy: a number where the class list belongs was a TypeError
    save_file({"weight": torch.zeros(3, 2), "bias": torch.zeros(3)}, str(path),
              metadata={"format_version": "1", "kind": "softmax", "meta": '{"classes": 3}'})
    with pytest.raises(ModelFileError, match="classes must be a list"):
        load_model(path)


def test_cli_refuses_pickle_model(cli, tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x80\x04\x95junk")
    code, _, err = cli("predict", tmp_path, "--data", tmp_path / "x.csv")
    assert code == 2 and "pickle" in err


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 0x0F), st.lists(st.integers(0, 2**32 - 1), max_size=4))
def test_idx_parser_fuzz_structured_headers(body, code, dims):
    data = bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + body
    try:
        parse_idx(data)
    except DataError:
        pass


# ----- structure-aware strategies: most examples are well-formed enough to reach the deeper checks -----
IDX_SIZES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def _mostly(valid, other, one_in: int = 8):
    """``valid`` most of the time, ``other`` about once in ``one_in`` draws (a middle value: hypothesis favours
    the ends of a range)."""
    return st.integers(0, one_in - 1).flatmap(lambda i: other if i == one_in // 2 else valid)


def _tally(outcomes):
    return {k: outcomes.count(k) for k in set(outcomes)}


@st.composite
def idx_files(draw):
    """IDX files with mostly valid magic, type code and dimensions, and a body mostly of the declared size."""
    magic = draw(_mostly(st.just(b"\0\0"), st.binary(min_size=2, max_size=2)))
    code = draw(_mostly(st.sampled_from(sorted(IDX_SIZES)), st.integers(0, 255)))
    dims = draw(st.lists(st.integers(0, 5), max_size=4))
    size = IDX_SIZES.get(code, 1) * math.prod(dims) + draw(_mostly(st.just(0), st.integers(-3, 3)))
    body = draw(st.binary(min_size=max(size, 0), max_size=max(size, 0)))
    return magic + bytes([code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + body


def test_idx_parser_on_structured_files():
    outcomes = []

    @FUZZ
    @given(idx_files())
    def check(data):
        try:
            arr = parse_idx(data)
        except DataError as exc:
            outcomes.append("magic/type" if "magic" in str(exc) or "type" in str(exc) else "size")
            return
        code, ndim = data[2], data[3]
        assert arr.shape == tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
        big = arr.astype(arr.dtype.newbyteorder(">")) if arr.dtype.itemsize > 1 else arr
        assert big.tobytes() == data[4 + 4 * ndim:] and arr.dtype.itemsize == IDX_SIZES[code]
        outcomes.append("parsed")

    check()
    assert outcomes.count("parsed") >= len(outcomes) // 2, _tally(outcomes)


NUMBER = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(-1e6, 1e6).map(repr))
JUNK = st.sampled_from(["", "abc", "nan", "inf", "-inf", "1e400", '"2"', "0x10"])


@st.composite
def csv_texts(draw):
    """A header naming the target 'y' (mostly), rows of numbers (mostly) with the header's field count."""
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "x1", "area m2"]), min_size=1, max_size=3, unique=True))
    if draw(_mostly(st.just(True), st.just(False))):
        names.insert(draw(st.integers(0, len(names))), "y")
    rows = []
    for _ in range(draw(_mostly(st.integers(5, 8), st.integers(0, 4)))):
        width = len(names) + draw(_mostly(st.just(0), st.sampled_from([-1, 1]), one_in=20))
        rows.append([draw(_mostly(NUMBER, JUNK, one_in=40)) for _ in range(max(width, 0))])
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join([",".join(names)] + [",".join(r) for r in rows]) + newline, names, rows


def test_csv_loader_on_structured_text(tmp_path):
    outcomes = []
    path = tmp_path / "f.csv"

    @FUZZ
    @given(csv_texts())
    def check(case):
        text, names, rows = case
        path.write_text(text)
        try:
            table = load_csv(path, target="y")
        except DataError as exc:
            outcomes.append("no target" if "no target column" in str(exc) else "rejected")
            return
        features = [n for n in names if n != "y"]
        assert table.feature_names == features
        expected = np.array([[float(r[names.index(n)].strip('"')) for n in features] for r in rows], dtype=np.float32)
        assert np.allclose(table.X.numpy(), expected, rtol=1e-6) and torch.isfinite(table.X).all()
        assert table.y.shape[0] == len(rows)
        outcomes.append("loaded")

    check()
    assert outcomes.count("no target") < len(outcomes) // 4, _tally(outcomes)
    assert outcomes.count("loaded") >= len(outcomes) // 4, _tally(outcomes)


@st.composite
def model_files(draw):
    """safetensors bytes: a JSON header of tensors (mostly fitting shapes and offsets) and linearnet metadata."""
    k, d = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    shapes = {"weight": [k, d], "bias": [k]}
    for extra in draw(st.lists(st.sampled_from(["x_mean", "x_std", "y_mean", "other"]), max_size=2, unique=True)):
        shapes[extra] = [d] if extra.startswith("x") else [1]
    if draw(_mostly(st.just(False), st.just(True))):
        shapes.pop(draw(st.sampled_from(sorted(shapes))))
    if draw(_mostly(st.just(False), st.just(True))):
        shapes[draw(st.sampled_from(sorted(shapes)))] = draw(st.lists(st.integers(0, 5), max_size=3))
    header, offset = {}, 0
    for name, shape in shapes.items():
        dtype = draw(_mostly(st.just("F32"), st.sampled_from(["F64", "I64", "F16", "U8", "BAD"])))
        size = {"F64": 8, "I64": 8, "F16": 2, "U8": 1}.get(dtype, 4) * math.prod(shape)
        end = offset + size + draw(_mostly(st.just(0), st.integers(-2, 2), one_in=16))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}
        offset = max(end, offset)
    meta = {"classes": [f"c{i}" for i in range(draw(_mostly(st.just(k), st.integers(0, 5))))],
            "feature_names": [f"f{i}" for i in range(d)]}
    header["__metadata__"] = {
        "format_version": draw(_mostly(st.just(str(FORMAT_VERSION)), st.sampled_from(["0", "99", "x", ""]))),
        "kind": draw(_mostly(st.sampled_from(["linreg", "softmax"]), st.text(max_size=5))),
        "meta": draw(_mostly(st.just(json.dumps(meta)), st.sampled_from(["{", "[]", "null", '{"classes": 3}']))),
    }
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    length = len(blob) + draw(_mostly(st.just(0), st.integers(-4, 4), one_in=16))
    return length.to_bytes(8, "little") + blob + draw(st.binary(min_size=offset, max_size=offset))


def test_model_loader_on_structured_files():
    outcomes = []

    @FUZZ
    @given(model_files())
    def check(raw):
        try:
            m = parse_model_bytes(raw)
        except ModelFileError as exc:
            msg = str(exc)
            outcomes.append("header" if "header" in msg or "too short" in msg else "rejected")
            return
        m.validate()
        assert m.weight.dim() == 2 and m.bias.shape == m.weight.shape[:1]
        outcomes.append("loaded")

    check()
    assert outcomes.count("header") < len(outcomes) // 4, _tally(outcomes)
    assert outcomes.count("loaded") >= len(outcomes) // 10, _tally(outcomes)


@FUZZ
@given(st.integers(0, 2000), st.binary(min_size=1, max_size=8))
def test_model_loader_fuzz_mutated_real_file(tmp_path_factory, pos, patch):
    path = tmp_path_factory.mktemp("m") / "m.safetensors"
    save_model(path, _model())
    raw = bytearray(path.read_bytes())
    pos %= len(raw)
    raw[pos:pos + len(patch)] = patch
    try:
        m = parse_model_bytes(bytes(raw))
    except ModelFileError:
        return
    m.validate()


def test_errors_are_one_family():
    for cls in (DataError, ModelFileError):
        assert issubclass(cls, LinearNetError)


def test_idx_zero_dimension_beside_huge_ones_is_a_data_error():
    # found by the atheris harness: count 0 matched the length, then numpy's reshape overflowed
    data = bytes([0, 0, 8, 3]) + (0).to_bytes(4, "big") + (2**32 - 1).to_bytes(4, "big") * 2
    with pytest.raises(DataError, match="impossible shape"):
        parse_idx(data)
    # the two crash inputs it saved, verbatim
    for found in ("00000803ffff5dff00000000f80300ff",
                  "00000d0d0000ff32ffff0a0a0a0ad8000000000000001ceb0affff32ffffffffffffffffffffffffffffffffffff"
                  "0a0a0affffffffff0000"):
        with pytest.raises(DataError, match="impossible shape"):
            parse_idx(bytes.fromhex(found))


def test_atheris_harness_runs_each_target(tmp_path):
    proc = subprocess.run([sys.executable, "fuzz/run.py", "all", "--seconds", "3"], capture_output=True, text=True,
                          timeout=300, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("fuzz ")]
    assert len(lines) == 3 and all("0 unexpected exceptions" in line for line in lines)
    assert all(int(line.split()[2]) > 100 for line in lines)
