"""Bad arguments raise ValueError naming the argument and the value received, and lose nothing."""

from __future__ import annotations

import re

import pytest
import torch

from descentlab import optim
from descentlab.optim.paths import numba_kernels as _kernels
from helpers import make_params, random_gradients


def _p():
    return [torch.nn.Parameter(torch.zeros(2))]


INVALID = [
    (lambda: optim.SGD(_p(), lr=-0.1), r"`lr` must be >= 0\. Received: lr=-0\.1"),
    (lambda: optim.Adam(_p(), eps=-1), r"`eps` must be >= 0\. Received: eps=-1"),
    (lambda: optim.Adagrad(_p(), lr_decay=-0.5), r"`lr_decay` must be >= 0\. Received: lr_decay=-0\.5"),
    (lambda: optim.SGD(_p(), weight_decay=-1e-4), r"`weight_decay` must be >= 0\. Received: weight_decay=-0\.0001"),
    (lambda: optim.SGD(_p(), momentum=-0.9), r"`momentum` must be >= 0\. Received: momentum=-0\.9"),
    (
        lambda: optim.SGD(_p(), momentum=0.9, dampening=1.5),
        r"`dampening` must be in \[0, 1\]\. Received: dampening=1\.5",
    ),
    (lambda: optim.SGD(_p(), nesterov=True), r"Nesterov momentum requires `momentum` > 0 .* Received: momentum=0\.0"),
    (
        lambda: optim.SGD(_p(), momentum=0.9, dampening=0.1, nesterov=True),
        r"Nesterov momentum requires .* dampening=0\.1",
    ),
    (
        lambda: optim.Adam(_p(), betas=(1.0, 0.999)),
        r"`betas\[0\]` must be in \[0, 1\)\. Received: betas=\(1\.0, 0\.999\)",
    ),
    (
        lambda: optim.Adam(_p(), betas=(0.9, -0.1)),
        r"`betas\[1\]` must be in \[0, 1\)\. Received: betas=\(0\.9, -0\.1\)",
    ),
    (lambda: optim.Adam(_p(), betas=0.9), r"`betas` must be a pair \(beta1, beta2\)\. Received: betas=0\.9"),
    (lambda: optim.RMSprop(_p(), alpha=1.2), r"`alpha` must be in \[0, 1\]\. Received: alpha=1\.2"),
    (lambda: optim.Adadelta(_p(), rho=-0.1), r"`rho` must be in \[0, 1\]\. Received: rho=-0\.1"),
    (lambda: optim.Nadam(_p(), momentum_decay=-1), r"`momentum_decay` must be >= 0\. Received: momentum_decay=-1"),
    (
        lambda: optim.Adagrad(_p(), initial_accumulator_value=-0.1),
        r"`initial_accumulator_value` must be >= 0\. Received: initial_accumulator_value=-0\.1",
    ),
    (lambda: optim.SGD(_p(), clipnorm=-1.0), r"`clipnorm` must be >= 0\. Received: clipnorm=-1\.0"),
    (lambda: optim.SGD(_p(), global_clipnorm=-2), r"`global_clipnorm` must be >= 0\. Received: global_clipnorm=-2"),
    (lambda: optim.SGD(_p(), clipvalue=-0.5), r"`clipvalue` must be >= 0\. Received: clipvalue=-0\.5"),
    (
        lambda: optim.SGD(_p(), clipnorm=1.0, clipvalue=0.5),
        r"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set\. "
        r"Received: clipnorm=1\.0, global_clipnorm=None, clipvalue=0\.5",
    ),
    (
        lambda: optim.SGD(_p(), momentum=2.0, flavor="keras"),
        r"`momentum` must be in \[0, 1\]\. Received: momentum=2\.0",
    ),
    (lambda: optim.FTRL(_p(), lr_power=0.5), r"`lr_power` must be <= 0\. Received: lr_power=0\.5"),
    (lambda: optim.FTRL(_p(), l1=-1.0), r"`l1` must be >= 0\. Received: l1=-1\.0"),
    (lambda: optim.FTRL(_p(), l2_shrinkage=-0.1), r"`l2_shrinkage` must be >= 0\. Received: l2_shrinkage=-0\.1"),
    (lambda: optim.FTRL(_p(), beta=-0.1), r"`beta` must be >= 0\. Received: beta=-0\.1"),
    (lambda: optim.SGD(_p(), lr="fast"), r"`lr` must be a real number\. Received: lr='fast'"),
    (lambda: optim.SGD(_p(), lr=float("nan")), r"`lr` must be a real number\. Received: lr=nan"),
    (lambda: optim.Adam(_p(), flavor="jax"), r"`flavor` must be one of \('torch', 'keras'\)\. Received: flavor='jax'"),
    (
        lambda: optim.Composed(_p(), momentum_rule="polyak"),
        r"`momentum_rule` must be one of \('none', 'heavy_ball', 'nesterov', 'ema', 'nesterov_ema'\)\. "
        r"Received: momentum_rule='polyak'",
    ),
    (
        lambda: optim.Composed(_p(), adaptation_rule="adam"),
        rf"`adaptation_rule` must be one of {re.escape(str(optim.ADAPTATION_RULES))}\. "
        r"Received: adaptation_rule='adam'",
    ),
    (lambda: optim.Composed(_p(), order="sideways"), r"`order` must be one of .* Received: order='sideways'"),
    (
        lambda: optim.Composed(_p(), adaptation_rule="delta", eps_placement="outside"),
        r"`eps_placement \(with adaptation_rule='delta'\)` must be one of \('inside',\)\. Received: .*'outside'",
    ),
    (
        lambda: optim.Composed(_p(), eps_placement="inside"),
        r"`eps_placement` needs an adaptation rule\. Received: eps_placement='inside', adaptation_rule='none'",
    ),
    (
        lambda: optim.Composed(_p(), adaptation_rule="max", amsgrad=True),
        r"`amsgrad` needs adaptation_rule in \('ema', 'belief'\)\. Received: amsgrad=True, adaptation_rule='max'",
    ),
    (
        lambda: optim.Composed(_p(), adaptation_rule="max", centered=True),
        r"`centered` needs adaptation_rule='ema'\. Received: centered=True, adaptation_rule='max'",
    ),
    (
        lambda: optim.Composed(_p(), momentum_rule="heavy_ball", adaptation_rule="belief"),
        r"adaptation_rule='belief' reads the momentum's m, so it needs momentum_rule in \('ema', 'nesterov_ema'\) "
        r"first\. Received: momentum_rule='heavy_ball', order='momentum_first'",
    ),
    (
        lambda: optim.Adam([torch.zeros(2, dtype=torch.int64)]),
        r"`params` must be floating-point or complex tensors\. Received: params\[0\] of dtype torch\.int64",
    ),
    (
        lambda: optim.SGD([torch.ones(2), torch.nn.Parameter(torch.tensor([1 + 1j]).conj())], lr=0.1),
        r"`params` must hold their own values, not a lazily conjugated or negated view.* "
        r"Received: params\[1\] with is_conj\(\)=True, is_neg\(\)=False",
    ),
]


