"""Shared fixtures: the real Fashion-MNIST (installed by .ci/run), tiny IDX folders, CLI runner."""

from __future__ import annotations

import os

# scikit-learn runs its array-API estimator checks only with SciPy's array API switched on, which must
# happen before SciPy is first imported; without it those three checks are skipped, not passed.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import gzip  # noqa: E402
import hashlib
from pathlib import Path

import numpy as np
import pytest

from linearnet.cli.main import main
from linearnet.data import fashion_mnist as fm
from linearnet.data.idx import idx_bytes


@pytest.fixture(scope="session")
def fmnist():
    """The real data set, verified (a missing data set is a failure: CI installs it)."""
    return fm.load_fashion_mnist(allow_download=False, progress=False)


def tiny_fashion_files(n_train: int = 40, n_test: int = 20, seed: int = 0) -> dict[str, bytes]:
    """Small valid IDX files in the Fashion-MNIST layout (raw bytes, uncompressed)."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte": idx_bytes((np.arange(n_train) % 10).astype(np.uint8)),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte": idx_bytes((np.arange(n_test) % 10).astype(np.uint8)),
    }


def expected_hashes(files: dict[str, bytes]) -> dict[str, tuple[str, int]]:
    return {name: (hashlib.sha256(data).hexdigest(), len(data)) for name, data in files.items()}


def write_gz_dir(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / f"{name}.gz").write_bytes(gzip.compress(data))
    return directory


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    def run(*argv: str):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


@pytest.fixture
def house_csv(tmp_path):
    """A house-price CSV in raw units (m^2, years, currency), price linear in both plus noise."""
    rng = np.random.default_rng(1)
    area = rng.uniform(40, 250, 300)
    age = rng.uniform(0, 80, 300)
    price = 3000 * area - 1500 * age + 50000 + rng.normal(0, 5000, 300)
    path = tmp_path / "houses.csv"
    lines = ["area,age,price"] + [f"{a:.2f},{b:.1f},{p:.2f}" for a, b, p in zip(area, age, price)]
    path.write_text("\n".join(lines) + "\n")
    return path


def find_checkpoint(out: Path) -> Path | None:
    """The checkpoint of the run headed for ``out``: in ``out`` itself or in its staging folder ``out.partial``."""
    for folder in (Path(out), Path(f"{out}.partial")):
        if (folder / "checkpoint.safetensors").is_file():
            return folder / "checkpoint.safetensors"
    return None


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a checkpoint file records (None while it cannot be read, e.g. just being replaced)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as fh:
            return int(fh.metadata()["epoch"])
    except Exception:  # a file replaced under us: try again at the next poll
        return None
