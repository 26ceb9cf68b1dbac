"""Every check that needs two processes, run in one spawn of two gloo ranks on the CPU.

Starting the processes and importing torch's distributed packages costs more than all the checks
together, so one spawn (the ``two_ranks`` fixture in ``conftest.py``) serves two test files:

- ``test_integrations.py``: DDP and FSDP2 (``fully_shard`` per layer) train a small model with a
  descentlab Adam on every path and with torch's Adam; ``rank{r}.json`` records the largest
  difference between them, between the ranks, and the RuntimeWarnings the step gave;
- ``test_shared_storage.py``: ZeRO with bucket views (``zero{r}.pt``), FSDP2 with a
  one-DTensor param group on every path plus a ``torch.distributed.checkpoint`` round trip
  (``fsdp{r}.pt``), FSDP2 with clipping turned on after two steps (``fsdp_clipping{r}.pt``), and
  replicated DTensors with gradients placed otherwise (``placements{r}.pt``).

Each check records its error instead of raising (``errors{r}.json`` for the last two), so that
one failure does not hide the others.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel

import descentlab.optim as dl

PATHS = {"reference": {"foreach": False, "fused": False}, "foreach": {"foreach": True}, "fused": {"fused": True},
         "default": {}}
STEPS = 5


# ---------------------------------------------------------------- test_integrations: DDP and FSDP2


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def _train(wrapper: str, make_optimizer, rank: int) -> tuple[list[torch.Tensor], list[str]]:
    """The parameters after ``STEPS`` steps, and the path of each param group (descentlab's)."""
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
    paths = [opt.path(group) for group in opt.param_groups] if hasattr(opt, "path") else []
    return [p.full_tensor() if hasattr(p, "full_tensor") else p.detach() for p in model.parameters()], paths


def _largest(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


def integrations(rank: int) -> dict:
    records = {}
    for wrapper in ("ddp", "fsdp2"):
        for path, options in PATHS.items():
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", RuntimeWarning)
                    ours, paths = _train(wrapper, lambda params: dl.Adam(params, lr=0.01, **options), rank)  # noqa: B023
                theirs, _ = _train(wrapper, lambda params: torch.optim.Adam(params, lr=0.01), rank)
                flat = torch.cat([p.reshape(-1) for p in ours])
                gathered = [torch.empty_like(flat) for _ in range(2)]
                dist.all_gather(gathered, flat)
                records[f"{wrapper}-{path}"] = {
                    "vs_torch": _largest(ours, theirs),
                    "ranks": (gathered[0] - gathered[1]).abs().max().item(),
                    "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
                    "paths": paths,
                }
            except Exception as error:
                records[f"{wrapper}-{path}"] = {"error": f"{type(error).__name__}: {error}"}
    return records


# ---------------------------------------------------------------- test_shared_storage: ZeRO, FSDP2 groups, DCP


def zero() -> dict:
    """ZeRO with ``parameters_as_bucket_view``: the parameters are views of ZeRO's buckets."""
    from torch.distributed.optim import ZeroRedundancyOptimizer

    results = {}
    for name, kwargs in [("torch", None), *PATHS.items()]:
        params = [torch.nn.Parameter(torch.ones(4)), torch.nn.Parameter(torch.ones(4))]
        if kwargs is None:
            optimizer = ZeroRedundancyOptimizer(params, optimizer_class=torch.optim.Adam, lr=0.1,
                                                parameters_as_bucket_view=True)
        else:
            optimizer = ZeroRedundancyOptimizer(params, optimizer_class=dl.Adam, lr=0.1,
                                                parameters_as_bucket_view=True, **kwargs)
        for _ in range(3):
            optimizer.zero_grad()
            (params[0].sum() + params[1].sum()).backward()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                optimizer.step()
        results[name] = torch.stack([p.detach() for p in params])
    return results


def _fsdp_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
    fully_shard(model)
    return model


def _fsdp_optimizer(model, kwargs):
    no_decay = [model[1].weight]  # a group of one DTensor (the LayerNorm weight), as trainers make
    decay = [p for p in model.parameters() if p is not model[1].weight]
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    if kwargs is None:
        return torch.optim.Adam(groups, lr=0.01, weight_decay=0.1)
    return dl.Adam(groups, lr=0.01, weight_decay=0.1, **kwargs)


def _fsdp_train(model, optimizer, steps, first=0):
    for step in range(first, first + steps):
        x = torch.randn(5, 4, generator=torch.Generator().manual_seed(step))
        model(x).square().sum().backward()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            optimizer.step()
        optimizer.zero_grad()


def fsdp_groups_and_checkpoint(folder: str) -> dict:
    """FSDP2 with two param groups on every path; the default path's optimizer through DCP into a fresh one."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    results = {}
    for name, kwargs in [("torch", None), *PATHS.items()]:
        model = _fsdp_model()
        optimizer = _fsdp_optimizer(model, kwargs)
        _fsdp_train(model, optimizer, 3)
        results[name] = [p.full_tensor() for p in model.parameters()]
    # the last (default path) optimizer through torch.distributed.checkpoint, into a fresh one
    checkpoint = os.path.join(folder, "checkpoint")
    dcp.save({"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)},
             checkpoint_id=checkpoint)
    restored_model = _fsdp_model()
    restored = _fsdp_optimizer(restored_model, {})
    loaded = {"model": get_model_state_dict(restored_model),
              "optim": get_optimizer_state_dict(restored_model, restored)}  # a step at lr=0 makes state
    dcp.load(loaded, checkpoint_id=checkpoint)
    set_model_state_dict(restored_model, loaded["model"])
    set_optimizer_state_dict(restored_model, restored, loaded["optim"])
    _fsdp_train(model, optimizer, 2, first=3)
    _fsdp_train(restored_model, restored, 2, first=3)
    results["paths"] = [optimizer.path(group) for group in optimizer.param_groups] + \
        [restored.path(group) for group in restored.param_groups]
    results["continued"] = [p.full_tensor() for p in model.parameters()]
    results["restored"] = [p.full_tensor() for p in restored_model.parameters()]
    return results


def fsdp_clipping_turned_on() -> dict:
    """FSDP2 on the default path and on foreach, with clipping turned on after two steps (the norm spans both ranks)."""
    results = {}
    for name, kwargs in [("default", {}), ("foreach", {"foreach": True})]:
        model = _fsdp_model()
        optimizer = _fsdp_optimizer(model, kwargs)
        _fsdp_train(model, optimizer, 2)
        for group in optimizer.param_groups:
            group["clipnorm"] = 0.05
        _fsdp_train(model, optimizer, 2, first=2)
        results[name] = [p.full_tensor() for p in model.parameters()]
        results[f"{name} paths"] = [optimizer.path(group) for group in optimizer.param_groups]
    return results


def gradients_placed_unlike_their_parameters() -> dict:
    """Replicated DTensors (tensor parallelism's norms) given a Partial gradient and a sharded one, per path."""
    from torch.distributed.tensor import DTensor, Partial, Replicate, Shard, init_device_mesh

    mesh = init_device_mesh("cpu", (2,))
    rank = dist.get_rank()
    results = {}
    for name, kwargs in [("default", {}), ("foreach", {"foreach": True})]:
        params = [torch.nn.Parameter(DTensor.from_local(torch.ones(4, 2), mesh, [Replicate()])) for _ in range(2)]
        optimizer = dl.SGD(params, lr=0.1, momentum=0.5, **kwargs)
        for step in range(2):
            local = torch.arange(8.0).view(4, 2) * (rank + 1) + step
            params[0].grad = DTensor.from_local(local, mesh, [Partial()])
            params[1].grad = DTensor.from_local(local[2 * rank: 2 * rank + 2], mesh, [Shard(0)])
            optimizer.step()
        results[name] = [p.to_local().clone() for p in params]
        results[f"{name} path"] = optimizer.path(optimizer.param_groups[0])
    return results


def main(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)  # two ranks on a small host: threads would only wait for each other
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(integrations(rank)))
        errors = {}
        checks = [("zero", zero), ("fsdp", lambda: fsdp_groups_and_checkpoint(out_dir)),
                  ("fsdp_clipping", fsdp_clipping_turned_on), ("placements", gradients_placed_unlike_their_parameters)]
        for name, run in checks:
            try:
                torch.save(run(), os.path.join(out_dir, f"{name}{rank}.pt"))
            except Exception:  # recorded, so that one failing check does not hide the others
                errors[name] = traceback.format_exc(limit=-3)
        Path(out_dir, f"errors{rank}.json").write_text(json.dumps(errors))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
