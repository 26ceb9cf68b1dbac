"""descentlab inside the tools PyTorch users train with: each use locked in against torch's optimizer.

Lightning and Hugging Face's Trainer are the ``integrations`` extra; their tests are skipped
without them. DDP and FSDP2 run in two gloo processes on the CPU (``distributed_worker.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import descentlab.optim as dl

PATHS = {"reference": {"foreach": False}, "foreach": {"foreach": True}, "default": {}}


def _mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def _data(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(n, 6, generator=generator), torch.randn(n, 1, generator=generator)


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ---------------------------------------------------------------- two processes: DDP and FSDP2


@pytest.fixture(scope="module")
def distributed(tmp_path_factory) -> dict:
    """One spawn of two gloo processes running every distributed check; rank -> records."""
    pytest.importorskip("torch.distributed.fsdp")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    directory = tmp_path_factory.mktemp("distributed")
    worker = Path(__file__).with_name("distributed_worker.py")
    source = str(Path(dl.__file__).parents[2])  # this checkout's descentlab, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    processes = [
        subprocess.Popen([sys.executable, str(worker), str(rank), str(directory / "init"), str(directory)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in range(2)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    return {rank: json.loads((directory / f"rank{rank}.json").read_text()) for rank in range(2)}


@pytest.mark.parametrize(
    "check",
    ["ddp-reference", "ddp-foreach", "ddp-default", "ddp-fused", "fsdp2-reference", "fsdp2-foreach", "fsdp2-default"],
)
def test_distributed_equals_torch_adam_on_every_rank(distributed, check):
    """DDP and FSDP2 (DTensor parameters): 5 steps equal to torch's Adam to 1e-7, ranks identical."""
    for rank in range(2):
        record = distributed[rank][check]
        assert "error" not in record, f"rank {rank}: {record.get('error')}"
        assert record["vs_torch"] <= 1e-7
        assert record["ranks"] == 0.0


# ---------------------------------------------------------------- Lightning


def test_lightning_fit_and_resume_equal_torch_nadam(tmp_path):
    """configure_optimizers returning Nadam + StepLR: equal to torch's NAdam; fit(ckpt_path=...) resumes exactly."""
    lightning = pytest.importorskip("lightning")
    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)

    class Module(lightning.LightningModule):
        def __init__(self, optimizer) -> None:
            super().__init__()
            self.net = _mlp()
            self.optimizer = optimizer

        def training_step(self, batch, batch_index):
            inputs, targets = batch
            return torch.nn.functional.mse_loss(self.net(inputs), targets)

        def configure_optimizers(self):
            opt = self.optimizer(self.net.parameters(), lr=0.01, weight_decay=0.01)
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)}

    def fit(optimizer, epochs: int, save: Path | None = None, resume: Path | None = None) -> Module:
        module = Module(optimizer)
        trainer = lightning.Trainer(
            max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, deterministic=True,
        )
        trainer.fit(module, loader, ckpt_path=resume)
        if save:
            trainer.save_checkpoint(save)
        return module

    ours = fit(dl.Nadam, 4)
    theirs = fit(torch.optim.NAdam, 4)
    torch.testing.assert_close(_params(ours), _params(theirs), rtol=0, atol=1e-6)
    fit(dl.Nadam, 2, save=tmp_path / "half.ckpt")
    resumed = fit(dl.Nadam, 4, resume=tmp_path / "half.ckpt")
    assert all(map(torch.equal, _params(resumed), _params(ours)))


# ---------------------------------------------------------------- Hugging Face Trainer


