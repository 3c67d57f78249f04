"""The English edition's d2l 1.0 object-oriented API for its two linear chapters (``Module``, ``Trainer``, ...).

Where the book's own code later replaces a method (``add_to_class``) the behaviour here is the book's;
speed lives in the parts it leaves to the library: data served from in-memory tensors in whole
batches (no per-sample ``DataLoader``), and a :class:`ProgressBoard` whose ``draw`` only collects
points and renders at most every ``render_every`` seconds, updating its lines instead of re-plotting.
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
import weakref
from collections import OrderedDict, namedtuple

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from ..data import fashion_mnist as _fm
from . import figures
from . import tensors as _t
from .common import fashion_mnist_data, show_images, use_svg_display

# The book prints ``float(l2_penalty(model.w))`` of a parameter; torch now warns about it on stderr.
warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")

__all__ = ["add_to_class", "HyperParameters", "ProgressBoard", "Module", "DataModule", "Trainer",
           "SyntheticRegressionData", "LinearRegressionScratch", "SGD", "LinearRegression", "FashionMNIST",
           "Classifier", "SoftmaxRegression"]


def add_to_class(Class):
    """Decorator: attach the decorated function to ``Class`` under its own name (the book's way of
    writing a class across several cells)."""
    def wrapper(obj):
        setattr(Class, obj.__name__, obj)
    return wrapper


class HyperParameters:
    """Base class whose ``save_hyperparameters`` turns the calling ``__init__``'s arguments into attributes."""

    def save_hyperparameters(self, ignore=[]):  # noqa: B006 - the book's signature
        """Store the caller's arguments (all but ``self``, ``ignore`` and ``_``-names) as attributes and
        in ``self.hparams``."""
        frame = inspect.currentframe().f_back
        _, _, _, local_vars = inspect.getargvalues(frame)
        skip = set(ignore) | {"self"}
        self.hparams = {k: v for k, v in local_vars.items() if k not in skip and not k.startswith("_")}
        for k, v in self.hparams.items():
            setattr(self, k, v)


# ----- the progress board ---------------------------------------------------------------------------------
_pending: weakref.WeakSet = weakref.WeakSet()  # boards with points not yet rendered
_hooked: list[bool] = []


def flush_boards() -> None:
    """Render every board's last points (after a Jupyter cell, at exit, when ``fit`` returns)."""
    for board in list(_pending):
        board.flush()


def _hook_flush() -> None:
    if _hooked:
        return
    _hooked.append(True)
    if figures.JUPYTER:
        from IPython import get_ipython

        get_ipython().events.register("post_run_cell", lambda *_args: flush_boards())
    else:
        figures.at_exit(flush_boards)


class ProgressBoard(HyperParameters):
    """Plots points as they come, averaging each ``every_n`` of one line into one point (as the book's).

    Unlike the book's, ``draw`` costs microseconds: it collects points and renders at most every
    ``render_every`` seconds (and once more when training ends), updating each line in place. The
    figure is shown in place in Jupyter, else written to its numbered PNG under ``d2l.figure_dir``.
    """

    render_every = 1.0  # least seconds between two renders while points keep coming

    def __init__(self, xlabel=None, ylabel=None, xlim=None, ylim=None, xscale="linear", yscale="linear",
                 ls=["-", "--", "-.", ":"], colors=["C0", "C1", "C2", "C3"], fig=None,  # noqa: B006
                 axes=None, figsize=(3.5, 2.5), display=True):
        self.save_hyperparameters()

    def draw(self, x, y, label, every_n=1):
        """Add point (x, y) to line ``label``; each ``every_n`` points become one plotted point, their mean."""
        if not hasattr(self, "raw_points"):
            self.raw_points, self.data = OrderedDict(), OrderedDict()
            self._next_render = time.perf_counter() + self.render_every  # a short run renders once, at its end
        if label not in self.raw_points:
            self.raw_points[label], self.data[label] = [], []
        points = self.raw_points[label]
        points.append((x, y.detach() if torch.is_tensor(y) else y))
        if len(points) != every_n:
            return
        n = len(points)
        self.data[label].append(Point(float(sum(p[0] for p in points)) / n, float(sum(p[1] for p in points)) / n))
        points.clear()
        if not self.display:
            return
        _pending.add(self)
        _hook_flush()
        if time.perf_counter() >= self._next_render:
            self.flush()

    def flush(self) -> None:
        """Render the lines now if points were added since the last render."""
        if self not in _pending:
            return
        _pending.discard(self)
        start = time.perf_counter()
        use_svg_display()
        if self.fig is None:
            self.fig = self.axes.figure if self.axes is not None else Figure(figsize=self.figsize)
        ax = self.axes if self.axes is not None else (self.fig.axes[0] if self.fig.axes else self.fig.add_subplot())
        lines = self.__dict__.setdefault("_lines", {})
        for i, (label, pts) in enumerate(self.data.items()):
            if label not in lines:
                lines[label] = ax.plot([], [], linestyle=self.ls[i % len(self.ls)],
                                       color=self.colors[i % len(self.colors)])[0]
            lines[label].set_data([p.x for p in pts], [p.y for p in pts])
        ax.set_xscale(self.xscale)
        ax.set_yscale(self.yscale)
        ax.relim()
        ax.autoscale_view()
        if self.xlim:
            ax.set_xlim(self.xlim)
        if self.ylim:
            ax.set_ylim(self.ylim)
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        ax.legend(list(lines.values()), list(lines))
        if "_live" not in self.__dict__:
            self._live = figures.LiveDisplay(self.fig, "board")
        self._live.update()
        # the next render waits render_every seconds, and long enough that rendering stays under ~10%
        cost = time.perf_counter() - start
        self._next_render = time.perf_counter() + max(self.render_every, 9 * cost)


