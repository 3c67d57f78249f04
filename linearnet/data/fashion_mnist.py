"""Fashion-MNIST: find the IDX files, verify their bytes, decode once, serve fast batches.

Sources, in order: an explicit directory (``root``), ``env_dir`` (the CLI passes
``$LINEARNET_DATA``), the user cache, Debian's ``dataset-fashion-mnist`` package, and finally a
verified download into the cache. An explicit source is authoritative: used, or refused with the
reason; an implicit one that fails verification is reported and the next one tried. Every source
is checked against the SHA-256 of the official
*decompressed* files (Debian recompressed its ``.gz`` files, so compressed hashes would not match);
a small stamp file remembers verified (path, size, mtime) so the hash is paid once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils import data

from ..errors import DataError
from ..io import atomic_path, write_json
from .batches import Batches
from .idx import parse_idx, read_bytes

TEXT_LABELS = ["t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot"]

# name -> (sha256 of the decompressed IDX bytes, decompressed size)
OFFICIAL_FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte": ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
    "train-labels-idx1-ubyte": ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
    "t10k-images-idx3-ubyte": ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
    "t10k-labels-idx1-ubyte": ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
}
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
           "https://storage.googleapis.com/tensorflow/tf-keras-datasets/")
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_EXPLICIT = {"root": "the data folder given", "LINEARNET_DATA": "from LINEARNET_DATA"}
_SOURCE_NAMES = {"root": "--data-dir", "LINEARNET_DATA": "LINEARNET_DATA"}
STAMP_NAME = "verified.json"


def get_fashion_mnist_labels(labels: Sequence[int] | torch.Tensor) -> list[str]:
    """Class indices -> the chapter's text labels."""
    return [TEXT_LABELS[int(i)] for i in labels]


