"""torchrun on 127.0.0.1: data-parallel SGD equals one process, exact least squares across ranks, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from linearnet import TrainConfig, train_run
from linearnet.persist import load_model

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
LINREG = ["-m", "linearnet", "train", "linreg", "--num-examples", "20000", "--epochs", "6", "--batch-size", "100",
          "--lr", "0.01", "--checkpoint-every", "1", "--no-progress"]


def _env():
    env = dict(os.environ)
    env.update(GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1", OMP_NUM_THREADS="1")
    return env


def torchrun(*args, extra=(), timeout=300):
    proc = subprocess.run([*TORCHRUN, *extra, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def two_process_linreg(tmp_path_factory):
    run = tmp_path_factory.mktemp("ddp") / "run"
    out = torchrun(*LINREG, "--out", run)
    return run, out


def test_two_ranks_equal_one_process_and_only_rank_zero_reports(two_process_linreg, tmp_path):
    run, out = two_process_linreg
    assert out.count("epoch 1, loss") == 1 and out.count("run folder:") == 1  # rank 0 alone prints
    single = train_run(TrainConfig.create("linreg", num_examples=20000, epochs=6, batch_size=100, lr=0.01,
                                          progress=False), tmp_path / "one", log=lambda s: None)
    ddp = load_model(run)
    assert torch.allclose(ddp.weight, single.model.weight, atol=1e-5)
    assert torch.allclose(ddp.bias, single.model.bias, atol=1e-5)


def test_softmax_ranks_count_every_test_example_once(tmp_path, fmnist):
    run = tmp_path / "sm"
    torchrun("-m", "linearnet", "train", "softmax", "--epochs", "1", "--no-progress", "--out", run)
    single = train_run(TrainConfig.create("softmax", epochs=1, progress=False), tmp_path / "one",
                       log=lambda s: None, write_figures=False)
    ddp = load_model(run)
    assert torch.allclose(ddp.weight, single.model.weight, atol=1e-5)
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    assert abs(metrics["test_acc"] - single.metrics["test_acc"]) < 1e-3
    # test_acc is reduced across the ranks' shards; the confusion matrix is rank 0's pass over the whole
    # test set with the same model: they agree only if every test example was counted exactly once
    cm = torch.tensor(metrics["confusion_matrix"])
    assert int(cm.sum()) == 10000
    assert abs(metrics["test_acc"] - float(cm.trace()) / 10000) < 1.5e-4  # float32 argmax ties: 1 example


EVAL_SCRIPT = """
import json, sys, torch, torch.distributed as dist
from linearnet.data import Batches
from linearnet.models import build_learner, build_net
from linearnet.training.loop import run_epoch
if len(sys.argv) > 2:
    dist.init_process_group("gloo")
rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
g = torch.Generator().manual_seed(0)
X, y = torch.randn(1001, 3, generator=g), torch.randint(0, 4, (1001,), generator=g)
learner = build_learner(build_net("softmax", "scratch", 3, 4, seed=0), "softmax", "scratch", lr=0.1)
ev = run_epoch(learner, Batches(X, y, 100, rank=rank, world_size=world), train=False, classify=True)
if rank == 0:
    json.dump(ev, open(sys.argv[1], "w"))
if dist.is_initialized():
    dist.barrier()
    dist.destroy_process_group()