Point = namedtuple("Point", ["x", "y"])


# ----- models, data, training ---------------------------------------------------------------------------
class Module(nn.Module, HyperParameters):
    """Base class of the book's models: a network, its loss, its optimizer, and what to plot."""

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        super().__init__()
        self.save_hyperparameters()
        self.board = ProgressBoard()

    def loss(self, y_hat, y):
        raise NotImplementedError("define loss(self, y_hat, y) in your Module subclass")

    def forward(self, X):
        if not hasattr(self, "net"):
            raise AttributeError("Module.forward runs self.net: set self.net in __init__ or define forward")
        return self.net(X)

    def plot(self, key, value, train):
        """Plot ``value`` as line ``train_<key>`` / ``val_<key>`` against the epoch (fractional for training)."""
        if not hasattr(self, "trainer"):
            raise AttributeError("Module.plot needs a trainer: call it from Trainer.fit")
        self.board.xlabel = "epoch"
        if train:
            x = self.trainer.train_batch_idx / self.trainer.num_train_batches
            n = self.trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x = self.trainer.epoch + 1
            n = self.trainer.num_val_batches / self.plot_valid_per_epoch
        self.board.draw(x, value, ("train_" if train else "val_") + key, every_n=int(n))

    def training_step(self, batch):
        l = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", l, train=True)
        return l

    def validation_step(self, batch):
        l = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", l, train=False)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def apply_init(self, inputs, init=None):
        """Run one forward pass (materializing lazy layers), then apply ``init`` to ``self.net``."""
        self.forward(*inputs)
        if init is not None:
            self.net.apply(init)


