"""``descentlab bench step``: optimizer step time against the memory-bandwidth bound and torch.optim.

An elementwise optimizer step moves, per parameter, the parameter (read and write), the gradient
(read) and each state tensor (read and write). The bound is those bytes divided by the streaming
bandwidth, measured first, in the same process, on a working set as large as the case's: on the
CPU an in-place ``a += b`` from a cold cache, on CUDA a device-to-device copy (HBM). On CUDA a
step's time is from before the call to after a ``torch.cuda.synchronize()``, so the host's work
(Python, launches) and the kernels' both count, as they do in training.

For each case and optimizer, every contender (descentlab's reference, foreach and fused paths, and
each path torch.optim offers for the same algorithm) gets its own copy of the parameters; after a
warm-up, the contenders take turns in a shuffled order, one timed step each per round, so drift on
a shared machine and the caches a previous contender left cold hit all of them alike. Reported:
the median step time, the bytes it moved per second, the ratio to the bound, the speed-up of the
fused path over torch's fastest path, and the peak memory each path allocates beyond what it holds
between steps (Linux: VmHWM after a reset of it).
"""

from __future__ import annotations

import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from descentlab import optim

CASES = {
    "a": (10_000_000, 100),  # 10M parameters in 100 tensors
    "b": (1_000_000, 1000),  # 1M parameters in 1000 tensors
    "c": (100_000_000, 100),  # 100M in 100: the CUDA cases, an HBM-sized working set
    "d": (10_000_000, 1000),  # 10M in 1000: per-tensor costs dominate torch's paths
}
DEFAULT_CASES = {"cpu": ("a", "b"), "cuda": ("c", "d")}


@dataclass(frozen=True)
class Contestant:
    """One optimizer in the benchmark: descentlab's constructor and torch's for the same algorithm."""

    name: str
    ours: Callable[..., torch.optim.Optimizer]  # descentlab's, given the params and a path's switches
    theirs: Callable[..., torch.optim.Optimizer] | None = None
    torch_paths: tuple = ("for-loop", "foreach")


