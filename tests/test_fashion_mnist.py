"""Fashion-MNIST data layer: IDX format, verified sources, downloads from a loopback server, batches."""

from __future__ import annotations

import functools
import gzip
import http.server
import threading

import numpy as np
import pytest
import torch
from conftest import expected_hashes, tiny_fashion_files, write_gz_dir

from linearnet.data import fashion_mnist as fm
from linearnet.data.idx import idx_bytes, parse_idx, read_idx, write_idx
from linearnet.errors import DataError


@pytest.mark.parametrize("dtype,shape", [(np.uint8, (3, 4, 5)), (np.int8, (7,)), (np.int16, (2, 3)),
                                         (np.int32, (4, 1, 2, 3)), (np.float32, (5, 5)), (np.float64, (2,)),
                                         (np.uint8, (0, 28, 28))])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, dtype, shape, gz):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=shape) * 50).astype(dtype)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == shape and np.array_equal(back, arr)


MALFORMED = {
    "empty": b"",
    "bad magic": b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc",
    "bad type": b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + b"abc",
    "truncated header": b"\x00\x00\x08\x03" + (3).to_bytes(4, "big"),
    "truncated data": b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"abc",
    "trailing data": b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"abc",
    "huge declared size": b"\x00\x00\x08\x02" + (10**6).to_bytes(4, "big") * 2 + b"x" * 92,
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_idx_raises_data_error_naming_the_file(tmp_path, case):
    path = tmp_path / f"{case.replace(' ', '_')}.idx"
    path.write_bytes(MALFORMED[case])
    with pytest.raises(DataError, match=str(path.name)):
        read_idx(path)


def test_corrupt_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:30])
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


def test_inconsistent_counts_and_labels_are_refused(tmp_path):
    files = tiny_fashion_files()
    files["train-labels-idx1-ubyte"] = idx_bytes(np.zeros(39, np.uint8))  # 40 images, 39 labels
    d = write_gz_dir(tmp_path / "a", files)
    with pytest.raises(DataError, match="40 images but 39 labels"):
        fm.load_fashion_mnist(root=d, cache_dir=tmp_path / "c", system_dir=None, allow_download=False,
                              files=expected_hashes(files))
    files = tiny_fashion_files()
    files["t10k-labels-idx1-ubyte"] = idx_bytes(np.full(20, 12, np.uint8))
    d = write_gz_dir(tmp_path / "b", files)
    with pytest.raises(DataError, match="outside 0-9"):
        fm.load_fashion_mnist(root=d, cache_dir=tmp_path / "c", system_dir=None, allow_download=False,
                              files=expected_hashes(files))


def test_wrong_hash_source_is_skipped_and_error_lists_every_place(tmp_path):
    # Implicit sources (the cache, Debian's package) that fail are skipped, each reported in one line;
    # an explicit one is refused instead (tests/test_data_sources.py).
    files = tiny_fashion_files()
    good = expected_hashes(files)
    bad = dict(files)
    bad["train-images-idx3-ubyte"] = idx_bytes(np.ones((40, 28, 28), np.uint8))
    cache = write_gz_dir(tmp_path / "cache", bad)
    lines = []
    with pytest.raises(DataError) as info:
        fm.load_fashion_mnist(cache_dir=cache, system_dir=tmp_path / "sys", allow_download=False, files=good,
                              log=lines.append)
    msg = str(info.value)
    for where in ("cache", "debian package", "SHA-256", "apt-get install dataset-fashion-mnist", "--data-dir DIR"):
        assert where in msg, where
    assert len(lines) == 1 and "cache" in lines[0] and "SHA-256" in lines[0]  # the absent package: no line