class TensorLoader:
    """Minibatches of in-memory tensors, as ``DataLoader(TensorDataset(*tensors), batch_size, shuffle)``
    yields them (lists, a new order from torch's global generator each pass), taken in whole batches.
    ``transform`` converts the first tensor per batch (uint8 images to float)."""

    def __init__(self, tensors, batch_size, shuffle=False, transform=None):
        self.tensors, self.batch_size, self.shuffle, self.transform = tuple(tensors), batch_size, shuffle, transform

    def __len__(self):
        return -(-len(self.tensors[0]) // self.batch_size)

    def __iter__(self):
        n = len(self.tensors[0])
        order = torch.randperm(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                batch = [t[start:start + self.batch_size] for t in self.tensors]
            else:
                idx = order[start:start + self.batch_size]
                batch = [t.index_select(0, idx) for t in self.tensors]
            if self.transform is not None:
                batch[0] = self.transform(batch[0])
            yield batch


class DataModule(HyperParameters):
    """Base class of the book's data: ``train_dataloader`` and ``val_dataloader`` via ``get_dataloader``.

    ``num_workers`` (used by the book's own ``DataLoader`` code) is capped at the number of CPUs, beyond
    which torch warns that the loader may freeze.
    """

    def __init__(self, root="../data", num_workers=4):
        self.save_hyperparameters()
        self.num_workers = min(num_workers, os.cpu_count() or 1)

    def get_dataloader(self, train):
        raise NotImplementedError("define get_dataloader(self, train) in your DataModule subclass")

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)

    def get_tensorloader(self, tensors, train, indices=slice(0, None)):
        """Minibatches of ``tensor[indices]`` for each tensor, shuffled when ``train``."""
        return TensorLoader(tuple(a[indices] for a in tensors), self.batch_size, shuffle=train)


class Trainer(HyperParameters):
    """Fits a Module to a DataModule: ``max_epochs`` passes, validation after each."""

    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0):
        self.save_hyperparameters()
        self.gpus = [_t.gpu(i) for i in range(min(num_gpus, _t.num_gpus()))]

    def prepare_data(self, data):
        self.train_dataloader = data.train_dataloader()
        self.val_dataloader = data.val_dataloader()
        self.num_train_batches = len(self.train_dataloader)
        self.num_val_batches = len(self.val_dataloader) if self.val_dataloader is not None else 0

    def prepare_model(self, model):
        model.trainer = self
        model.board.xlim = [0, self.max_epochs]
        if self.gpus:
            model.to(self.gpus[0])
        self.model = model

    def fit(self, model, data):
        self.prepare_data(data)
        self.prepare_model(model)
        self.optim = model.configure_optimizers()
        self.epoch = 0
        self.train_batch_idx = 0
        self.val_batch_idx = 0
        try:
            for self.epoch in range(self.max_epochs):  # noqa: B020 - the book's loop
                self.fit_epoch()
        finally:
            board = getattr(model, "board", None)
            if isinstance(board, ProgressBoard):
                board.flush()  # the figure is complete when fit returns

    def fit_epoch(self):
        self.model.train()
        for batch in self.train_dataloader:
            loss = self.model.training_step(self.prepare_batch(batch))
            self.optim.zero_grad()
            with torch.no_grad():
                loss.backward()
                if self.gradient_clip_val > 0:
                    self.clip_gradients(self.gradient_clip_val, self.model)
                self.optim.step()
            self.train_batch_idx += 1
        if self.val_dataloader is None:
            return
        self.model.eval()
        for batch in self.val_dataloader:
            with torch.no_grad():
                self.model.validation_step(self.prepare_batch(batch))
            self.val_batch_idx += 1

    def prepare_batch(self, batch):
        if self.gpus:
            batch = [a.to(self.gpus[0]) for a in batch]
        return batch

    def clip_gradients(self, grad_clip_val, model):
        """Scale all gradients down so that their joint L2 norm is at most ``grad_clip_val``."""
        params = [p for p in model.parameters() if p.requires_grad]
        norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
        if norm > grad_clip_val:
            for param in params:
                param.grad[:] *= grad_clip_val / norm


# ----- linear regression ----------------------------------------------------------------------------------
class SyntheticRegressionData(DataModule):
    """y = Xw + b + noise with standard normal X; the first ``num_train`` rows train, the rest validate."""

    def __init__(self, w, b, noise=0.01, num_train=1000, num_val=1000, batch_size=32):
        super().__init__()
        self.save_hyperparameters()
        n = num_train + num_val
        self.X = torch.randn(n, len(w))
        noise = torch.randn(n, 1) * noise
        self.y = torch.matmul(self.X, w.reshape((-1, 1))) + b + noise

    def get_dataloader(self, train):
        i = slice(0, self.num_train) if train else slice(self.num_train, None)
        return self.get_tensorloader((self.X, self.y), train, i)


