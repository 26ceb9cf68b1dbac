"""A step under ``torch.compile``: the fused path is one graph break, the foreach path one graph."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

import descentlab.optim as dl


def _train(options: dict, compiled: bool, steps: int = 4) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x, y = torch.randn(16, 6), torch.randn(16, 1)
    lr = torch.tensor(0.01) if options.get("foreach") else 0.01  # torch's advice with a scheduler
    opt = dl.Nadam(model.parameters(), lr=lr, weight_decay=0.01, **options)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    def step() -> None:
        opt.step()

    if compiled:
        step = torch.compile(step)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        step()
        scheduler.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("options", [{}, {"foreach": True}], ids=["default", "foreach"])
def test_compiled_step_equals_eager_without_recompiling(options):
    """Compiled once, never recompiled though the scheduler changes lr (dynamo raises if it tries), equal to eager."""
    torch._dynamo.reset()
    counters.clear()
    with torch._dynamo.config.patch(recompile_limit=1, fail_on_recompile_limit_hit=True):
        compiled = _train(options, compiled=True)
    eager = _train(options, compiled=False)
    if options:  # traced: inductor's kernels round the scalars its own way
        torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-7)
        assert counters["stats"]["unique_graphs"] == 1
    else:  # the fused kernel itself, behind one graph break
        assert all(torch.equal(a, b) for a, b in zip(compiled, eager, strict=True))
        assert counters["stats"]["unique_graphs"] == 0
    torch._dynamo.reset()
