"""Figures off the critical path: a throttled live view, final figures drawn concurrently (issue 14, item 2)."""

from __future__ import annotations

import os

import pytest
import torch

from linearnet import TrainConfig, train_run
from linearnet.evaluation import plots
from linearnet.evaluation.live import LiveFigure


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_live_figure_redraws_at_most_once_per_interval_and_always_at_the_end(tmp_path):
    clock, built = _Clock(), []

    def make():
        built.append(clock.now)
        return plots.line_figure([0.0, 1.0], [[1.0, 0.5]])

    live = LiveFigure(tmp_path / "curves.png", announce=None, min_interval=1.0, clock=clock)
    for epoch in range(1, 11):  # ten epochs, 0.3 s apart
        clock.now = 0.3 * epoch
        live.show(make, final=epoch == 10)
    # created at 0.0: drawn at 1.2 (the first epoch 1 s after creation), 2.4 (1.2 s later), and the final 3.0
    assert [round(t, 1) for t in built] == [1.2, 2.4, 3.0]
    assert live.drew_final and (tmp_path / "curves.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_concurrent_figures_are_byte_identical_to_serial_ones(tmp_path):
    g = torch.Generator().manual_seed(0)
    names = [f"class {i}" for i in range(10)]
    history = [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5 + e / 30, "test_acc": 0.5 + e / 40}
               for e in range(1, 11)]
    images = torch.randint(0, 256, (9, 28, 28), dtype=torch.uint8, generator=g)
    makers = {
        "curves.png": lambda: plots.history_figure(history, ["train_loss", "train_acc", "test_acc"]),
        "confusion.png": lambda: plots.confusion_figure(torch.randint(0, 500, (10, 10), generator=g), names),
        "weights.png": lambda: plots.weights_figure(torch.linspace(-1, 1, 7840).reshape(10, 784), names, 28),
        "predictions.png": lambda: plots.predictions_figure(images, names[:9], names[1:]),
        "normal.png": lambda: plots.normal_figure(),
    }
    g.manual_seed(1)
    plots.save_figures({tmp_path / "serial" / k: f for k, f in makers.items()}, parallel=False)
    for round_ in range(3):  # a race would show as differing bytes in one of the rounds
        g.manual_seed(1)
        plots.save_figures({tmp_path / f"parallel{round_}" / k: f for k, f in makers.items()})
        for name in makers:
            serial = (tmp_path / "serial" / name).read_bytes()
            assert serial.startswith(b"\x89PNG\r\n\x1a\n")
            assert (tmp_path / f"parallel{round_}" / name).read_bytes() == serial, name
        assert sorted(p.name for p in (tmp_path / f"parallel{round_}").iterdir()) == sorted(makers)  # no .tmp


def _pid_figure(log):
    """A figure whose maker notes which process built it (a child cannot tell its parent otherwise)."""
    def make():
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return plots.line_figure([0.0, 1.0], [[1.0, 0.5]])
    return make


def test_figures_are_drawn_by_two_processes_when_two_cores_are_there(tmp_path):
    log = tmp_path / "pids.txt"
    plots.save_figures({tmp_path / f"f{i}.png": _pid_figure(log) for i in range(4)})
    pids = log.read_text().split()
    assert len(pids) == 4 and str(os.getpid()) in pids
    assert len(set(pids)) == (2 if plots._can_fork() else 1)  # CI and the dev machines have 2 cores: forked
    assert all((tmp_path / f"f{i}.png").read_bytes().startswith(b"\x89PNG") for i in range(4))


def test_a_figure_failing_in_the_child_fails_as_it_would_serially(tmp_path):
    def bad():
        raise ValueError("no such class")

    jobs = {tmp_path / "good.png": _pid_figure(tmp_path / "pids.txt"), tmp_path / "bad.png": bad}
    with pytest.raises(ValueError, match="no such class"):  # the second figure is the child's share
        plots.save_figures(jobs)
    assert (tmp_path / "good.png").exists() and not (tmp_path / "bad.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_run_folder_curves_show_the_final_history(tmp_path):
    from linearnet.training.run import _history_figure

    cfg = TrainConfig.create("linreg", epochs=4, progress=False)
    r = train_run(cfg, tmp_path / "run", log=lambda s: None)
    plots.save_figure(_history_figure(r.history, r.data), tmp_path / "expected.png")
    assert (r.run_dir / "loss.png").read_bytes() == (tmp_path / "expected.png").read_bytes()
    r = train_run(cfg.replace(epochs=0), tmp_path / "zero", log=lambda s: None)
    assert not (r.run_dir / "loss.png").exists()


def test_live_plot_announcement_names_where_the_figure_ends_up(tmp_path):
    said, clock = [], _Clock()
    live = LiveFigure(tmp_path / "run.partial" / "curves.png", announce=said.append, clock=clock)
    clock.now = 2.0
    live.show(lambda: plots.line_figure([0.0, 1.0], [[1.0, 0.5]]))
    assert said == [f"live plot: {tmp_path / 'run.partial' / 'curves.png'} while the run trains, then "
                     f"{tmp_path / 'run' / 'curves.png'} (redrawn at most every 1 s)"]


def test_history_figure_ticks_whole_epochs_only():
    history = [{"epoch": e, "train_loss": 1 / e} for e in range(1, 4)]
    ax = plots.history_figure(history, ["train_loss"]).axes[0]
    assert all(float(t).is_integer() for t in ax.get_xticks())


def test_confusion_counts_are_readable_and_fit_their_cells():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    cm = torch.tensor([[9999, 0, 12], [7, 1000, 3], [0, 45, 8888]])
    fig = plots.confusion_figure(cm, ["t-shirt", "trouser", "ankle boot"])
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    counts = [t for t in ax.texts if t.get_text().isdigit()]
    assert len(counts) == 9 and all(t.get_fontsize() >= 9 for t in counts)  # were 6 pt: unreadable
    cell = ax.transData.transform((1, 0))[0] - ax.transData.transform((0, 0))[0]
    assert all(t.get_window_extent(renderer).width < 0.8 * cell for t in counts)


@pytest.mark.parametrize("standardize", [True, False])
def test_a_csv_run_says_its_loss_is_on_the_standardized_target(tmp_path, house_csv, standardize):
    from linearnet.training.run import _history_figure

    cfg = TrainConfig.create("linreg", data=str(house_csv), target="price", epochs=2, progress=False,
                             standardize=standardize, lr=0.03 if standardize else 1e-9)
    r = train_run(cfg, tmp_path / "run", log=lambda s: None)
    label = _history_figure(r.history, r.data).axes[0].get_ylabel()
    assert label == ("loss (on the standardized target)" if standardize else "loss")