"""


def test_ranks_count_every_example_once(tmp_path):
    import json

    script = tmp_path / "ev.py"
    script.write_text(EVAL_SCRIPT)
    torchrun(script, tmp_path / "ddp.json", "dist")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "one.json")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ddp, one = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("ddp", "one"))
    assert ddp["n"] == one["n"] == 1001
    assert abs(ddp["loss"] - one["loss"]) < 1e-6 and abs(ddp["acc"] - one["acc"]) < 1e-12


def test_distributed_exact_least_squares(tmp_path, house_csv):
    run = tmp_path / "cf"
    torchrun("-m", "linearnet", "train", "linreg", "--impl", "closed-form", "--data", house_csv, "--target",
             "price", "--no-standardize", "--out", run)
    single = train_run(TrainConfig.create("linreg", impl="closed-form", data=str(house_csv), target="price",
                                          standardize=False, progress=False), tmp_path / "one", log=lambda s: None)
    ddp = load_model(run)
    rel = (ddp.weight.double() - single.model.weight.double()).abs().max() / single.model.weight.abs().max()
    assert float(rel) < 1e-6  # float32 model files; the float64 solutions agree to ~1e-12 (next test)


def test_streamed_least_squares_across_ranks(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30000, 4)) * [1, 50, 0.2, 7] + [0, 100, 0, -3]
    y = X @ np.array([1.0, -2.0, 30.0, 0.5]) + 2 + rng.normal(0, 0.1, 30000)
    np.save(tmp_path / "d.npy", np.hstack([X, y[:, None]]))
    script = tmp_path / "solve.py"
    script.write_text(
        "import sys, torch, torch.distributed as dist\n"
        "from linearnet.scale.streaming import solve_file\n"
        "dist.init_process_group('gloo')\n"
        "sol, names, n = solve_file(sys.argv[1], None, chunk_rows=1000, progress=False)\n"
        "if dist.get_rank() == 0:\n"
        "    torch.save({'w': sol.weight, 'b': sol.bias, 'n': n}, sys.argv[2])\n"
        "dist.destroy_process_group()\n")
    torchrun(script, tmp_path / "d.npy", tmp_path / "out.pt")
    got = torch.load(tmp_path / "out.pt")  # our own test output, not a user's model file
    from linearnet import least_squares

    ref = least_squares(torch.from_numpy(X), torch.from_numpy(y))
    assert got["n"] == 30000
    assert torch.allclose(got["w"], ref.weight, rtol=1e-8, atol=1e-12)
    assert torch.allclose(got["b"], ref.bias, rtol=1e-8)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def test_killed_rank_is_restarted_and_resumes_to_the_same_parameters(two_process_linreg, tmp_path):
    reference, _ = two_process_linreg
    run = tmp_path / "run"
    proc = subprocess.Popen([*TORCHRUN, "--max-restarts=1", *LINREG, "--out", str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.time() + 120
    while not (tmp_path / "run.partial" / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.005)  # kill soon after the first of 6 checkpoints, well before the run can finish
    workers = _children(proc.pid)
    assert len(workers) == 2, workers
    os.kill(max(workers), signal.SIGKILL)  # one rank dies mid-run
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "resuming" in out
    got, ref = load_model(run), load_model(reference)
    assert torch.equal(got.weight, ref.weight) and torch.equal(got.bias, ref.bias)


def test_streamed_sgd_two_ranks_read_disjoint_files_and_count_every_row_once(tmp_path):
    import json

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(8)
    X = rng.normal(size=(4000, 3))
    y = (X @ rng.normal(size=(3, 3)) + rng.gumbel(0, 0.3, (4000, 3))).argmax(1)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(3000), 3)):  # 3 files over 2 ranks: 2000 and 1000 rows
        pq.write_table(pa.table({"a": X[part, 0], "b": X[part, 1], "c": X[part, 2], "y": y[part]}),
                       folder / f"p{i}.parquet")
    val = tmp_path / "val.parquet"
    pq.write_table(pa.table({"a": X[3000:, 0], "b": X[3000:, 1], "c": X[3000:, 2], "y": y[3000:]}), val)
    run = tmp_path / "run"
    out = torchrun("-m", "linearnet", "train", "softmax", "--data", folder, "--target", "y", "--stream",
                   "--val-data", val, "--epochs", "2", "--batch-size", "64", "--no-progress", "--out", run)
    assert out.count("epoch 2,") == 1 and out.count("run folder:") == 1  # rank 0 alone prints and writes
    m = load_model(run)
    Z = (X[3000:] - m.extras["x_mean"].numpy()) / m.extras["x_std"].numpy()
    pred = (Z @ m.weight.double().numpy().T + m.bias.double().numpy()).argmax(1)
    acc = float((pred == y[3000:]).mean())
    metrics = json.loads((run / "metrics.json").read_text())
    # the last epoch's validation accuracy, reduced over the ranks, counts each of the 1000 rows once
    assert abs(metrics["val_acc"] - acc) < 1e-9 and sum(map(sum, metrics["confusion_matrix"])) == 1000
    # the statistics are merged over the ranks: those of all 3000 training rows
    assert np.allclose(m.extras["x_mean"].numpy(), X[:3000].mean(0), atol=1e-12)
    single = train_run(TrainConfig.create("softmax", data=str(folder), target="y", stream=True, val_data=str(val),
                                          epochs=2, batch_size=64, progress=False), tmp_path / "one",
                       log=lambda s: None, write_figures=False)
    assert abs(acc - single.metrics["val_acc"]) < 0.03  # other batches: each rank shuffles its own rows


_UNEVEN = """
import sys, torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from linearnet import TrainConfig
from linearnet.models import build_learner, build_net
from linearnet.models.analytic import DistributedAnalytic
from linearnet.training.loop import run_epoch
from linearnet.training.prepare import prepare
from linearnet.scale.sgd_stream import JoinedBatches
dist.init_process_group('gloo')
rank, world = dist.get_rank(), dist.get_world_size()
impl = sys.argv[2]
cfg = TrainConfig.create('softmax', impl=impl, data=sys.argv[1], target='y', stream=True, batch_size=64,
                         chunk_rows=100, shuffle_buffer=250, val_fraction=0.0, lr=0.5, progress=False)
