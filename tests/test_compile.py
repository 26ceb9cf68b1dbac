"""A step under ``torch.compile``: the fused path is one graph break, the foreach path one graph."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from torch._dynamo.utils import counters

import descentlab.optim as dl

# torch's Optimizer.step wrapper opens a profiler range that dynamo drops, and says so once per
# process, for torch's own optimizers too; anything else dynamo or inductor logs is ours
TORCH_OWN = "Profiler record function"


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


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("options", [{}, {"foreach": True}], ids=["default", "foreach"])
def test_compiled_step_equals_eager_without_recompiling_or_warnings(options):
    """Compiled once, never recompiled though the scheduler changes lr (dynamo raises if it tries),
    nothing logged by dynamo or inductor and no warning, equal to eager."""
    torch._dynamo.reset()
    counters.clear()
    records = _Records()
    loggers = [logging.getLogger(name) for name in ("torch._dynamo", "torch._inductor")]
    for logger in loggers:
        logger.addHandler(records)
    try:
        with warnings.catch_warnings(record=True) as caught, torch._dynamo.config.patch(
            recompile_limit=1, fail_on_recompile_limit_hit=True
        ):
            warnings.simplefilter("always")
            compiled = _train(options, compiled=True)
    finally:
        for logger in loggers:
            logger.removeHandler(records)
    assert [message for message in records.messages if not message.startswith(TORCH_OWN)] == []
    # (torch's modules that compiling imports lazily may deprecate their own APIs: not ours to judge)
    assert [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)] == []
    eager = _train(options, compiled=False)
    if options:  # traced: inductor's kernels round the scalars its own way
        torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-7)
        assert counters["stats"]["unique_graphs"] == 1
    else:  # the fused kernel itself, behind one graph break
        assert all(torch.equal(a, b) for a, b in zip(compiled, eager, strict=True))
        assert counters["stats"]["unique_graphs"] == 0
    torch._dynamo.reset()
