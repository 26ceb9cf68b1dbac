"""Dataset loading: IDX parsing, search order, sha256 checks, downloads, and the error messages."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from descentlab import data


def _idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize(
    "array, code",
    [
        (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08),
        (np.array([-3, 7, 1000, -70000], dtype=np.int32), 0x0C),
        (np.array([[0.5, -1.25], [3.0, 1e-3]], dtype=np.float32), 0x0D),
    ],
)
def test_read_idx_round_trips_shape_dtype_and_values(tmp_path, array, code, gzipped):
    raw = _idx_bytes(array, code)
    path = tmp_path / ("file.gz" if gzipped else "file")
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    parsed = data.read_idx(path)
    assert parsed.shape == array.shape
    assert torch.equal(parsed, torch.from_numpy(array.astype(array.dtype.newbyteorder("="))))


def test_read_idx_rejects_a_truncated_or_foreign_file(tmp_path):
    good = _idx_bytes(np.zeros((2, 2), dtype=np.uint8), 0x08)
    (tmp_path / "short").write_bytes(good[:-1])
    with pytest.raises(ValueError, match=r"header says shape \(2, 2\) \(4 bytes\), body has 3"):
        data.read_idx(tmp_path / "short")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="is not an IDX file"):
        data.read_idx(tmp_path / "text")


def test_real_mnist_test_split_has_the_known_labels(shared_data):
    labels = data.read_idx(data.find("mnist", "t10k-labels-idx1-ubyte"))
    images = data.read_idx(data.find("mnist", "t10k-images-idx3-ubyte"))
    assert labels.shape == (10000,) and images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert images.max() == 255 and images[0, :7].sum() == 0  # a 7 with blank top rows


def test_search_order_explicit_dir_then_env_then_cache(tmp_path, monkeypatch, shared_data):
    mine = tmp_path / "mine" / "tinyshakespeare"
    mine.mkdir(parents=True)
    source = data.find("tinyshakespeare", "input.txt")
    shutil.copy(source, mine / "input.txt")
    assert data.find("tinyshakespeare", "input.txt", tmp_path / "mine") == mine / "input.txt"
    assert data.find("tinyshakespeare", "input.txt") == source
    monkeypatch.setenv("DESCENTLAB_DATA", str(tmp_path / "nowhere"))
    assert data.find("tinyshakespeare", "input.txt") is None
    assert data.search_dirs()[-1] == data.cache_dir()


def test_checksum_mismatch_names_the_file_and_is_never_used(tmp_path):
    folder = tmp_path / "ptb"
    folder.mkdir()
    (folder / "ptb.valid.txt").write_text("not the penn treebank\n")
    with pytest.raises(data.ChecksumMismatch, match=r"ptb\.valid\.txt has sha256 [0-9a-f]{64}, expected c9fe6985"):
        data.fetch("ptb", "ptb.valid.txt", tmp_path)


def test_missing_file_offline_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("DESCENTLAB_DATA", str(tmp_path))
    with pytest.raises(data.DataUnavailable) as raised:
        data.fetch("mnist", "train-images-idx3-ubyte.gz")
    message = str(raised.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "mnist") in message and "DESCENTLAB_DATA" in message


def _serve_locally(monkeypatch, payload_path: Path, sha256: str):
    """Point the registry's ptb.train.txt at a local file:// URL with the given checksum."""
    remote = data.RemoteFile("ptb", "ptb.train.txt", payload_path.as_uri(), sha256)
    monkeypatch.setitem(data.FILES, ("ptb", "ptb.train.txt"), remote)
    monkeypatch.setenv("DESCENTLAB_OFFLINE", "0")
    monkeypatch.setenv("DESCENTLAB_DATA", "")
    monkeypatch.setenv("DESCENTLAB_CACHE", str(payload_path.parent / "cache"))


def test_download_lands_in_the_cache_after_its_checksum(tmp_path, monkeypatch):
    payload = tmp_path / "served.txt"
    payload.write_text(" a b c \n")
    _serve_locally(monkeypatch, payload, hashlib.sha256(payload.read_bytes()).hexdigest())
    path = data.fetch("ptb", "ptb.train.txt")
    assert path == data.cache_dir() / "ptb" / "ptb.train.txt"
    assert path.read_text() == " a b c \n"
    assert data.find("ptb", "ptb.train.txt") == path


def test_download_with_a_bad_checksum_leaves_nothing_behind(tmp_path, monkeypatch):
    payload = tmp_path / "served.txt"
    payload.write_text("tampered\n")
    _serve_locally(monkeypatch, payload, "0" * 64)
    with pytest.raises(data.ChecksumMismatch, match=r"Downloaded file:.*expected 0{64}"):
        data.fetch("ptb", "ptb.train.txt")
    assert list((data.cache_dir() / "ptb").glob("*train*")) == []


def test_failed_download_is_data_unavailable(tmp_path, monkeypatch):
    _serve_locally(monkeypatch, tmp_path / "does-not-exist.txt", "0" * 64)
    with pytest.raises(data.DataUnavailable, match="download failed"):
        data.fetch("ptb", "ptb.train.txt")


def test_unknown_file_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Unknown dataset file mnist/nope\. Known files: mnist/train-images"):
        data.fetch("mnist", "nope")