def test_hf_trainer_and_resume_equal_torch_adamw(tmp_path):
    """Trainer(optimizers=(AdamW, None)) on a tiny local BERT: equal to torch's AdamW; resuming is exact."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    config = transformers.BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=2,
    )
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 40, (32, 8), generator=generator)
    labels = torch.randint(0, 2, (32,), generator=generator)
    dataset = [{"input_ids": ids[i], "labels": labels[i]} for i in range(32)]

    def train(optimizer, output: Path, resume: Path | None = None, max_steps: int = 8):
        torch.manual_seed(0)
        model = transformers.BertForSequenceClassification(config)
        args = transformers.TrainingArguments(
            output_dir=str(output), max_steps=max_steps, per_device_train_batch_size=8, save_steps=4,
            report_to=[], use_cpu=True, logging_strategy="no", disable_tqdm=True, seed=0, data_seed=0,
        )
        opt = optimizer(model.parameters(), lr=1e-3, weight_decay=0.01)
        transformers.Trainer(model=model, args=args, train_dataset=dataset, optimizers=(opt, None)).train(
            resume_from_checkpoint=str(resume) if resume else None
        )
        return _params(model)

    ours = train(dl.AdamW, tmp_path / "ours")
    theirs = train(torch.optim.AdamW, tmp_path / "theirs")
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    resumed = train(dl.AdamW, tmp_path / "resumed", resume=tmp_path / "ours" / "checkpoint-4")
    assert all(map(torch.equal, resumed, ours))


# ---------------------------------------------------------------- torch.optim's own tools


def _run(make_optimizer, make_scheduler=None, steps: int = 12, hook=None) -> tuple:
    model = _mlp()
    x, y = _data()
    opt = make_optimizer(model.parameters())
    scheduler = make_scheduler(opt) if make_scheduler else None
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        if scheduler:
            scheduler.step()
    return _params(model), opt


@pytest.mark.parametrize("path", list(PATHS))
def test_one_cycle_lr_cycles_betas_and_momentum(path):
    """OneCycleLR writes ``betas`` (Adam) and ``momentum`` (SGD) every step; the steps follow torch's."""
    def one_cycle(opt):
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=12)

    for ours, theirs in [
        (lambda ps: dl.Adam(ps, lr=0.01, **PATHS[path]), lambda ps: torch.optim.Adam(ps, lr=0.01)),
        (lambda ps: dl.SGD(ps, lr=0.01, momentum=0.9, nesterov=True, **PATHS[path]),
         lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True)),
    ]:
        (a, opt), (b, reference) = _run(ours, one_cycle), _run(theirs, one_cycle)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        key = "betas" if "betas" in opt.param_groups[0] else "momentum"
        assert opt.param_groups[0][key] == reference.param_groups[0][key]


@pytest.mark.parametrize("path", list(PATHS))
def test_grad_scaler_skips_inf_steps(path):
    """A step whose gradients overflow is skipped (parameters, state and counts untouched), as with torch's Adam."""
    def train(optimizer):
        model = _mlp()
        x, y = _data()
        opt = optimizer(model.parameters())
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
        for step in range(6):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            scaler.scale(loss * (float("inf") if step == 2 else 1.0)).backward()
            scaler.step(opt)
            scaler.update()
        return _params(model), opt, scaler.get_scale()

    ours, opt, scale = train(lambda ps: dl.Adam(ps, lr=0.01, **PATHS[path]))
    theirs, reference, reference_scale = train(lambda ps: torch.optim.Adam(ps, lr=0.01))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert scale == reference_scale
    assert [float(s["step"]) for s in opt.state.values()] == [5.0] * 4  # the overflowing step was skipped


def test_optimizer_hooks_run_around_every_step():
    """Step pre/post hooks (per optimizer, global) and state-dict hooks run as in torch; a pre-hook may edit grads."""
    calls = []

    def halve_grads(opt, args, kwargs):
        calls.append("pre")
        for group in opt.param_groups:
            for p in group["params"]:
                p.grad.mul_(0.5)

    def run(optimizer):
        model = _mlp()
        x, y = _data()
        opt = optimizer(model.parameters())
        handles = [
            opt.register_step_pre_hook(halve_grads),
            opt.register_step_post_hook(lambda *_: calls.append("post")),
            register_optimizer_step_post_hook(lambda *_: calls.append("global")),
            opt.register_state_dict_post_hook(lambda _, state: {**state, "tag": 1}),
        ]
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        state = opt.state_dict()
        for handle in handles:
            handle.remove()
        return _params(model), state

    ours, state = run(lambda ps: dl.Adam(ps, lr=0.01))
    assert calls == ["pre", "post", "global"] * 3 and state["tag"] == 1
    theirs, _ = run(lambda ps: torch.optim.Adam(ps, lr=0.01))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_swa_utils_average_and_swalr():
    """AveragedModel + SWALR around a descentlab SGD follow the same run with torch's SGD."""
    from torch.optim.swa_utils import SWALR, AveragedModel

    def run(optimizer):
        model = _mlp()
        x, y = _data()
        opt = optimizer(model.parameters())
        averaged, swa = AveragedModel(model), SWALR(opt, swa_lr=0.02, anneal_epochs=3)
        for _ in range(8):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
            averaged.update_parameters(model)
            swa.step()
        return _params(averaged.module), opt.param_groups[0]["lr"]

    ours, lr = run(lambda ps: dl.SGD(ps, lr=0.05, momentum=0.9))
    theirs, reference_lr = run(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert lr == reference_lr
