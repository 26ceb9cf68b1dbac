"""Keras layers ⇄ torch modules: which pairs correspond, and how a Keras layer's weights become a
torch module's parameters (transposed kernels, reordered gates, split biases).

The layers with weights are matched in order: the k-th Keras layer that holds weights with the k-th
torch module that holds parameters directly. A pair that is not one of :data:`COPIES` is an error
naming both, as is a count that differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def pairs(keras_model, torch_model: nn.Module) -> list[tuple[Any, str, nn.Module]]:
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


def converted(layer, module: nn.Module) -> dict[str, np.ndarray]:
    """The Keras layer's current weights as the torch module's parameters and buffers, by name."""
    return COPIES[type(layer).__name__][1]([np.asarray(w) for w in layer.get_weights()], module)


def copy_weights(keras_model, torch_model: nn.Module) -> list[tuple[Any, str, nn.Module]]:
    """Copy every Keras layer's weights into its torch module (see the module docstring); return the pairs."""
    matched = pairs(keras_model, torch_model)
    for layer, name, module in matched:
        values = converted(layer, module)
        tensors = dict(module.named_parameters(recurse=False)) | dict(module.named_buffers(recurse=False))
        unset = sorted(set(dict(module.named_parameters(recurse=False))) - set(values))
        missing = sorted(set(values) - set(tensors))
        if unset or missing:  # a bias on one side only (use_bias= in Keras, bias= in torch), a norm's scale...
            has, lacks, what = (name, layer.name, unset[0]) if unset else (layer.name, name, missing[0])
            raise ValueError(f"the Keras layer {layer.name!r} and the torch module {name!r} differ: {has!r} has "
                             f"{what}, {lacks!r} none (use_bias=/center=/scale= in Keras, bias= in torch)")
        for key, value in values.items():
            target = tensors[key]
            if tuple(target.shape) != value.shape:
                raise ValueError(f"the Keras layer {layer.name!r} gives {key} of shape {value.shape}, the torch module "
                                 f"{name!r} has {tuple(target.shape)}: the two layers differ in size")
            with torch.no_grad():
                target.copy_(torch.as_tensor(np.ascontiguousarray(value)))
    return matched


def option_differences(layer, name: str, module: nn.Module) -> list[str]:
    """The options of one matched pair that make the two compute differently (in training or in evaluation)."""
    kind = type(layer).__name__
    said = []
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if module.momentum is None or not np.isclose(module.momentum, 1 - layer.momentum):
            said.append(f"momentum={layer.momentum} in Keras is momentum={1 - layer.momentum:g} in torch "
                        f"(Keras weighs the old average, torch the new batch); {name!r} has {module.momentum}")
        said.append("its moving variance averages the biased batch variance, torch's the unbiased one (n/(n − 1) "
                    "times larger): evaluation outputs differ slightly after training, the trained weights do not")
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)) and \
            not np.isclose(module.eps, layer.epsilon):
        said.append(f"epsilon={layer.epsilon} in Keras, eps={module.eps} in {name!r}")
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        if tuple(module.stride) != tuple(layer.strides) or tuple(module.dilation) != tuple(layer.dilation_rate):
            said.append(f"strides={layer.strides} and dilation_rate={layer.dilation_rate} in Keras, stride="
                        f"{module.stride} and dilation={module.dilation} in {name!r}")
        if _padding(module) != layer.padding:
            said.append(f"padding={layer.padding!r} in Keras, padding={module.padding!r} in {name!r}")
    return [f"the Keras {kind} {layer.name!r}: {text}" for text in said]


def _padding(conv: nn.Conv1d | nn.Conv2d) -> str:
    """A torch convolution's padding in Keras's words: 'valid', 'same' or the torch value itself."""
    if isinstance(conv.padding, str):  # "valid" or "same"
        return conv.padding
    if not any(conv.padding):
        return "valid"
    same = tuple(d * (k - 1) // 2 for k, d in zip(conv.kernel_size, conv.dilation, strict=True))
    odd = all(d * (k - 1) % 2 == 0 for k, d in zip(conv.kernel_size, conv.dilation, strict=True))
    return "same" if odd and set(conv.stride) == {1} and tuple(conv.padding) == same else repr(conv.padding)


def _every_layer(model) -> list:
    found = []
    for layer in getattr(model, "layers", []):
        found += [layer, *_every_layer(layer)]
    return found


# Keras layers that draw random numbers in training: Keras and torch cannot draw the same ones
RANDOM_IN_TRAINING = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianDropout", "GaussianNoise",
                      "AlphaDropout")


def known_differences(keras_model, torch_model: nn.Module, matched) -> list[str]:
    """What makes the two models train or compute differently though their weights are equal, each naming
    the layer: layer options, random layers in training, penalties and constraints outside the optimizer."""
    said = [text for layer, name, module in matched for text in option_differences(layer, name, module)]
    for layer in _every_layer(keras_model):
        kind = type(layer).__name__
        if kind in RANDOM_IN_TRAINING and getattr(layer, "rate", 1) != 0:
            said.append(f"the Keras {kind} {layer.name!r} draws its own random numbers in training; torch cannot draw "
                        "the same: check the port with its rate at 0")
        for attribute in ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                          "kernel_constraint", "bias_constraint"):
            if getattr(layer, attribute, None) is not None:
                where = "Keras adds its penalty to the loss: add it to loss_fn" if "regularizer" in attribute else \
                    "Keras applies it after each update: apply it after optimizer.step()"
                said.append(f"the Keras {kind} {layer.name!r} has a {attribute}: {where}")
    for name, module in torch_model.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p:
            said.append(f"the torch module {name!r} ({type(module).__name__}) draws its own random numbers in "
                        "training: check the port with p=0")
    return said