class LinearRegressionScratch(Module):
    """Linear regression with explicit ``w`` and ``b``, half squared loss averaged, the book's SGD."""

    def __init__(self, num_inputs, lr, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.w = torch.normal(0, sigma, (num_inputs, 1), requires_grad=True)
        self.b = torch.zeros(1, requires_grad=True)

    def forward(self, X):
        return torch.matmul(X, self.w) + self.b

    def loss(self, y_hat, y):
        return ((y_hat - y) ** 2 / 2).mean()

    def configure_optimizers(self):
        return SGD([self.w, self.b], self.lr)


class SGD(HyperParameters):
    """Minibatch stochastic gradient descent on a list of tensors (the loss is already averaged)."""

    def __init__(self, params, lr):
        self.save_hyperparameters()

    def step(self):
        for param in self.params:
            param -= self.lr * param.grad

    def zero_grad(self):
        for param in self.params:
            if param.grad is not None:
                param.grad.zero_()


class LinearRegression(Module):
    """Linear regression with a lazy ``nn.Linear(1)``, ``MSELoss`` and ``torch.optim.SGD``."""

    def __init__(self, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.LazyLinear(1)
        self.net.weight.data.normal_(0, 0.01)
        self.net.bias.data.fill_(0)

    def forward(self, X):
        return self.net(X)

    def loss(self, y_hat, y):
        return nn.MSELoss()(y_hat, y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), self.lr)

    def get_w_b(self):
        return (self.net.weight.data, self.net.bias.data)


# ----- classification -------------------------------------------------------------------------------------
def _size(resize) -> tuple[int, int]:
    return (resize, resize) if isinstance(resize, int) else tuple(resize)


class ImageSet(torch.utils.data.Dataset):
    """One split as the book's dataset serves it: item i is ``((1, H, W) float32 in [0, 1], int label)``.

    Images are kept as uint8 (resized once, in bulk, and rounded as resizing a PIL image does), so
    items and whole batches are cheap; it works with a ``DataLoader`` and its worker processes.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, resize=(28, 28)) -> None:
        size = _size(resize)
        if tuple(images.shape[-2:]) != size:
            chunks = [F.interpolate(c.unsqueeze(1).float(), size=size, mode="bilinear", antialias=True,
                                    align_corners=False).round_().clamp_(0, 255).to(torch.uint8).squeeze(1)
                      for c in images.split(10000)]
            images = torch.cat(chunks)
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i].unsqueeze(0).to(torch.float32).mul_(1.0 / 255.0), int(self.labels[i])


def _batch_to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, H, W) -> float32 (B, 1, H, W) in [0, 1], as ``ToTensor`` gives them."""
    return images.unsqueeze(1).to(torch.float32).mul_(1.0 / 255.0)


class FashionMNIST(DataModule):
    """Fashion-MNIST from linearnet's verified in-memory copy (no torchvision, no download into ``root``).

    ``train`` and ``val`` are indexable datasets; ``get_dataloader`` serves shuffled whole batches of
    ``(B, 1, H, W)`` float32 and ``(B,)`` int64 straight from memory (``num_workers`` is not needed).
    """

    def __init__(self, batch_size=64, resize=(28, 28)):
        super().__init__()
        self.save_hyperparameters()
        ds = fashion_mnist_data()
        self.train = ImageSet(ds.train_images, ds.train_labels, resize)
        self.val = ImageSet(ds.test_images, ds.test_labels, resize)

    def text_labels(self, indices):
        """Class indices -> text labels."""
        return [_fm.TEXT_LABELS[int(i)] for i in indices]

    def get_dataloader(self, train):
        data = self.train if train else self.val
        return TensorLoader((data.images, data.labels), self.batch_size, shuffle=train,
                            transform=_batch_to_float)

    def visualize(self, batch, nrows=1, ncols=8, labels=[]):  # noqa: B006 - the book's signature
        X, y = batch
        if not labels:
            labels = self.text_labels(y)
        show_images(X.squeeze(1), nrows, ncols, titles=labels)


class Classifier(Module):
    """A Module that also plots validation accuracy; cross-entropy loss on logits."""

    def validation_step(self, batch):
        Y_hat = self(*batch[:-1])
        self.plot("loss", self.loss(Y_hat, batch[-1]), train=False)
        self.plot("acc", self.accuracy(Y_hat, batch[-1]), train=False)

    def accuracy(self, Y_hat, Y, averaged=True):
        """Fraction (or per-example 0/1 when not ``averaged``) of argmax predictions equal to ``Y``."""
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        preds = Y_hat.argmax(axis=1).type(Y.dtype)
        compare = (preds == Y.reshape(-1)).type(torch.float32)
        return compare.mean() if averaged else compare

    def loss(self, Y_hat, Y, averaged=True):
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        Y = Y.reshape((-1,))
        return F.cross_entropy(Y_hat, Y, reduction="mean" if averaged else "none")

    def layer_summary(self, X_shape):
        """Print each layer's output shape for an input of ``X_shape``."""
        X = torch.randn(*X_shape)
        for layer in self.net:
            X = layer(X)
            print(layer.__class__.__name__, "output shape:\t", X.shape)


class SoftmaxRegression(Classifier):
    """Softmax regression: flatten, then a lazy linear layer of ``num_outputs`` logits."""

    def __init__(self, num_outputs, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_outputs))

    def forward(self, X):
        return self.net(X)