@pytest.mark.parametrize("make, message", INVALID, ids=[m[:40] for _, m in INVALID])
def test_invalid_argument_names_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


VALID = {
    # Keras 3 takes these (its own golden test uses the first); torch takes the last two
    "keras_nesterov_without_momentum": lambda: optim.SGD(_p(), nesterov=True, flavor="keras"),
    "keras_composed_nesterov_without_momentum": lambda: optim.Composed(
        _p(), momentum_rule="nesterov", momentum=0.0, flavor="keras"
    ),
    "keras_rmsprop_momentum_above_one": lambda: optim.RMSprop(_p(), momentum=2.0, flavor="keras"),
    "torch_sgd_momentum_above_one": lambda: optim.SGD(_p(), momentum=2.0),
    "torch_tensor_hyperparameters": lambda: optim.Adam(_p(), lr=torch.tensor(0.01), betas=(torch.tensor(0.9),
                                                                                        torch.tensor(0.999))),
}


@pytest.mark.parametrize("name", list(VALID))
def test_each_flavor_accepts_what_its_anchor_accepts(name):
    optimizer = VALID[name]()
    p = optimizer.param_groups[0]["params"][0]
    p.grad = torch.ones_like(p)
    optimizer.step()
    assert optimizer.state[p]["step"].item() == 1


def _snapshot(optimizer, params):
    state = optimizer.state_dict()["state"]
    return [p.detach().clone() for p in params], {
        i: {key: value.clone() for key, value in entries.items()} for i, entries in state.items() if entries
    }


def _assert_unchanged(before, after):
    (params_before, state_before), (params_after, state_after) = before, after
    assert all(torch.equal(a, b) for a, b in zip(params_before, params_after, strict=True))
    assert state_before.keys() == state_after.keys()
    for i, entries in state_before.items():
        assert entries.keys() == state_after[i].keys()
        assert all(torch.equal(value, state_after[i][key]) for key, value in entries.items())


def _two_groups(cls, switches, steps, **kwargs):
    params = make_params(torch.float64, [(4, 3), (5,), (2, 2), (3,)])
    optimizer = cls([{"params": params[:2]}, {"params": params[2:]}], lr=0.01, **switches, **kwargs)
    for grads in random_gradients(params, steps):
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        optimizer.step()
    return optimizer, params


