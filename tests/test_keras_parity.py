"""flavor="keras" against Keras 3 itself (torch backend), over 120 steps of random gradients.

In float64, hyperparameters are dyadic (exact in float32) because Keras stores the learning rate
in a float32 variable and rounds Python-float clip bounds and weight-decay factors to float32;
with dyadic values both sides compute the same float64 numbers. Clipping by norm goes through a
float32 ``maximum`` in Keras, so it is compared in float32, Keras's default dtype, like every
optimizer's default-hyperparameter run.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("Keras parity needs KERAS_BACKEND=torch", allow_module_level=True)

from descentlab import optim  # noqa: E402

K = keras.optimizers
LR = 2.0**-7
SHAPES = [(7, 5), (3,), (2, 3, 4)]

FLOAT64_CASES = {
    "sgd": (lambda p: optim.SGD(p, lr=LR, flavor="keras"), lambda: K.SGD(LR)),
    "sgd_momentum": (lambda p: optim.SGD(p, lr=LR, momentum=0.875, flavor="keras"), lambda: K.SGD(LR, momentum=0.875)),
    "sgd_nesterov": (
        lambda p: optim.SGD(p, lr=LR, momentum=0.9, nesterov=True, flavor="keras"),
        lambda: K.SGD(LR, momentum=0.9, nesterov=True),
    ),
    "sgd_nesterov_without_momentum": (
        lambda p: optim.SGD(p, lr=LR, nesterov=True, flavor="keras"), lambda: K.SGD(LR, nesterov=True)
    ),
    "adagrad": (lambda p: optim.Adagrad(p, lr=2.0**-5, flavor="keras"), lambda: K.Adagrad(2.0**-5)),
    "adagrad_accumulator": (
        lambda p: optim.Adagrad(p, lr=2.0**-5, initial_accumulator_value=0.5, eps=1e-5, flavor="keras"),
        lambda: K.Adagrad(2.0**-5, initial_accumulator_value=0.5, epsilon=1e-5),
    ),
    "adadelta": (lambda p: optim.Adadelta(p, lr=0.5, flavor="keras"), lambda: K.Adadelta(0.5)),
    "adadelta_rho": (
        lambda p: optim.Adadelta(p, lr=1.0, rho=0.8, eps=1e-6, flavor="keras"),
        lambda: K.Adadelta(1.0, rho=0.8, epsilon=1e-6),
    ),
    "rmsprop": (lambda p: optim.RMSprop(p, lr=2.0**-10, flavor="keras"), lambda: K.RMSprop(2.0**-10)),
    "rmsprop_centered_momentum": (
        lambda p: optim.RMSprop(p, lr=2.0**-10, momentum=0.5, centered=True, flavor="keras"),
        lambda: K.RMSprop(2.0**-10, momentum=0.5, centered=True),
    ),
    "adam": (lambda p: optim.Adam(p, lr=2.0**-10, flavor="keras"), lambda: K.Adam(2.0**-10)),
    "adam_amsgrad": (
        lambda p: optim.Adam(p, lr=2.0**-8, betas=(0.8, 0.99), amsgrad=True, flavor="keras"),
        lambda: K.Adam(2.0**-8, beta_1=0.8, beta_2=0.99, amsgrad=True),
    ),
    "adamax": (lambda p: optim.Adamax(p, lr=2.0**-10, flavor="keras"), lambda: K.Adamax(2.0**-10)),
    "nadam": (lambda p: optim.Nadam(p, lr=2.0**-10, flavor="keras"), lambda: K.Nadam(2.0**-10)),
    "nadam_betas": (
        lambda p: optim.Nadam(p, lr=2.0**-8, betas=(0.85, 0.995), flavor="keras"),
        lambda: K.Nadam(2.0**-8, beta_1=0.85, beta_2=0.995),
    ),
    "ftrl": (
        lambda p: optim.FTRL(p, lr=2.0**-3, lr_power=-0.625, l1=2.0**-7, l2=2.0**-6, l2_shrinkage=2.0**-5,
                             beta=2.0**-3, flavor="keras"),
        lambda: K.Ftrl(2.0**-3, learning_rate_power=-0.625, l1_regularization_strength=2.0**-7,
                       l2_regularization_strength=2.0**-6, l2_shrinkage_regularization_strength=2.0**-5,
                       beta=2.0**-3),
    ),
    "ftrl_defaults": (lambda p: optim.FTRL(p, lr=2.0**-4), lambda: K.Ftrl(2.0**-4)),
    "clipvalue": (lambda p: optim.SGD(p, lr=LR, clipvalue=0.5, flavor="keras"), lambda: K.SGD(LR, clipvalue=0.5)),
    "weight_decay": (
        lambda p: optim.Adam(p, lr=2.0**-10, weight_decay=2.0**-3, flavor="keras"),
        lambda: K.Adam(2.0**-10, weight_decay=2.0**-3),
    ),
    "adamw": (
        lambda p: optim.AdamW(p, lr=2.0**-8, weight_decay=2.0**-2, flavor="keras"),
        lambda: K.AdamW(2.0**-8, weight_decay=2.0**-2),
    ),
    "adamw_amsgrad": (
        lambda p: optim.AdamW(p, lr=2.0**-8, betas=(0.75, 0.875), weight_decay=2.0**-4, amsgrad=True, flavor="keras"),
        lambda: K.AdamW(2.0**-8, weight_decay=2.0**-4, beta_1=0.75, beta_2=0.875, amsgrad=True),
    ),
}

FLOAT32_CASES = {
    "sgd_nesterov": (
        lambda p: optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, flavor="keras"),
        lambda: K.SGD(0.01, momentum=0.9, nesterov=True),
    ),
    "adagrad": (lambda p: optim.Adagrad(p, flavor="keras"), lambda: K.Adagrad()),
    "adadelta": (lambda p: optim.Adadelta(p, flavor="keras"), lambda: K.Adadelta()),
    "rmsprop": (lambda p: optim.RMSprop(p, momentum=0.9, flavor="keras"), lambda: K.RMSprop(momentum=0.9)),
    "adam": (lambda p: optim.Adam(p, flavor="keras"), lambda: K.Adam()),
    "adamax": (lambda p: optim.Adamax(p, flavor="keras"), lambda: K.Adamax()),
    "nadam": (lambda p: optim.Nadam(p, flavor="keras"), lambda: K.Nadam()),
    "ftrl": (
        lambda p: optim.FTRL(p, lr=0.1, l1=0.01, l2=0.02, l2_shrinkage=0.03, beta=0.1, lr_power=-0.6),
        lambda: K.Ftrl(0.1, learning_rate_power=-0.6, l1_regularization_strength=0.01,
                       l2_regularization_strength=0.02, l2_shrinkage_regularization_strength=0.03, beta=0.1),
    ),
    "clipnorm": (lambda p: optim.Adam(p, clipnorm=0.5, flavor="keras"), lambda: K.Adam(clipnorm=0.5)),
    "global_clipnorm": (
        lambda p: optim.RMSprop(p, global_clipnorm=0.5, flavor="keras"), lambda: K.RMSprop(global_clipnorm=0.5)
    ),
    "clipvalue": (lambda p: optim.Nadam(p, clipvalue=0.1, flavor="keras"), lambda: K.Nadam(clipvalue=0.1)),
    "weight_decay": (lambda p: optim.SGD(p, weight_decay=0.01, flavor="keras"), lambda: K.SGD(weight_decay=0.01)),
    "adamw": (lambda p: optim.AdamW(p, flavor="keras"), lambda: K.AdamW()),
    "adamw_lr_weight_decay": (
        lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1, flavor="keras"), lambda: K.AdamW(0.01, weight_decay=0.1)
    ),
    # Keras-2 time decay is Keras 3's InverseTimeDecay(decay_steps=1) schedule; with momentum the
    # decayed rate enters the buffer step by step, which only the lr-inside-buffer form reproduces.
    "lr_decay_adam": (
        lambda p: optim.Adam(p, lr=0.01, lr_decay=0.05, flavor="keras"),
        lambda: K.Adam(K.schedules.InverseTimeDecay(0.01, decay_steps=1, decay_rate=0.05)),
    ),
    "lr_decay_sgd_momentum": (
        lambda p: optim.SGD(p, lr=0.05, momentum=0.9, lr_decay=0.05, flavor="keras"),
        lambda: K.SGD(K.schedules.InverseTimeDecay(0.05, decay_steps=1, decay_rate=0.05), momentum=0.9),
    ),
}


def _max_relative_difference(make_ours, make_keras, dtype: str, steps: int = 120) -> float:
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    ours = [torch.nn.Parameter(torch.tensor(x)) for x in start]
    theirs = [keras.Variable(x, dtype=dtype) for x in start]
    ours_opt, keras_opt = make_ours(ours), make_keras()
    for _ in range(steps):
        grads = [torch.tensor(rng.standard_normal(shape).astype(dtype) * 2) for shape in SHAPES]
        for p, g in zip(ours, grads, strict=True):
            p.grad = g.clone()
        ours_opt.step()
        keras_opt.apply_gradients(zip([g.clone() for g in grads], theirs, strict=True))
    return max(
        ((p.detach() - v.value.detach().cpu()).abs().max() / v.value.detach().cpu().abs().max()).item()
        for p, v in zip(ours, theirs, strict=True)
    )


@pytest.mark.parametrize("name", list(FLOAT64_CASES))
def test_keras_flavor_matches_keras_float64(name):
    assert _max_relative_difference(*FLOAT64_CASES[name], "float64") <= 1e-10


@pytest.mark.parametrize("name", list(FLOAT32_CASES))
def test_keras_flavor_matches_keras_float32(name):
    assert _max_relative_difference(*FLOAT32_CASES[name], "float32") <= 1e-5


# Keras's own golden tests (float32): x = 1 (10 coordinates), a first gradient of 0.01, then 0.1, 0.2, …, 1.0
GOLDEN = {
    "sgd_nesterov_without_momentum": (
        lambda p: optim.SGD(p, nesterov=True, flavor="keras"), lambda: K.SGD(nesterov=True)
    ),
    "adamw": (
        lambda p: optim.AdamW(p, lr=1.0, weight_decay=0.5, eps=2.0, flavor="keras"),
        lambda: K.AdamW(learning_rate=1.0, weight_decay=0.5, epsilon=2.0),
    ),
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_keras_golden_scenarios(name):
    make_ours, make_keras = GOLDEN[name]
    ours = torch.nn.Parameter(torch.ones(10))
    theirs = keras.Variable(np.ones(10, dtype="float32"))
    ours_opt, keras_opt = make_ours([ours]), make_keras()
    grads = [torch.full((10,), 0.01)] + [torch.arange(1, 11, dtype=torch.float32) / 10] * 5
    for grad in grads:
        ours.grad = grad.clone()
        ours_opt.step()
        keras_opt.apply_gradients([(grad.clone(), theirs)])
        expected = theirs.value.detach().cpu()
        # absolute: the values start at 1 and shrink to ~0.01; the two differ by a few float32 ulps of 1
        assert (ours.detach() - expected).abs().max().item() <= 1e-6
