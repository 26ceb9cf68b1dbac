"""Where a trial computes: the device and mixed precision of its training and evaluation.

A problem keeps its data on the CPU. Training batches are moved to the trial's device (pinned
and copied without blocking the host on CUDA); evaluation keeps the problem's own code
unchanged: the model's inputs are moved to its device on the way in and its outputs back to the
CPU on the way out, so a problem's metric code sees CPU tensors as it always did.
"""

from __future__ import annotations

import contextlib

import torch

AMP = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve(device: object) -> str:
    """``"auto"`` → ``"cuda"`` where a GPU is visible, else ``"cpu"``; a named device is checked."""
    if not isinstance(device, str):
        raise ValueError(f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:N'. Received: device={device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return "cpu"
    if kind != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:N'. Received: device={device!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"`device` is {device!r} but this machine has no CUDA device visible to torch; use "
                         f"device='cpu' or 'auto'. Received: device={device!r}")
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"`device` names GPU {index}, but {torch.cuda.device_count()} are visible. "
                         f"Received: device={device!r}")
    return device


def check_amp(amp: object) -> str | None:
    if amp is not None and amp not in AMP:
        raise ValueError(f"`amp` must be None, 'bf16' or 'fp16'. Received: amp={amp!r}")
    return amp


def move(batch, device: str):
    """A batch (tensor, tuple, list or dict of them, nested) on ``device``; other values as they are."""
    if torch.is_tensor(batch):
        if torch.device(device).type != "cuda" or batch.device.type != "cpu":
            return batch.to(device)
        return batch.pin_memory().to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: move(value, device) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(move(value, device) for value in batch)
    return batch


def autocast(device: str, amp: str | None):
    """The mixed-precision region of a forward pass (nothing when ``amp`` is None)."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=AMP[amp])


def scaler(device: str, amp: str | None):
    """A GradScaler for fp16 (its small range underflows gradients); None otherwise."""
    return torch.amp.GradScaler(torch.device(device).type) if amp == "fp16" else None


@contextlib.contextmanager
def evaluating(model: torch.nn.Module, device: str, amp: str | None, hooks: bool = True):
    """Evaluate a model living on ``device`` with a problem's CPU-side code (see the module doc);
    ``hooks=False`` for a problem that moves its batches to the model's device itself."""
    if device == "cpu" or not hooks:
        with autocast(device, amp):
            yield
        return

    def inputs(module, args, kwargs):
        return move(args, device), move(kwargs, device)

    def outputs(module, args, output):
        return move_to_cpu(output)

    handles = [model.register_forward_pre_hook(inputs, with_kwargs=True), model.register_forward_hook(outputs)]
    try:
        with autocast(device, amp):
            yield
    finally:
        for handle in handles:
            handle.remove()


def move_to_cpu(value):
    """A model's output on the CPU, half precision widened to float32 for the metric code."""
    if torch.is_tensor(value):
        return (value.float() if value.dtype in AMP.values() else value).cpu()
    if isinstance(value, dict):  # in place: a dict subclass (a model output object) keeps its type
        for key in list(value):
            value[key] = move_to_cpu(value[key])
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(move_to_cpu(v) for v in value)
    return value
