"""Where trials run: in this process, in local worker processes, or on a Ray cluster.

Every executor runs the same two task kinds (one trial, or a surface population) and hands the
results back to the parent, which alone writes the store.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from descentlab.lab import runner
from descentlab.lab.records import Result


def execute(kind: str, specs: list) -> list[Result]:
    """Run a task: ``("trial", [spec])`` or ``("population", specs)``; a result per spec."""
    if kind == "population":
        return runner.run_population(specs)
    return [runner.run_trial(specs[0])]


def threads_per_worker(workers: int) -> int:
    """Split the cores between workers: on 2 cores, 2 workers get one thread each."""
    return max(1, (os.cpu_count() or 1) // workers)


def _init_worker(threads: int, gpu: int | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    if gpu is not None:  # this worker's GPU alone, set before torch starts CUDA in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


class InProcess:
    """Run the tasks here, one per ``wait`` (one worker: no process start-up, easiest to debug).

    Running a task only when the caller waits means each result is stored before the next task
    starts, as with worker processes.
    """

    name = "in-process"
    capacity = 1  # tasks it runs at once

    def __init__(self) -> None:
        self.tasks: dict[concurrent.futures.Future, tuple] = {}

    def submit(self, kind: str, specs: list):
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.tasks[future] = (kind, specs)
        return future

    def wait(self, futures):
        future = next(f for f in futures if not f.done())
        future.set_result(execute(*self.tasks.pop(future)))
        return [future], {f for f in futures if not f.done()}

    def close(self, now: bool = False) -> None:
        pass


class LocalPool:
    """``workers`` spawned processes, each with its share of the cores; with ``gpus`` > 0, worker
    i sees GPU i mod ``gpus`` alone (as its ``cuda``), so several GPUs share one study.

    Each worker is a one-process pool of its own, so a worker that dies (killed, out of memory, a
    crash in native code) fails only the task it ran, and a fresh worker takes its place; in one
    shared pool, a death breaks the pool and every task running beside it.
    """

    name = "local"

    def __init__(self, workers: int, gpus: int = 0) -> None:
        self.capacity = workers
        self.threads, self.gpus = threads_per_worker(workers), gpus
        self.context = multiprocessing.get_context("spawn")
        self.workers = [self._start(index) for index in range(workers)]
        self.running: dict[concurrent.futures.Future, int] = {}  # task -> the worker it runs on

    def _start(self, index: int) -> concurrent.futures.ProcessPoolExecutor:
        gpu = index % self.gpus if self.gpus else None
        return concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=self.context,
                                                      initializer=_init_worker, initargs=(self.threads, gpu))

    def submit(self, kind: str, specs: list):
        """Run the task on the least busy worker (an idle one, while ``capacity`` is respected)."""
        load = collections.Counter(self.running.values())
        index = min(range(self.capacity), key=load.__getitem__)
        try:
            future = self.workers[index].submit(execute, kind, specs)
        except BrokenProcessPool:  # it died while idle
            self.workers[index] = self._start(index)
            future = self.workers[index].submit(execute, kind, specs)
        self.running[future] = index
        return future

    def wait(self, futures):
        done, pending = concurrent.futures.wait(futures, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED)
        lost = {self.running[f] for f in done if f in self.running and isinstance(f.exception(), BrokenProcessPool)}
        for future in done:
            self.running.pop(future, None)
        for index in lost:  # the task fails with the worker ("worker lost"); a fresh worker takes its place
            self.workers[index].shutdown(wait=False)
            self.workers[index] = self._start(index)
        return list(done), pending

    def close(self, now: bool = False) -> None:
        """Shut the workers down; ``now``: without waiting for the running trials (they are killed)."""
        if now:
            for child in multiprocessing.active_children():
                child.terminate()
        for worker in self.workers:
            worker.shutdown(wait=not now, cancel_futures=True)


class RayExecutor:
    """Trials as Ray tasks on the cluster at ``address`` (None: start a local Ray instance); each
    asks for ``gpus`` GPUs (a fraction lets several trials share one)."""

    name = "ray"

    def __init__(self, address: str | None, workers: int, gpus: float = 0.0) -> None:
        try:
            import ray
        except ImportError as error:
            raise RuntimeError("--executor ray needs Ray: pip install 'descentlab[ray]'") from error
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         num_cpus=None if address else workers)
            except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError…
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise RuntimeError(f"cannot start or reach {where}: {error}") from error
        # a trial asks Ray for its share of a GPU; Ray sets CUDA_VISIBLE_DEVICES to the GPU it grants
        self.remote = ray.remote(num_cpus=1, num_gpus=gpus)(execute)
        self.capacity = workers if address is None else max(workers, int(ray.cluster_resources().get("CPU", 1)))
        self.futures: dict[Any, concurrent.futures.Future] = {}

    def submit(self, kind: str, specs: list):
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.futures[self.remote.remote(kind, specs)] = future
        return future

    def wait(self, futures):
        refs = list(self.futures)
        if refs:
            ready, _ = self.ray.wait(refs, num_returns=1, timeout=0.5)
            for ref in ready:
                future = self.futures.pop(ref)
                try:
                    future.set_result(self.ray.get(ref))
                except Exception as error:  # a task lost with its node: the parent records it
                    future.set_exception(error)
        done = [f for f in futures if f.done()]
        return done, {f for f in futures if not f.done()}

    def close(self, now: bool = False) -> None:
        if now:
            for ref in self.futures:
                self.ray.cancel(ref, force=True)


def make(executor: str, workers: int, address: str | None = None, device: str = "cpu"):
    """The executor; for trials on ``device`` "cuda", local workers spread over the visible GPUs
    and Ray trials each request one GPU (several workers on one GPU: give "cuda:0")."""
    spread = device == "cuda"
    if executor == "ray":
        return RayExecutor(address, workers, 1.0 if spread else 0.0)
    if executor != "local":
        raise ValueError(f"`executor` must be 'local' or 'ray'. Received: executor={executor!r}")
    if workers == 1:
        return InProcess()
    return LocalPool(workers, _visible_gpus() if spread else 0)


def _visible_gpus() -> int:
    import torch

    return torch.cuda.device_count()
