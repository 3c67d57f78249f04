"""An explicit Fashion-MNIST source is used or refused; implicit ones are reported when skipped (issue 14, item 6)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import expected_hashes, tiny_fashion_files, write_gz_dir

from linearnet.data import fashion_mnist as fm
from linearnet.errors import DataError

NAME = "train-images-idx3-ubyte"


def _damage(kind: str, files: dict[str, bytes]) -> dict[str, bytes]:
    files = dict(files)
    raw = files[NAME]
    if kind == "random bytes":
        files[NAME] = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    elif kind == "bad magic":
        files[NAME] = b"\x01\x02" + raw[2:]
    elif kind == "truncated":
        files[NAME] = raw[:len(raw) // 2]
    elif kind == "wrong hash":
        files[NAME] = raw[:-1] + bytes([raw[-1] ^ 1])
    return files


EXPECT = {"random bytes": "truncated", "bad magic": "bad magic", "truncated": "truncated",
          "wrong hash": "wrong SHA-256", "missing": "missing"}


def _bad_dir(tmp_path, kind: str):
    files = tiny_fashion_files()
    d = write_gz_dir(tmp_path / "bad", _damage(kind, files))
    if kind == "missing":
        os.unlink(d / f"{NAME}.gz")
    return d, expected_hashes(files)


@pytest.mark.parametrize("kind", list(EXPECT))
@pytest.mark.parametrize("how", ["root", "env_dir"])
def test_explicit_bad_source_is_refused_not_replaced(tmp_path, kind, how):
    d, good = _bad_dir(tmp_path, kind)
    fallback = write_gz_dir(tmp_path / "good", tiny_fashion_files())  # a valid implicit source it must not use
    with pytest.raises(DataError) as info:
        fm.load_fashion_mnist(**{how: d}, cache_dir=fallback, system_dir=fallback, allow_download=False,
                              files=good)
    msg = str(info.value)
    assert f"{d / NAME}" in msg and EXPECT[kind] in msg, msg
    assert msg.count(". ") == 0 and msg.endswith(".")  # one sentence


def test_explicit_good_source_is_used(tmp_path):
    files = tiny_fashion_files()
    d = write_gz_dir(tmp_path / "mine", files)
    ds = fm.load_fashion_mnist(root=d, cache_dir=tmp_path / "c", system_dir=None, allow_download=False,
                               files=expected_hashes(files))
    assert str(d) in ds.source and len(ds.train_images) == 40


def test_skipped_implicit_sources_are_reported_one_line_each(tmp_path):
    files = tiny_fashion_files()
    cache = write_gz_dir(tmp_path / "cache", _damage("bad magic", files))
    system = write_gz_dir(tmp_path / "system", files)
    lines = []
    ds = fm.load_fashion_mnist(cache_dir=cache, system_dir=system, allow_download=False,
                               files=expected_hashes(files), log=lines.append)
    assert ds.source.startswith("debian package")
    assert len(lines) == 1 and "\n" not in lines[0] and str(cache / NAME) in lines[0] and "bad magic" in lines[0]


@pytest.mark.parametrize("kind", ["random bytes", "bad magic", "truncated"])
def test_cli_data_info_refuses_a_corrupt_data_dir(tmp_path, kind):
    # With the real file names the official hashes apply, so corrupt copies of them are built here.
    d = tmp_path / "dir"
    d.mkdir()
    for name, (_, size) in fm.OFFICIAL_FILES.items():
        body = bytes([0, 0, 8, 1]) + (size - 8).to_bytes(4, "big") + bytes(size - 8)  # right size, wrong bytes
        (d / f"{name}.gz").write_bytes(gzip.compress(body, compresslevel=1))
    raw = gzip.decompress((d / f"{NAME}.gz").read_bytes())
    (d / f"{NAME}.gz").write_bytes(gzip.compress(_damage(kind, {NAME: raw})[NAME], compresslevel=1))
    proc = subprocess.run([sys.executable, "-m", "linearnet", "data", "info", "--data-dir", str(d)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr.count("\n") == 1 and f"{d / NAME}.gz" in proc.stderr and EXPECT[kind] in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("body", [b"", b"\x54\xdf" + bytes(range(256)) * 20])
def test_cli_names_a_gz_file_that_is_not_gzip(tmp_path, cli, body):
    # random bytes saved as .gz were called "truncated": they are not gzip data at all
    d = write_gz_dir(tmp_path / "dir", tiny_fashion_files())
    (d / f"{NAME}.gz").write_bytes(body)
    code, out, err = cli("data", "info", "--data-dir", d)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"{d / NAME}.gz: not gzip data" in err and "truncated" not in err


def test_an_uncompressed_idx_file_under_a_gz_name_still_loads(tmp_path):
    files = tiny_fashion_files()
    d = write_gz_dir(tmp_path / "dir", files)
    (d / f"{NAME}.gz").write_bytes(files[NAME])  # gzip is told by its magic number, not the name
    ds = fm.load_fashion_mnist(root=d, cache_dir=tmp_path / "c", system_dir=None, allow_download=False,
                               files=expected_hashes(files))
    assert len(ds.train_images) == 40


@pytest.mark.parametrize("how", ["--data-dir", "LINEARNET_DATA"])
def test_a_file_given_as_the_data_folder_is_named_as_a_file(tmp_path, cli, monkeypatch, how):
    not_a_folder = tmp_path / "train-images-idx3-ubyte.gz"
    not_a_folder.write_bytes(b"x")
    if how == "LINEARNET_DATA":
        monkeypatch.setenv("LINEARNET_DATA", str(not_a_folder))
    code, out, err = cli("data", "info", *(["--data-dir", not_a_folder] if how == "--data-dir" else []))
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"{not_a_folder} (" in err and "is a file, not a folder" in err and "missing" not in err
