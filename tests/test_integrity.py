"""Model and checkpoint files carry a SHA-256 of their tensors; altered bytes are refused (issue 14, item 7)."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from linearnet import TrainConfig, train_run
from linearnet.errors import ModelFileError
from linearnet.persist import DIGEST_KEY, ModelFile, load_model, parse_model_bytes, save_model
from linearnet.training.checkpoint import CHECKPOINT_NAME, load_checkpoint


def _model() -> ModelFile:
    g = torch.Generator().manual_seed(0)
    return ModelFile("softmax", torch.randn(3, 4, generator=g), torch.randn(3, generator=g),
                     {"classes": ["a", "b", "c"]}, {"x_mean": torch.zeros(4), "x_std": torch.ones(4)})


def _tensor_span(raw: bytes, name: str) -> tuple[int, int]:
    """Absolute byte range of tensor ``name`` in a safetensors file."""
    n = int.from_bytes(raw[:8], "little")
    start, end = json.loads(raw[8:8 + n])[name]["data_offsets"]
    return 8 + n + start, 8 + n + end


def _flip_low_bit(raw: bytes, name: str, element: int) -> bytes:
    """Flip the lowest mantissa bit of one float32 element: the value changes by one ulp, still finite."""
    start, end = _tensor_span(raw, name)
    pos = start + 4 * (element % ((end - start) // 4))
    out = bytearray(raw)
    out[pos] ^= 1  # little-endian: the first byte holds the lowest mantissa bits
    return bytes(out)


def test_model_file_records_the_digest_and_round_trips(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(path, _model())
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert len(json.loads(raw[8:8 + n])["__metadata__"][DIGEST_KEY]) == 64
    assert torch.equal(load_model(path).weight, _model().weight)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["weight", "bias", "x_mean", "x_std"]), st.integers(0, 100))
def test_a_flipped_low_bit_is_refused(tmp_path_factory, name, element):
    path = tmp_path_factory.mktemp("m") / "m.safetensors"
    save_model(path, _model())
    bad = _flip_low_bit(path.read_bytes(), name, element)
    from safetensors.torch import load

    assert torch.isfinite(load(bad)[name]).all()  # the damage is invisible to the shape/finiteness checks
    with pytest.raises(ModelFileError, match="SHA-256"):
        parse_model_bytes(bad, "m.safetensors")


def test_older_model_files_without_a_digest_still_load(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "old.safetensors"
    save_file({"weight": torch.ones(1, 2), "bias": torch.zeros(1)}, str(path),
              metadata={"format_version": "1", "kind": "linreg", "meta": "{}"})
    assert torch.equal(load_model(path).weight, torch.ones(1, 2))


def _checkpointed_run(tmp_path):
    cfg = TrainConfig.create("linreg", epochs=2, checkpoint_every=1, progress=False)
    return train_run(cfg, tmp_path / "run", log=lambda s: None, write_figures=False)


def test_checkpoint_with_a_flipped_bit_is_refused_and_an_older_one_loads(tmp_path):
    run = _checkpointed_run(tmp_path).run_dir
    path = run / CHECKPOINT_NAME
    raw = path.read_bytes()
    assert load_checkpoint(run)["epoch"] == 2
    path.write_bytes(_flip_low_bit(raw, "param.w", 0))
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_checkpoint(run)
    # the same checkpoint written before digests existed: no digest, still loads
    from safetensors.torch import load, save_file

    n = int.from_bytes(raw[:8], "little")
    meta = json.loads(raw[8:8 + n])["__metadata__"]
    del meta[DIGEST_KEY]
    save_file(load(raw), str(path), metadata=meta)
    assert load_checkpoint(run)["epoch"] == 2


def test_cli_refuses_a_corrupt_model_with_one_sentence(cli, tmp_path):
    run = _checkpointed_run(tmp_path).run_dir
    path = run / "model.safetensors"
    path.write_bytes(_flip_low_bit(path.read_bytes(), "weight", 1))
    code, out, err = cli("evaluate", run)
    assert code == 2 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and "SHA-256" in err and str(path) in err