def test_sources_in_order_and_hash_stamp_reused(tmp_path, monkeypatch):
    files = tiny_fashion_files()
    good = expected_hashes(files)
    env_dir = write_gz_dir(tmp_path / "env", files)
    ds = fm.load_fashion_mnist(env_dir=env_dir, cache_dir=tmp_path / "cache", system_dir=None,
                               allow_download=False, files=good)
    assert ds.source.startswith("LINEARNET_DATA") and len(ds.train_images) == 40
    calls = []
    real = fm.hashlib.sha256
    monkeypatch.setattr(fm.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    fm.load_fashion_mnist(env_dir=env_dir, cache_dir=tmp_path / "cache", system_dir=None,
                          allow_download=False, files=good)
    assert calls == []  # verified once, remembered by (path, size, mtime)


class _Server:
    """A loopback HTTP server over a folder, with a request log."""

    def __init__(self, root):
        self.requests = []
        log = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                log.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers(tmp_path):
    made = []

    def make(name, files):
        root = write_gz_dir(tmp_path / name, files) if files else (tmp_path / name)
        root.mkdir(exist_ok=True)
        s = _Server(root)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def test_download_from_loopback_mirror_is_verified_and_cached(tmp_path, servers):
    files = tiny_fashion_files()
    srv = servers("good", files)
    cache = tmp_path / "cache"
    ds = fm.load_fashion_mnist(cache_dir=cache, system_dir=None, mirrors=[srv.url + "/"],
                               files=expected_hashes(files), progress=False, log=lambda s: None)
    assert ds.source.startswith("download") and len(ds.test_labels) == 20
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == sorted(
        list(files) + [fm.STAMP_NAME])
    assert torch.equal(ds.train_labels, torch.arange(40) % 10)
    again = fm.load_fashion_mnist(cache_dir=cache, system_dir=None, allow_download=False,
                                  files=expected_hashes(files))
    assert again.source.startswith("cache")


def test_wrong_hash_mirror_refused_then_404_falls_back(tmp_path, servers):
    files = tiny_fashion_files()
    evil = {k: idx_bytes(np.zeros((40, 28, 28), np.uint8)) if "train-images" in k else v for k, v in files.items()}
    bad = servers("evil", evil)
    empty = servers("empty", None)  # every file 404
    good = servers("good", files)
    cache = tmp_path / "cache"
    messages = []
    with pytest.raises(DataError, match="wrong SHA-256"):
        fm.download(cache, [bad.url], expected_hashes(files), progress=False, log=messages.append)
    assert not (cache / "train-images-idx3-ubyte").exists()  # a bad file never stays
    assert not [p for p in cache.rglob("*") if p.is_file() and "train-images" in p.name]
    fm.download(cache, [empty.url, bad.url, good.url], expected_hashes(files), progress=False,
                log=messages.append)
    assert any("404" in m for m in messages) and any("wrong SHA-256" in m for m in messages)
    assert (cache / "train-images-idx3-ubyte").read_bytes() == files["train-images-idx3-ubyte"]
    assert all(r.startswith("/") for r in empty.requests + good.requests)


def test_real_data_facts(fmnist):
    assert len(fmnist.train_images) == 60000 and len(fmnist.test_images) == 10000
    assert fm.class_counts(fmnist.train_labels) == [6000] * 10
    assert fm.class_counts(fmnist.test_labels) == [1000] * 10
    assert int(fmnist.train_labels[0]) == 9 and fm.get_fashion_mnist_labels([9]) == ["ankle boot"]
    assert int(fmnist.train_images.min()) == 0 and int(fmnist.train_images.max()) == 255
    assert fmnist.train_images.dtype == torch.uint8 and fmnist.train_images.shape[1:] == (28, 28)


def test_real_batches_shapes_order_and_coverage(fmnist):
    b = fm.batches(fmnist, "train", 256)
    sizes, seen, first = [], [], None
    for X, y in b:
        first = first if first is not None else (X, y)
        sizes.append(len(y))
    assert len(sizes) == 235 and sizes[-1] == 96 and len(b) == 235
    X, y = first
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= float(X.min()) and float(X.max()) <= 1.0
    ids = torch.arange(60000)
    for Xb, _ in fm.Batches(ids, ids, 256, shuffle=True, seed=3):
        seen.append(Xb)
    assert torch.equal(torch.cat(seen).sort().values, ids)
    test = fm.batches(fmnist, "test", 1000)
    assert torch.equal(next(iter(test))[1], fmnist.test_labels[:1000])  # not shuffled
    assert len(fm.batches(fmnist, "train", 256, drop_last=True)) == 234


def test_resize_and_normalize(fmnist):
    X, _ = next(iter(fm.batches(fmnist, "train", 32, resize=64)))
    assert X.shape == (32, 1, 64, 64)
    mean, std = fm.pixel_stats(fmnist.train_images[:5000])
    Xn, _ = next(iter(fm.batches(fmnist, "train", 5000, shuffle=False, normalize=(mean, std))))
    assert abs(float(Xn.mean())) < 0.02 and abs(float(Xn.std()) - 1) < 0.02


def test_per_sample_dataset_agrees_with_batches(fmnist):
    ds = fm.FashionMNISTDataset(fmnist, "test")
    X, y = next(iter(fm.batches(fmnist, "test", 4)))
    for i in range(4):
        xi, yi = ds[i]
        assert torch.equal(xi, X[i]) and yi == int(y[i])


def test_parse_idx_never_allocates_for_lying_headers():
    data = b"\x00\x00\x0e\x03" + (10**4).to_bytes(4, "big") * 3 + b"\x00" * 80
    with pytest.raises(DataError, match="declares shape"):
        parse_idx(data)


def test_cli_data_commands(cli, tmp_path):
    code, out, _ = cli("data", "info", "--no-download")
    assert code == 0 and "ankle boot 6000" in out and "60000 images" in out
    code, out, _ = cli("data", "show", "--no-download", "--out", tmp_path / "g.png")
    assert code == 0 and (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