CONTESTANTS = [
    Contestant("sgd", lambda p, **k: optim.SGD(p, lr=0.01, **k), lambda p, **k: torch.optim.SGD(p, lr=0.01, **k),
               ("for-loop", "foreach", "fused")),
    Contestant("sgd_momentum", lambda p, **k: optim.SGD(p, lr=0.01, momentum=0.9, **k),
               lambda p, **k: torch.optim.SGD(p, lr=0.01, momentum=0.9, **k), ("for-loop", "foreach", "fused")),
    Contestant("sgd_nesterov", lambda p, **k: optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, **k),
               lambda p, **k: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, **k),
               ("for-loop", "foreach", "fused")),
    Contestant("adagrad", lambda p, **k: optim.Adagrad(p, **k), lambda p, **k: torch.optim.Adagrad(p, **k),
               ("for-loop", "foreach", "fused")),
    Contestant("adadelta", lambda p, **k: optim.Adadelta(p, **k), lambda p, **k: torch.optim.Adadelta(p, **k)),
    Contestant("rmsprop", lambda p, **k: optim.RMSprop(p, **k), lambda p, **k: torch.optim.RMSprop(p, **k)),
    Contestant("adam", lambda p, **k: optim.Adam(p, **k), lambda p, **k: torch.optim.Adam(p, **k),
               ("for-loop", "foreach", "fused")),
    Contestant("adam_amsgrad", lambda p, **k: optim.Adam(p, amsgrad=True, **k),
               lambda p, **k: torch.optim.Adam(p, amsgrad=True, **k), ("for-loop", "foreach", "fused")),
    Contestant("adamax", lambda p, **k: optim.Adamax(p, **k), lambda p, **k: torch.optim.Adamax(p, **k)),
    Contestant("nadam", lambda p, **k: optim.Nadam(p, **k), lambda p, **k: torch.optim.NAdam(p, **k)),
    Contestant("nadamax", lambda p, **k: optim.Nadamax(p, **k)),
    Contestant("ftrl", lambda p, **k: optim.FTRL(p, l1=1e-4, **k)),
    Contestant("composed_nesterov_adagrad",
               lambda p, **k: optim.Composed(p, momentum_rule="nesterov", adaptation_rule="sum", **k)),
]
OUR_PATHS = {"reference": dict(foreach=False, fused=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}
TORCH_SWITCHES = {"for-loop": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}


@dataclass
class Row:
    case: str
    optimizer: str
    bytes_per_step: int
    bound_ms: float
    ms: dict = field(default_factory=dict)  # contender -> median ms
    peak_extra_mb: dict = field(default_factory=dict)  # contender -> MB, None where not measurable

    @property
    def torch_best(self) -> tuple[str, float] | None:
        torch_times = [(k, v) for k, v in self.ms.items() if k.startswith("torch ")]
        return min(torch_times, key=lambda kv: kv[1]) if torch_times else None


FLUSH_BYTES = 1 << 30  # more than this machine's last-level cache (480 MiB reported)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(elements: int, device: torch.device, repeats: int = 15, burst: int = 10) -> float:
    """Bytes per second (read + written) of device-to-device copies of ``elements`` float32.

    At least 2**26 elements (512 MB moved, ten times the L2 cache), so that HBM is measured; each
    timing is a burst of back-to-back copies, which keeps the launches out of the figure.
    """
    elements = max(elements, 1 << 26)
    a = torch.rand(elements, device=device)
    b = torch.empty_like(a)
    seconds = statistics.median(_burst_seconds(lambda: b.copy_(a), device, burst) for _ in range(repeats))
    return 2 * 4 * elements / seconds


def _burst_seconds(step, device: torch.device, burst: int) -> float:
    """Mean seconds of ``burst`` back-to-back calls, from before the first to the device being idle."""
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(burst):
        step()
    _synchronize(device)
    return (time.perf_counter() - start) / burst


def stream_bandwidth(elements: int, repeats: int = 15) -> float:
    """Bytes per second of an in-place ``a += b`` over two float32 buffers of ``elements`` each.

    Each timed pass starts from a cold cache (a larger buffer is written first), as the contenders
    do: between two steps of one optimizer the others stream their own buffers through the cache.
    """
    a, b = torch.rand(elements), torch.rand(elements)
    flush = torch.empty(FLUSH_BYTES // 4)
    times = []
    for _ in range(repeats):
        flush.fill_(1.0)
        start = time.perf_counter()
        a.add_(b)
        times.append(time.perf_counter() - start)
    return 3 * 4 * elements / statistics.median(times)


def _params(total: int, tensors: int, device: torch.device, seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator(device).manual_seed(seed)
    size = total // tensors
    params = [torch.nn.Parameter(torch.randn(size, generator=gen, device=device)) for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(size, generator=gen, device=device) * 1e-2
    return params


def _state_bytes(optimizer, params) -> int:
    """Bytes one step moves: parameter read + write, gradient read, each full state tensor read + write."""
    total = 0
    for p in params:
        state_tensors = [v for v in optimizer.state[p].values() if torch.is_tensor(v) and v.shape == p.shape]
        total += p.numel() * p.element_size() * (3 + 2 * len(state_tensors))
    return total


def _rss_kb(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def peak_extra_mb(step, device: torch.device) -> float | None:
    """Peak memory ``step()`` adds beyond what is held: resident (None off Linux), or on the GPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - before) / 2**20
    try:
        gc.collect()
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset VmHWM to the current RSS
        before = _rss_kb("VmRSS")
        step()
        return max(0, _rss_kb("VmHWM") - before) / 1024
    except OSError:
        return None


def _contenders(contestant: Contestant, total: int, tensors: int, device: torch.device) -> dict:
    contenders = {}
    for path, switches in OUR_PATHS.items():
        params = _params(total, tensors, device)
        contenders[path] = (contestant.ours(params, **switches), params)
    if contestant.theirs is not None:
        for path in contestant.torch_paths:
            params = _params(total, tensors, device)
            optimizer = contestant.theirs(params, **TORCH_SWITCHES[path])
            try:
                optimizer.step()  # torch refuses some paths on some devices (fused Adagrad on CUDA) only here
            except RuntimeError:
                continue
            contenders[f"torch {path}"] = (optimizer, params)
    return contenders


def measure(contestant: Contestant, case: str, bandwidth: float, rounds: int = 15, warmup: int = 3,
            device: torch.device | str = "cpu") -> Row:
    """Interleaved median step times of every path of one optimizer on one case."""
    device = torch.device(device)
    total, tensors = CASES[case]
    contenders = _contenders(contestant, total, tensors, device)
    bursts = _warm_up(contenders, warmup, device)
    fused, fused_params = contenders["fused"]
    moved = _state_bytes(fused, fused_params)
    row = Row(case, contestant.name, moved, moved / bandwidth * 1e3)
    times = _interleaved(contenders, bursts, rounds, device)
    row.ms = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    row.peak_extra_mb = {name: peak_extra_mb(optimizer.step, device) for name, (optimizer, _) in contenders.items()}
    return row


def _warm_up(contenders: dict, warmup: int, device: torch.device) -> dict[str, int]:
    """Each contender's ``warmup`` untimed steps; returns the steps each timed burst takes."""
    bursts = {}
    for name, (optimizer, _) in contenders.items():
        for _ in range(warmup):
            optimizer.step()
        # on CUDA a step is timed as the mean of a burst: launches queue as in training, and one
        # synchronization per burst (not per step) is in the figure; slow steps need no burst
        single = _burst_seconds(optimizer.step, device, 1)
        bursts[name] = min(10, max(1, round(0.02 / single))) if device.type == "cuda" else 1
    return bursts


def _interleaved(contenders: dict, bursts: dict[str, int], rounds: int, device: torch.device
                 ) -> dict[str, list[float]]:
    """``rounds`` rounds of one timed burst per contender, in a shuffled order each round: seconds per step."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    order = random.Random(0)
    for _ in range(rounds):
        names = list(contenders)
        order.shuffle(names)  # nobody always follows the allocation-heavy reference path
        for name in names:
            times[name].append(_burst_seconds(contenders[name][0].step, device, bursts[name]))
    return times


def first_fused_step_seconds(cache_dir: str, device: torch.device) -> float:
    """Seconds from constructing an Adam to the end of its first fused step, in a new process."""
    script = textwrap.dedent(
        f"""
        import time, torch
        from descentlab import optim
        params = [torch.nn.Parameter(torch.randn(1_000_000, device="{device}")) for _ in range(10)]
        for p in params:
            p.grad = torch.randn_like(p)
        torch.cuda.synchronize() if torch.cuda.is_available() else None
        start = time.perf_counter()
        optim.Adam(params, fused=True).step()
        torch.cuda.synchronize() if torch.cuda.is_available() else None
        print(time.perf_counter() - start)
        """
    )
    # both compilers' disk caches in the temporary folder: cold on the first run, warm on the second
    env = {**os.environ, "DESCENTLAB_CACHE": cache_dir, "TRITON_CACHE_DIR": os.path.join(cache_dir, "triton")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def run(cases=None, names=None, rounds: int = 15, out=print, device: str = "cpu") -> dict:
    """Run the benchmark; print the tables as it goes and return everything measured."""
    where = torch.device(device)
    _check_device(where)
    cases = cases or DEFAULT_CASES.get(where.type, ("a", "b"))
    chosen = _contestants(names)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(where) if where.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    result: dict[str, Any] = {"device": name, "threads": torch.get_num_threads(), "torch": torch.__version__,
                              "cases": {}}
    with tempfile.TemporaryDirectory() as cold:
        result["first_fused_step_s"] = {"cold cache": first_fused_step_seconds(cold, where),
                                        "warm cache": first_fused_step_seconds(cold, where)}
    out(f"{name}; first fused Adam step in a new process (compile included): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in result["first_fused_step_s"].items()))
    for case in cases:
        result["cases"][case] = _case(case, chosen, rounds, where, out)
    return result


def _check_device(where: torch.device) -> None:
    """A RuntimeError, before any work, where the device is absent or the fused path cannot run on it."""
    from descentlab.optim.paths.fused import ineligibility

    if where.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"no CUDA device here: torch {torch.__version__} sees none")
    reason = ineligibility([torch.empty(1, device=where)])
    if reason:
        raise RuntimeError(f"the fused path is unavailable: {reason}")


def _contestants(names) -> list[Contestant]:
    """The contestants named (all for None), in the benchmark's order; an unknown name is a ValueError."""
    unknown = set(names or ()) - {c.name for c in CONTESTANTS}
    if unknown:
        raise ValueError(f"unknown optimizers {sorted(unknown)}; choose from {[c.name for c in CONTESTANTS]}")
    return [c for c in CONTESTANTS if names is None or c.name in names]


def _case(case: str, chosen: list[Contestant], rounds: int, where: torch.device, out) -> dict:
    """One case: its bandwidth bound, then every contestant measured, a printed line each."""
    total, tensors = CASES[case]
    if where.type == "cuda":
        bandwidth = copy_bandwidth(total, where)
        how = "device-to-device copy, read + written"
    else:
        bandwidth = stream_bandwidth(2 * total)
        how = f"in-place a += b, cold cache, {torch.get_num_threads()} threads"
    out(f"\ncase ({case}): {total:,} float32 params in {tensors} tensors; bandwidth "
        f"{bandwidth / 1e9:.1f} GB/s ({how})")
    out(f"{'optimizer':<26}{'bound':>7}{'fused':>8}{'×bound':>7}{'GB/s':>6}{'foreach':>9}{'reference':>10}"
        f"{'torch best':>12} {'(path)':<10}{'×torch':>7}   peak extra MB: ref/foreach/fused/torch")
    rows = []
    for contestant in chosen:
        row = measure(contestant, case, bandwidth, rounds, device=where)
        rows.append(row)
        out(_line(row))
        gc.collect()
    return {"params": total, "tensors": tensors, "bandwidth_gb_s": bandwidth / 1e9, "rows": [asdict(r) for r in rows]}


def _line(row: Row) -> str:
    """A measured row as the terminal table prints it."""
    best = row.torch_best
    fused = row.ms["fused"]
    speedup = f"{best[1] / fused:6.2f}×" if best else "      —"
    best_text = f"{best[1]:12.2f} {best[0].removeprefix('torch '):<10}" if best else f"{'—':>12} {'':<10}"
    memory = "/".join(_mb(row.peak_extra_mb.get(k)) for k in ("reference", "foreach", "fused"))
    memory += "/" + (_mb(row.peak_extra_mb[best[0]]) if best else "—")
    return (f"{row.optimizer:<26}{row.bound_ms:7.2f}{fused:8.2f}{fused / row.bound_ms:7.2f}"
            f"{row.bytes_per_step / fused / 1e6:6.0f}{row.ms['foreach']:9.2f}{row.ms['reference']:10.2f}"
            f"{best_text}{speedup}   {memory}")


def _mb(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def markdown(result: dict) -> str:
    """The measured rows as a Markdown table (docs/speed.md's)."""
    lines = ["| case | optimizer | bound ms | fused ms | × bound | foreach ms | reference ms | torch best ms (path) "
             "| fused speed-up vs torch |",
             "|---|---|---|---|---|---|---|---|---|"]
    for case, measured in result["cases"].items():
        for row in measured["rows"]:
            ms = row["ms"]
            torch_times = {k: v for k, v in ms.items() if k.startswith("torch ")}
            best = min(torch_times, key=torch_times.__getitem__) if torch_times else None
            best_text = f"{torch_times[best]:.2f} ({best.removeprefix('torch ')})" if best else "—"
            speedup = f"{torch_times[best] / ms['fused']:.2f}×" if best else "—"
            lines.append(f"| ({case}) | {row['optimizer']} | {row['bound_ms']:.2f} | {ms['fused']:.2f} | "
                         f"{ms['fused'] / row['bound_ms']:.2f} | {ms['foreach']:.2f} | {ms['reference']:.2f} | "
                         f"{best_text} | {speedup} |")
    return "\n".join(lines)


def write_json(result: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