PATH_SWITCHES = {
    "reference": dict(foreach=False, fused=False),
    "foreach": dict(foreach=True),
    "fused": dict(fused=True),
    "default": {},
}
FUSED_PATHS = ("fused", "default")
needs_fused = pytest.mark.skipif(_kernels.unavailable_reason() is not None, reason="fused path unavailable")


def _tensor_hyperparameter(path, steps_before, monkeypatch):
    """The second group's betas are no longer numbers."""
    optimizer, params = _two_groups(optim.Adam, PATH_SWITCHES[path], steps_before)
    optimizer.param_groups[1]["betas"] = (torch.tensor([0.9, 0.8]), 0.999)
    return optimizer, params


def _fused_group_ineligible(path, steps_before, monkeypatch):
    """The second group must be fused, but now mixes dtypes."""
    optimizer, params = _two_groups(optim.Nadam, PATH_SWITCHES[path], steps_before)
    optimizer.param_groups[1].update(foreach=None, fused=True)
    params[3].data = params[3].data.float()
    return optimizer, params


def _kernel_compilation(path, steps_before, monkeypatch):
    """Compiling the kernel fails (Nadam: its 0-d ``mu_product`` is computed while tracing)."""
    optimizer, params = _two_groups(optim.Nadam, PATH_SWITCHES[path], steps_before, betas=(0.8, 0.95))

    def refuse(trace, *arguments):
        raise RuntimeError("the kernel cannot be compiled")

    monkeypatch.setattr(_kernels, "kernel", refuse)
    monkeypatch.setattr(_kernels, "table_kernel", refuse)  # new gradients are read through a table
    return optimizer, params


MESSAGES = {  # what each failure says: the error the test expects, not any RuntimeError
    _tensor_hyperparameter: "a Tensor with 2 elements cannot be converted to Scalar",
    _fused_group_ineligible: r"`fused=True` cannot step this group: the group mixes dtypes",
    _kernel_compilation: "the kernel cannot be compiled",
}
FAILURES = [
    *[(_tensor_hyperparameter, path) for path in PATH_SWITCHES],
    *[(_fused_group_ineligible, path) for path in PATH_SWITCHES],
    *[(_kernel_compilation, path) for path in FUSED_PATHS],
]


@pytest.mark.parametrize("steps_before", [0, 3], ids=["first_step", "later_step"])
@pytest.mark.parametrize(
    "failure, path",
    [pytest.param(f, path, marks=[needs_fused] if path in FUSED_PATHS or f is _fused_group_ineligible else [],
                  id=f"{f.__name__[1:]}-{path}") for f, path in FAILURES],
)
def test_an_error_inside_a_step_leaves_parameters_and_state_as_they_were(failure, path, steps_before, monkeypatch):
    """The error comes from the second group or from compiling: nothing may have moved."""
    optimizer, params = failure(path, steps_before, monkeypatch)
    for p, g in zip(params, next(random_gradients(params, 1, seed=9)), strict=True):
        p.grad = g.to(p.dtype)
    before = _snapshot(optimizer, params)
    with pytest.raises(RuntimeError, match=MESSAGES[failure]):
        optimizer.step()
    _assert_unchanged(before, _snapshot(optimizer, params))


def test_rejected_param_group_leaves_the_optimizer_intact():
    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = optim.Adam([p], lr=0.1)
    with pytest.raises(ValueError, match=r"`lr` must be >= 0\. Received: lr=-1"):
        opt.add_param_group({"params": [q], "lr": -1})
    with pytest.raises(ValueError, match=r"`flavor` is fixed per optimizer.*Received: flavor='keras'"):
        opt.add_param_group({"params": [q], "flavor": "keras"})
    assert len(opt.param_groups) == 1
    opt.add_param_group({"params": [q], "lr": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]


def test_flavored_defaults_are_visible_and_resolved():
    import inspect

    assert "Flavored(torch=1e-08, keras=1e-07)" in str(inspect.signature(optim.Adam))
    p = _p()
    assert optim.Adagrad(p).defaults["initial_accumulator_value"] == 0.0
    keras_defaults = optim.Adagrad(p, flavor="keras").defaults
    keras_values = (keras_defaults["lr"], keras_defaults["initial_accumulator_value"], keras_defaults["eps"])
    assert keras_values == (1e-3, 0.1, 1e-7)
    assert optim.Nadam(p, flavor="keras").defaults["momentum_decay"] == 1.0
    assert optim.Adadelta(p, flavor="keras").defaults["rho"] == 0.95
