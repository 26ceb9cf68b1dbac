"""Keras layers ⇄ torch modules: which pairs correspond, and how a Keras layer's weights become a
torch module's parameters (transposed kernels, reordered gates, split biases).

The layers with weights are matched in order: the k-th Keras layer that holds weights with the k-th
torch module that holds parameters directly. A pair that is not one of :data:`COPIES` is an error
naming both, as is a count that differs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def _dense(weights, module):
    kernel, *bias = weights
    return {"weight": kernel.T, **({"bias": bias[0]} if bias else {})}


def _conv(weights, module):
    kernel, *bias = weights  # Keras (k..., in, out) -> torch (out, in, k...)
    order = (kernel.ndim - 1, kernel.ndim - 2, *range(kernel.ndim - 2))
    return {"weight": kernel.transpose(order), **({"bias": bias[0]} if bias else {})}


def _embedding(weights, module):
    return {"weight": weights[0]}


def _gates(matrix: np.ndarray, order: list[int]) -> np.ndarray:
    """Reorder the gate blocks of the last axis (Keras stacks gates along its columns)."""
    blocks = np.split(matrix, len(order), axis=-1)
    return np.concatenate([blocks[i] for i in order], axis=-1)


def _recurrent(order: list[int]):
    """Keras (kernel (in, g·u), recurrent (u, g·u), bias) → torch's ``*_l0`` parameters, gates in torch's order."""

    def copy(weights, module):
        kernel, recurrent, *bias = weights
        out = {"weight_ih_l0": _gates(kernel, order).T, "weight_hh_l0": _gates(recurrent, order).T}
        if bias:
            b = bias[0]
            if b.ndim == 2:  # GRU with reset_after: an input bias and a recurrent bias
                out["bias_ih_l0"], out["bias_hh_l0"] = _gates(b[0], order), _gates(b[1], order)
            else:  # one bias: torch's two add up to it
                out["bias_ih_l0"], out["bias_hh_l0"] = _gates(b, order), np.zeros_like(b)
        return out

    return copy


def _norm(weights, module):
    names = ["weight", "bias"]
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        names += ["running_mean", "running_var"]
    return dict(zip(names, weights, strict=True))


# Keras class -> (torch classes it may become, the copy)
COPIES: dict[str, tuple[tuple[type, ...], Callable]] = {
    "Dense": ((nn.Linear,), _dense),
    "Conv1D": ((nn.Conv1d,), _conv),
    "Conv2D": ((nn.Conv2d,), _conv),
    "Embedding": ((nn.Embedding,), _embedding),
    "LSTM": ((nn.LSTM,), _recurrent([0, 1, 2, 3])),  # i, f, c, o in both
    "GRU": ((nn.GRU,), _recurrent([1, 0, 2])),  # Keras z, r, h; torch r, z, n
    "SimpleRNN": ((nn.RNN,), _recurrent([0])),
    "BatchNormalization": ((nn.BatchNorm1d, nn.BatchNorm2d), _norm),
    "LayerNormalization": ((nn.LayerNorm,), _norm),
}


def keras_layers(model) -> list:
    """The Keras layers that hold weights, in order (nested models flattened)."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            found += keras_layers(layer)
        elif layer.weights:
            found.append(layer)
    return found


def torch_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The torch modules that hold parameters directly, in registration order, with their names."""
    return [(name, module) for name, module in model.named_modules()
            if any(True for _ in module.parameters(recurse=False))]


def pairs(keras_model, torch_model: nn.Module) -> list[tuple[object, str, nn.Module]]:
    """``(Keras layer, torch name, torch module)`` for every layer with weights, checked to correspond."""
    theirs, ours = keras_layers(keras_model), torch_modules(torch_model)
    matched = []
    for i, layer in enumerate(theirs):
        kind = type(layer).__name__
        if i >= len(ours):
            raise ValueError(f"the Keras layer {layer.name!r} ({kind}) has no torch module left to match: the torch "
                             f"model has {len(ours)} modules with parameters, the Keras model {len(theirs)} layers")
        name, module = ours[i]
        if kind not in COPIES:
            raise ValueError(f"the Keras layer {layer.name!r} ({kind}) cannot be ported: descentlab copies "
                             f"{', '.join(COPIES)}")
        if not isinstance(module, COPIES[kind][0]):
            raise ValueError(f"the Keras layer {layer.name!r} ({kind}) meets the torch module {name!r} "
                             f"({type(module).__name__}): expected {' or '.join(c.__name__ for c in COPIES[kind][0])}")
        matched.append((layer, name, module))
    if len(ours) > len(theirs):
        name, module = ours[len(theirs)]
        raise ValueError(f"the torch module {name!r} ({type(module).__name__}) has no Keras layer to match")
    return matched


def copy_weights(keras_model, torch_model: nn.Module) -> list[tuple[object, str, nn.Module]]:
    """Copy every Keras layer's weights into its torch module (see the module docstring); return the pairs."""
    matched = pairs(keras_model, torch_model)
    for layer, name, module in matched:
        weights = [np.asarray(w) for w in layer.get_weights()]
        values = COPIES[type(layer).__name__][1](weights, module)
        tensors = dict(module.named_parameters(recurse=False)) | dict(module.named_buffers(recurse=False))
        for key, value in values.items():
            target = tensors[key]
            if tuple(target.shape) != value.shape:
                raise ValueError(f"the Keras layer {layer.name!r} gives {key} of shape {value.shape}, the torch module "
                                 f"{name!r} has {tuple(target.shape)}: the two layers differ in size")
            with torch.no_grad():
                target.copy_(torch.as_tensor(np.ascontiguousarray(value)))
    return matched
