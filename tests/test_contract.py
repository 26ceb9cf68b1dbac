"""The contracts of :mod:`descentlab.optim.contract`, and steps that never wait for a device."""

from __future__ import annotations

import inspect

import pytest
import torch

from cases import ALL_CASES
from descentlab import optim
from descentlab.optim import contract
from descentlab.optim._chain import ScaleThenSubtract, Subtract, build_chain
from descentlab.optim.paths import foreach, reference
from descentlab.optim.paths.base import RealState
from descentlab.optim.paths.fused import FlatGroup
from descentlab.optim.paths.trace import SymbolicState, Trace, Var
from descentlab.rules.ftrl import FTRLProximal

OPERATIONS = [name for name, value in vars(contract.TensorLike).items()
              if inspect.isfunction(value) and name not in ("__init__", "__subclasshook__")]


def _parameters(function) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


def test_the_contract_names_every_operation_the_rules_may_use():
    assert {"add", "addcmul_", "lerp_", "maximum", "copy_", "__rtruediv__", "__neg__"} <= set(OPERATIONS)


@pytest.mark.parametrize("value", [torch.zeros(2), foreach.TensorList([torch.zeros(2)]), Var(Trace(), "x")],
                         ids=["Tensor", "TensorList", "Var"])
def test_tensors_lists_and_traced_values_all_implement_the_contract(value):
    assert isinstance(value, contract.TensorLike)
    if isinstance(value, torch.Tensor):
        return  # torch's own: the contract copies its signatures
    for name in OPERATIONS:
        expected = _parameters(getattr(contract.TensorLike, name))
        assert _parameters(getattr(type(value), name)) == expected, name


def test_every_state_view_implements_the_state_contract():
    trace = Trace()
    views = [{}, foreach.ListState([{}]), RealState({}), SymbolicState(trace, {}, frozenset())]
    assert all(isinstance(view, contract.StateLike) for view in views)


def test_rules_final_stages_and_paths_implement_theirs():
    for momentum in ("heavy_ball", "ema", "nesterov_ema"):
        for adaptation in ("sum", "ema", "max", "delta"):
            chain = build_chain(momentum, adaptation, "momentum_first", "inside", "keras")
            assert all(isinstance(rule, contract.Rule) for rule in chain.rules + chain.final.rules)
    assert all(isinstance(final, contract.Final) for final in (Subtract(), ScaleThenSubtract(), FTRLProximal()))
    assert isinstance(reference, contract.Path) and isinstance(foreach, contract.Path)
    params = [torch.nn.Parameter(torch.zeros(3))]
    chain = build_chain("ema", "ema", "momentum_first", "outside", "torch")
    assert isinstance(FlatGroup(chain, params, {params[0]: {}}), contract.Path)


# ---- no host-device syncs ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["reference", "foreach"])
@pytest.mark.parametrize("case", ALL_CASES, ids=repr)
def test_a_step_never_reads_a_value_on_the_parameters_device(case, path):
    """Parameters on the meta device: any ``.item()``, ``bool()`` or copy to the host of a value
    that lives with them raises, as a host-device sync would cost on a GPU."""
    params = [torch.nn.Parameter(torch.empty(shape, device="meta")) for shape in [(4, 3), (5,), ()]]
    optimizer = case.make(params, foreach=path == "foreach", fused=False)
    for _ in range(3):
        for p in params:
            p.grad = torch.empty_like(p)
        optimizer.step()
    assert all(optimizer.state[p]["step"].device.type == "cpu" for p in params)
    assert optimizer.state[params[0]]["step"].item() == 3


def _reads_per_step(name: str, path: str, count: int, monkeypatch) -> int:
    params = [torch.nn.Parameter(torch.randn(3)) for _ in range(count)]
    optimizer = optim.NAMED[name](params, **({"fused": True} if path == "fused" else {"foreach": True}))
    for p in params:
        p.grad = torch.randn(3)
    optimizer.step()  # the first step builds buffers and compiles
    reads = []
    for method in ("item", "cpu", "tolist", "__bool__", "__float__"):
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, _method=method, **kwargs):
            reads.append(_method)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counted)
    optimizer.step()
    monkeypatch.undo()
    return len(reads)


@pytest.mark.parametrize("path", ["foreach", "fused"])
@pytest.mark.parametrize("name", ["SGD", "Adam", "Nadam", "Adagrad", "FTRL"])
def test_values_read_back_per_step_do_not_grow_with_the_number_of_parameters(name, path, monkeypatch):
    """Batched paths read their 0-d state once per batch, not once per parameter."""
    few, many = _reads_per_step(name, path, 3, monkeypatch), _reads_per_step(name, path, 40, monkeypatch)
    assert few == many
    assert many <= 4