def default_cache_dir() -> Path:
    """The per-user cache folder for the data set (``platformdirs`` user cache)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("linearnet")) / "fashion-mnist"


@dataclass
class FashionMNIST:
    """Both splits decoded once: uint8 images (N, 28, 28) and int64 labels (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str = ""
    load_seconds: float = 0.0
    looked: list[str] = field(default_factory=list)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name == "train":
            return self.train_images, self.train_labels
        if name == "test":
            return self.test_images, self.test_labels
        raise ValueError(f"unknown split {name!r}; use 'train' or 'test'")


# ----- verification -------------------------------------------------------------------------------
class _Stamps:
    """Remembers which (path, size, mtime) were verified, in a JSON file in the cache."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / STAMP_NAME
        try:
            self.entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    @staticmethod
    def key(path: Path) -> str:
        st = path.stat()
        return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"

    def verified(self, path: Path, sha: str) -> bool:
        return self.entries.get(self.key(path)) == sha

    def remember(self, path: Path, sha: str) -> None:
        self.entries[self.key(path)] = sha
        try:
            write_json(self.path, self.entries)
        except OSError:
            pass  # a read-only cache only costs a re-hash next time


def _locate(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _load_verified(directory: Path, files: dict[str, tuple[str, int]], stamps: _Stamps
                   ) -> dict[str, np.ndarray]:
    """Decode and verify all files in ``directory``; DataError names the first bad file and its fault."""
    arrays = {}
    for name, (sha, size) in files.items():
        path = _locate(directory, name)
        if path is None:
            raise DataError(f"{directory / name}[.gz] is missing")
        raw = read_bytes(path, max_bytes=size + 1)
        verified = stamps.verified(path, sha)
        if not verified and len(raw) < size:
            raise DataError(f"{path} is truncated ({len(raw)} of {size} bytes)")
        if not verified and len(raw) > size:
            raise DataError(f"{path} is longer than the official file ({len(raw)} > {size} bytes)")
        arrays[name] = parse_idx(raw, str(path))  # names a bad magic number or an impossible shape
        if not verified:
            if hashlib.sha256(raw).hexdigest() != sha:
                raise DataError(f"{path} has the wrong SHA-256 (not the official Fashion-MNIST file)")
            stamps.remember(path, sha)
    _check_consistent(arrays, directory)
    return arrays


def _has_any(directory: Path, files: dict[str, tuple[str, int]]) -> bool:
    """True when ``directory`` holds at least one of the files (so a failure there is worth a word)."""
    return any(_locate(directory, name) is not None for name in files)


def _check_consistent(arrays: dict[str, np.ndarray], where: Path | str) -> None:
    for images, labels in SPLITS.values():
        if images not in arrays:
            continue
        x, y = arrays[images], arrays[labels]
        if x.ndim != 3 or y.ndim != 1:
            raise DataError(f"{where}: {images} must be 3-D and {labels} 1-D (got {x.shape}, {y.shape})")
        if len(x) != len(y):
            raise DataError(f"{where}: {len(x)} images but {len(y)} labels in {images}/{labels}")
        if y.size and (int(y.min()) < 0 or int(y.max()) > 9):
            raise DataError(f"{where}: labels outside 0-9 in {labels}")


# ----- download -----------------------------------------------------------------------------------
def download(dest: Path, mirrors: Sequence[str] = MIRRORS,
             files: dict[str, tuple[str, int]] | None = None, progress: bool = True,
             log: Callable[[str], None] = print) -> Path:
    """Download every missing file from the first mirror that serves it with the right hash.

    Uses ``pooch`` (temporary file, progress bar) and verifies the decompressed bytes; a failing or
    wrong-hash mirror is reported and the next tried; nothing unverified is left in ``dest``.
    """
    import pooch

    files = OFFICIAL_FILES if files is None else files
    dest.mkdir(parents=True, exist_ok=True)
    for name, (sha, size) in files.items():
        if _locate(dest, name) is not None:
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{name}.gz"
            with tempfile.TemporaryDirectory(dir=dest, prefix=".download-") as tmp:
                try:
                    got = pooch.retrieve(url, known_hash=None, fname=f"{name}.gz", path=tmp,
                                         progressbar=progress)
                    raw = read_bytes(Path(got), max_bytes=size + 1)
                except Exception as exc:  # network errors come in many types; report and move on
                    errors.append(f"{url}: {type(exc).__name__}: {exc}".splitlines()[0])
                    log(f"mirror failed: {errors[-1]}")
                    continue
                if len(raw) != size or hashlib.sha256(raw).hexdigest() != sha:
                    errors.append(f"{url}: wrong SHA-256, refused")
                    log(f"mirror refused: {errors[-1]}")
                    continue
                with atomic_path(dest / name) as out:
                    out.write_bytes(raw)
                break
        else:
            raise DataError(f"could not download {name}: " + "; ".join(errors))
    return dest


# ----- loading ------------------------------------------------------------------------------------
def load_fashion_mnist(root: str | Path | None = None, env_dir: str | Path | None = None,
                       cache_dir: str | Path | None = None, system_dir: str | Path | None = SYSTEM_DIR,
                       allow_download: bool = True, mirrors: Sequence[str] = MIRRORS,
                       files: dict[str, tuple[str, int]] | None = None, progress: bool = True,
                       log: Callable[[str], None] = print) -> FashionMNIST:
    """Find, verify and decode Fashion-MNIST (see the module docstring for the search order).

    Raises
    ------
    DataError
        When no source works: the message names every place looked at and the three fixes.
    """
    start = time.perf_counter()
    files = OFFICIAL_FILES if files is None else files
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stamps = _Stamps(cache)
    # An explicit source (``root``, ``env_dir``) is authoritative: used, or refused with the reason.
    for label, given in (("root", root), ("LINEARNET_DATA", env_dir)):
        if given:
            directory = Path(given)
            if directory.exists() and not directory.is_dir():
                raise DataError(f"{directory} ({_EXPLICIT[label]}) is a file, not a folder; give the folder "
                                "that holds the four Fashion-MNIST IDX files.")
            try:
                arrays = _load_verified(directory, files, stamps)
            except DataError as exc:
                raise DataError(f"Fashion-MNIST in {directory} ({_EXPLICIT[label]}) is refused: "
                                f"{str(exc).rstrip('.')}; fix that folder or point to another one.") from None
            return _assemble(arrays, f"{_SOURCE_NAMES[label]} ({directory})", start, [])
    looked = []
    implicit = [("cache", cache)] + ([("debian package", Path(system_dir))] if system_dir is not None else [])
    for label, directory in implicit:
        try:
            arrays = _load_verified(directory, files, stamps)
        except DataError as exc:
            looked.append(f"{label} {directory}: {exc}")
            if _has_any(directory, files):  # a present but bad copy is news; an absent one is not
                log(f"Fashion-MNIST in the {label} {directory} failed verification, skipped: {exc}")
            continue
        return _assemble(arrays, f"{label} ({directory})", start, looked)
    if allow_download:
        try:
            download(cache, mirrors, files, progress=progress, log=log)
            arrays = _load_verified(cache, files, stamps)
            return _assemble(arrays, f"download ({cache})", start, looked)
        except DataError as exc:
            looked.append(f"download into {cache}: {exc}")
    raise DataError("Fashion-MNIST not found. Looked in: " + " | ".join(looked) + ". Fix: install Debian's "
                    "package (apt-get install dataset-fashion-mnist), allow the download (drop "
                    "--no-download, needs network), or pass --data-dir DIR holding the four IDX files.")


def _assemble(arrays: dict[str, np.ndarray], source: str, start: float, looked: list[str]) -> FashionMNIST:
    def t(name: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.from_numpy(np.array(arrays[name], copy=True)).to(dtype)

    tr_x, tr_y = SPLITS["train"]
    te_x, te_y = SPLITS["test"]
    return FashionMNIST(t(tr_x, torch.uint8), t(tr_y, torch.int64), t(te_x, torch.uint8), t(te_y, torch.int64),
                        source=source, load_seconds=time.perf_counter() - start, looked=looked)


# ----- batches --------------------------------------------------------------------------------------
class ImageTransform:
    """uint8 images (B, H, W) -> float32 (B, 1, R, R) in [0, 1], optionally resized and standardized.

    Resizing is bilinear with antialiasing, applied per batch; ``mean``/``std`` standardize pixels
    after scaling to [0, 1].
    """

    def __init__(self, resize: int | None = None, mean: float | None = None, std: float | None = None) -> None:
        self.resize, self.mean, self.std = resize, mean, std

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        X = X.unsqueeze(1).to(torch.float32).mul_(1.0 / 255.0)  # multiplying is ~2x faster than dividing
        if self.resize is not None and self.resize != X.shape[-1]:
            X = F.interpolate(X, size=(self.resize, self.resize), mode="bilinear", antialias=True,
                              align_corners=False)
        if self.mean is not None:
            X = X.sub_(self.mean).div_(self.std)
        return X

    def to_dict(self) -> dict:
        return {"resize": self.resize, "mean": self.mean, "std": self.std}


def pixel_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and std of pixel values scaled to [0, 1] (for ``--normalize``)."""
    x = images.to(torch.float64) / 255.0
    return float(x.mean()), float(x.std())


def batches(ds: FashionMNIST, split: str, batch_size: int, shuffle: bool | None = None, seed: int = 0,
            resize: int | None = None, normalize: tuple[float, float] | None = None, drop_last: bool = False,
            device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1) -> Batches:
    """Fast batches of one split: ``(B, 1, R, R)`` float32 and ``(B,)`` int64; train shuffled by default."""
    X, y = ds.split(split)
    mean, std = normalize if normalize else (None, None)
    return Batches(X, y, batch_size, shuffle=(split == "train") if shuffle is None else shuffle, seed=seed,
                   transform=ImageTransform(resize, mean, std), drop_last=drop_last, device=device,
                   rank=rank, world_size=world_size)


class FashionMNISTDataset(data.Dataset):
    """Per-sample ``Dataset`` (the chapter's framework path), for ``DataLoader`` users and comparisons.

    Each item is converted on access, as ``ToTensor`` does: ``(1, R, R)`` float32 in [0, 1] and an int label.
    """

    def __init__(self, ds: FashionMNIST, split: str = "train", resize: int | None = None) -> None:
        self.X, self.y = ds.split(split)
        self.transform = ImageTransform(resize)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.X[i:i + 1])[0], int(self.y[i])


def class_counts(labels: torch.Tensor) -> list[int]:
    """Examples per class, in class-index order."""
    return torch.bincount(labels, minlength=10).tolist()


def env_data_dir(environ: dict[str, str] | os._Environ) -> str | None:
    """The ``LINEARNET_DATA`` entry of an environment mapping (the CLI passes ``os.environ``)."""
    return environ.get("LINEARNET_DATA") or None