data = prepare(cfg, rank=rank, world_size=world, log=lambda s: None)
module = build_net('softmax', impl, data.num_inputs, data.num_outputs, seed=0)
net = DistributedAnalytic(module) if impl == 'analytic' else DistributedDataParallel(module)
learner = build_learner(net, 'softmax', impl, 0.5)
seen = []
def recorded(batches):
    for X, y in batches:
        seen.append((X.clone(), y.clone()))
        yield X, y
class Source:
    def __iter__(self):
        return recorded(data.train)
source = Source() if impl == 'analytic' else JoinedBatches(Source(), net)
stats = run_epoch(learner, source, train=True, classify=True)
w, b = module.export()
torch.save({'batches': seen, 'w': w, 'b': b, 'n': stats['n']}, f'{sys.argv[3]}.{rank}')
del net, learner, source
from linearnet.cli.commands import shutdown_distributed
shutdown_distributed()  # as the CLI does: DDP freed before the process group, not at interpreter teardown
"""


@pytest.mark.parametrize("impl", ["analytic", "scratch"])
def test_uneven_ranks_train_on_every_row_once(tmp_path, impl):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from linearnet.models import build_learner, build_net

    rng = np.random.default_rng(9)
    n = 2100
    X = rng.normal(size=(n, 3))
    y = (X @ rng.normal(size=(3, 3)) + rng.gumbel(0, 0.3, (n, 3))).argmax(1)
    ids = np.arange(n, dtype=np.float64)  # a feature that names each row
    folder = tmp_path / "parts"
    folder.mkdir()
    # files p0, p1, p2 over 2 ranks: rank 0 reads p0 and p2 (1700 rows), rank 1 reads p1 (400 rows)
    for i, part in enumerate(np.split(np.arange(n), [1000, 1400])):
        pq.write_table(pa.table({"id": ids[part], "a": X[part, 0], "b": X[part, 1], "c": X[part, 2],
                                 "y": y[part]}), folder / f"p{i}.parquet")
    script = tmp_path / "uneven.py"
    script.write_text(_UNEVEN)
    torchrun(script, folder, impl, tmp_path / "out")
    got = [torch.load(f"{tmp_path / 'out'}.{r}") for r in range(2)]  # our own test output
    assert got[0]["n"] == got[1]["n"] == n  # the epoch's reduced row count
    rows = torch.cat([X[:, 0] for g in got for X, _ in g["batches"]])
    assert len(rows) == n and len(torch.unique(rows)) == n  # every row once, none dropped
    assert torch.equal(got[0]["w"], got[1]["w"]) and torch.equal(got[0]["b"], got[1]["b"])
    if impl != "analytic":
        return
    # one process stepping on the union of the ranks' k-th batches ends with the same parameters
    steps = [len(g["batches"]) for g in got]
    assert steps[0] == steps[1] == 1700 // 32 + 1  # the fuller rank's count; rank 1 pads with empty batches
    assert len(got[1]["batches"][-1][0]) == 0
    ref = build_learner(build_net("softmax", "analytic", 4, 3, seed=0), "softmax", "analytic", 0.5)
    for (Xa, ya), (Xb, yb) in zip(*(g["batches"] for g in got)):
        ref.train_step(torch.cat([Xa, Xb]), torch.cat([ya, yb]))
    w, b = ref.module.export()
    assert torch.allclose(w, got[0]["w"], atol=1e-5) and torch.allclose(b, got[0]["b"], atol=1e-5)
