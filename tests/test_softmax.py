"""Softmax regression: stable scratch pieces vs torch, scratch vs concise, real data, CSV classification."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from linearnet import TrainConfig, train_run
from linearnet.data import Batches
from linearnet.evaluation import metrics as M
from linearnet.models import build_learner, build_net, distribution_cross_entropy, entropy, scratch, surprisal


def _logits():
    torch.manual_seed(0)
    o = torch.randn(6, 5) * 3
    o[0] = torch.tensor([1000.0, -1000.0, 0.0, 999.0, 1000.0])
    o[1] = torch.tensor([-1000.0, -1000.0, -1000.0, -999.0, -1000.0])
    return o


def test_softmax_log_softmax_cross_entropy_match_torch_even_at_1000():
    o = _logits()
    y = torch.tensor([1, 0, 2, 3, 4, 0])
    p = scratch.softmax(o)
    assert torch.allclose(p, torch.softmax(o, 1), atol=1e-6)
    assert torch.allclose(p.sum(1), torch.ones(6), atol=1e-6)
    assert torch.allclose(scratch.log_softmax(o), torch.log_softmax(o, 1), atol=1e-6)
    ce = scratch.cross_entropy(o, y)
    assert torch.isfinite(ce).all() and float(ce[0]) == pytest.approx(2000 + np.log(2 + np.exp(-1)), rel=1e-6)
    assert torch.allclose(ce, F.cross_entropy(o, y, reduction="none"), atol=1e-6)


def test_cross_entropy_accepts_soft_labels_and_matches_chapter_example():
    # the chapter: y_hat = [[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]], y = [0, 2] -> [2.3026, 0.6931]
    probs = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    ce = scratch.cross_entropy(torch.log(probs), torch.tensor([0, 2]))
    assert torch.allclose(ce, torch.tensor([2.3026, 0.6931]), atol=1e-4)
    soft = torch.tensor([[0.1, 0.2, 0.7], [0.0, 0.0, 1.0]])
    o = torch.randn(2, 3)
    assert torch.allclose(scratch.cross_entropy(o, soft), F.cross_entropy(o, soft, reduction="none"), atol=1e-6)
    assert torch.allclose(scratch.cross_entropy(o, scratch.one_hot(torch.tensor([0, 2]), 3)),
                          scratch.cross_entropy(o, torch.tensor([0, 2])), atol=1e-6)


def test_gradient_of_cross_entropy_is_softmax_minus_y():
    o = torch.randn(4, 10, requires_grad=True)
    y = torch.tensor([3, 0, 9, 3])
    scratch.cross_entropy(o, y).sum().backward()
    assert torch.allclose(o.grad, scratch.softmax(o.detach()) - scratch.one_hot(y, 10), atol=1e-6)


def test_information_theory():
    p = torch.tensor([0.5, 0.25, 0.25])
    assert float(entropy(p)) == pytest.approx(1.5 * np.log(2))
    assert float(entropy(torch.tensor([1.0, 0.0]))) == 0.0
    assert torch.allclose(surprisal(p), -torch.log(p))
    q = torch.tensor([0.1, 0.2, 0.7])
    assert float(distribution_cross_entropy(p, p)) == pytest.approx(float(entropy(p)))
    assert float(distribution_cross_entropy(p, q)) > float(entropy(p))  # Gibbs' inequality


def test_accuracy_count_and_confusion_matrix():
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    y = torch.tensor([0, 2])
    assert M.accuracy_count(y_hat, y) == 1.0 and M.accuracy(y_hat, y) == 0.5
    cm = M.confusion_matrix(torch.tensor([0, 2, 2, 1]), torch.tensor([0, 2, 1, 1]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert M.per_class_accuracy(cm).tolist() == [1.0, 0.5, 1.0]


def test_scratch_and_concise_give_same_parameters_after_an_epoch(fmnist):
    from linearnet.data import fashion_mnist as fm

    results = []
    for impl in ("scratch", "concise"):
        net = build_net("softmax", impl, 784, 10, seed=0)
        learner = build_learner(net, "softmax", impl, 0.1)
        for X, y in fm.batches(fmnist, "train", 256, seed=4):
            learner.train_step(X, y)
        results.append(net.export())
    assert torch.allclose(results[0][0], results[1][0], atol=1e-5)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-5)


@pytest.mark.parametrize("impl", ["scratch", "concise"])
def test_one_epoch_on_real_data_and_pictures(impl, tmp_path, fmnist):
    cfg = TrainConfig.create("softmax", impl=impl, epochs=1, progress=False)
    r = train_run(cfg, tmp_path / impl, log=lambda s: None)
    assert r.metrics["test_acc"] > 0.75
    m = json.loads((tmp_path / impl / "metrics.json").read_text())
    assert m["train_seconds"] > 0 and m["load_seconds"] > 0 and len(m["confusion_matrix"]) == 10
    from PIL import Image

    for name in ("curves.png", "predictions.png", "confusion.png", "weights.png"):
        with Image.open(tmp_path / impl / name) as im:
            assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 100, name


def _separable_csv(path, n=300, labels=("cat", "dog", "eel")):
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [6, 0], [0, 6]])
    k = rng.integers(0, 3, n)
    X = centers[k] + rng.normal(0, 0.7, (n, 2))
    lines = ["f1,f2,animal"] + [f"{a:.3f},{b:.3f},{labels[c]}" for (a, b), c in zip(X, k)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_classification_with_string_labels(cli, tmp_path):
    csv_path = _separable_csv(tmp_path / "animals.csv")
    code, out, err = cli("train", "softmax", "--data", csv_path, "--target", "animal", "--epochs", "20",
                         "--batch-size", "16", "--out", tmp_path / "run", "--no-progress")
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val_acc"] > 0.95
    new = tmp_path / "new.csv"
    new.write_text("f1,f2\n6,0\n0,6\n0,0\n")
    code, out, err = cli("predict", tmp_path / "run", "--data", new)
    assert code == 0 and out.split() == ["prediction", "dog", "eel", "cat"]
    bad = tmp_path / "bad.csv"
    bad.write_text("f1,f2,animal\n1,1,cat\n2,2,yak\n")
    code, out, err = cli("evaluate", tmp_path / "run", "--data", bad)
    assert code == 2 and "'yak'" in err and "not seen in training" in err


def test_options_schedule_weight_decay_validation_split(tmp_path):
    cfg = TrainConfig.create("softmax", epochs=3, lr_schedule="cosine", weight_decay=1e-4, val_fraction=0.1,
                             normalize=True, progress=False, batch_size=512)
    r = train_run(cfg, tmp_path / "opt", log=lambda s: None)
    lrs = [rec["lr"] for rec in r.history]
    assert lrs[0] == 0.1 and lrs[1] < lrs[0] and lrs[2] < lrs[1]
    assert "val_acc" in r.history[0] and r.history[-1]["test_acc"] > 0.8
    assert r.data.info["val_rows"] == 6000


def test_evaluation_batches_do_not_shuffle(fmnist):
    b = Batches(torch.arange(10), torch.arange(10), 4)
    assert torch.cat([x for x, _ in b]).tolist() == list(range(10))


@pytest.mark.parametrize("impl", ["scratch", "concise", "analytic"])
def test_epoch_accuracy_counts_every_batch_including_the_tail(impl):
    # the loop counts correct predictions 64 batches at a time: 143 batches = two full groups + a tail
    from linearnet.training.loop import run_epoch

    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(1000, 6, generator=g), torch.randint(0, 4, (1000,), generator=g)
    net = build_net("softmax", impl, 6, 4, seed=1)
    stats = run_epoch(build_learner(net, "softmax", impl, 0.1), Batches(X, y, 7), train=False, classify=True)
    with torch.no_grad():
        expected = int((net(X).argmax(1) == y).sum())
    assert 100 < expected < 900 and stats["n"] == 1000
    assert stats["acc"] == expected / 1000
