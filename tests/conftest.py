import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("KERAS_BACKEND", "torch")
# Hermetic data: never download, never read the user's cache; read the shared offline datasets
# (../shared/data, as CI lays them out) unless DESCENTLAB_DATA already points somewhere.
os.environ["DESCENTLAB_OFFLINE"] = "1"
os.environ["DESCENTLAB_CACHE"] = tempfile.mkdtemp(prefix="descentlab-test-cache-")
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("DESCENTLAB_DATA") and _SHARED.is_dir():
    os.environ["DESCENTLAB_DATA"] = str(_SHARED)

# CI runs the same examples every time (a red run must be reproducible); locally, new ones each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def data_present(dataset: str, name: str) -> bool:
    from descentlab import data

    return data.find(dataset, name) is not None


@pytest.fixture
def shared_data():
    """Skip (with the reason) when the offline datasets are not available."""
    if not data_present("mnist", "t10k-images-idx3-ubyte"):
        pytest.skip("offline datasets not found: set DESCENTLAB_DATA to a folder with mnist/, ptb/, tinyshakespeare/")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system's Chromium, installed with apt-get when missing and we may (root)."""
    binary = shutil.which("chromium")
    if binary is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        # a fresh image has empty package lists: without the update, install finds no chromium
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            install = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900, env=env)
        binary = shutil.which("chromium")
        if binary is None:
            pytest.skip(f"Chromium is not installed and apt-get could not install it: {install.stderr[-500:]}")
    if binary is None:
        pytest.skip("Chromium is not installed, and installing it (apt-get install chromium) needs root")
    return binary


@pytest.fixture(scope="session")
def two_ranks(tmp_path_factory) -> Path:
    """The folder where one spawn of ``distributed_worker.py`` (two gloo ranks) left every two-rank result."""
    import torch

    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    directory = tmp_path_factory.mktemp("two_ranks")
    worker = Path(__file__).with_name("distributed_worker.py")
    source = str(Path(__file__).resolve().parents[1] / "src")  # this checkout's descentlab, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    # fresh interpreters, not forks: a forked rank can deadlock in the parent's OpenMP pool
    processes = [
        subprocess.Popen([sys.executable, str(worker), str(rank), str(directory / "init"), str(directory)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in range(2)
    ]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    return directory
