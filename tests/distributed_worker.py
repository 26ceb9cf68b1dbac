"""The checks of ``test_integrations.py`` that need two processes: DDP and FSDP2 over gloo on the CPU.

One spawn runs them all (starting the process group costs more than the checks). Each check
trains the same small model with a descentlab optimizer and with torch's Adam, and records the
largest difference between them and between the ranks; the test reads the records.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel

import descentlab.optim as dl

PATHS = {"reference": {"foreach": False}, "foreach": {"foreach": True}, "default": {}, "fused": {"fused": True}}
CHECKS = [("ddp", path) for path in PATHS] + [("fsdp2", path) for path in ("reference", "foreach", "default")]
STEPS = 5


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def _train(wrapper: str, make_optimizer, rank: int) -> list[torch.Tensor]:
    model = _model()
    if wrapper == "ddp":
        model = DistributedDataParallel(model)
    else:
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer)
        fully_shard(model)
    opt = make_optimizer(model.parameters())
    generator = torch.Generator().manual_seed(rank)  # each rank its own data
    for _ in range(STEPS):
        x, y = torch.randn(4, 8, generator=generator), torch.randn(4, 1, generator=generator)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return [p.full_tensor() if hasattr(p, "full_tensor") else p.detach() for p in model.parameters()]


def _largest(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


def main(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    records = {}
    for wrapper, path in CHECKS:
        name = f"{wrapper}-{path}"
        try:
            ours = _train(wrapper, lambda params: dl.Adam(params, lr=0.01, **PATHS[path]), rank)  # noqa: B023
            theirs = _train(wrapper, lambda params: torch.optim.Adam(params, lr=0.01), rank)
            flat = torch.cat([p.reshape(-1) for p in ours])
            gathered = [torch.empty_like(flat) for _ in range(2)]
            dist.all_gather(gathered, flat)
            spread = (gathered[0] - gathered[1]).abs().max().item()
            records[name] = {"vs_torch": _largest(ours, theirs), "ranks": spread}
        except Exception as error:  # recorded, so that one failing check does not hide the others
            records[name] = {"error": f"{type(error).__name__}: {error}"}
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(records))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
