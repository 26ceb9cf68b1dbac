"""The three paths (reference, foreach, fused) agree, and the fused path's flat buffers survive real use."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import ALL_CASES, AUTHORS_CASES, TORCH_CASES
from descentlab import optim
from descentlab.optim import lattice
from descentlab.optim.paths import numba_kernels as _kernels
from helpers import clone_params, make_params, max_relative_difference, max_scaled_difference, random_gradients, run

TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6, torch.complex128: 1e-12, torch.complex64: 1e-6}
TORCH_TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5, torch.complex128: 1e-10, torch.complex64: 1e-5}
PATHS = {
    "reference": dict(foreach=False, fused=False),
    "foreach": dict(foreach=True),
    "fused": dict(fused=True),
}
DTYPES = [torch.float64, torch.float32]
needs_fused = pytest.mark.skipif(_kernels.unavailable_reason() is not None, reason="fused path unavailable")


def _trajectories(case, dtype, shapes, steps=30, sparse_rows=None, seed=0):
    """The parameters after ``steps`` steps on each path, from the same start and gradients."""
    start = make_params(dtype, shapes, seed)
    out = {}
    for path, switches in PATHS.items():
        params = clone_params(start)
        optimizer = case.make(params, **switches)
        for grads in random_gradients(params, steps, seed + 1):
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                p.grad = g.to_sparse(1) if sparse_rows and i in sparse_rows else g
            optimizer.step()
        assert optimizer.path(optimizer.param_groups[0]) == path
        out[path] = params
    return out


@needs_fused
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", ALL_CASES, ids=repr)
def test_fused_equals_reference_equals_foreach(case, dtype):
    result = _trajectories(case, dtype, [(7, 5), (3,), (2, 3, 4), (1,), ()])
    assert max_relative_difference(result["foreach"], result["reference"]) <= TOLERANCE[dtype]
    assert max_relative_difference(result["fused"], result["reference"]) <= TOLERANCE[dtype]


@needs_fused
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", [case for case in ALL_CASES if case.id.startswith("sgd")], ids=repr)
def test_fused_rounds_every_element_as_torch_does(case, dtype):
    """Bit for bit: torch's CPU kernels round ``x + α·y``, ``addcmul`` and ``lerp`` once (an FMA), and
    so does the fused kernel. Rules with a square root agree to an ulp only: torch's CPU ``sqrt`` is
    not correctly rounded (an ulp off for 16% of float32 and 1.2% of float64 roots here), the
    kernel's is."""
    result = _trajectories(case, dtype, [(7, 5), (3,), (2, 3, 4), (1,), ()])
    assert all(torch.equal(a, b) for a, b in zip(result["fused"], result["reference"], strict=True))


@needs_fused
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128], ids=["float64", "complex128"])
@pytest.mark.parametrize("case", ALL_CASES, ids=repr)
def test_paths_agree_with_sparse_gradients_in_the_group(case, dtype):
    result = _trajectories(case, dtype, [(6, 3), (4,), (5, 2)], sparse_rows={0, 2})
    assert max_relative_difference(result["foreach"], result["reference"]) <= TOLERANCE[dtype]
    assert max_relative_difference(result["fused"], result["reference"]) <= TOLERANCE[dtype]


def _against_torch(case, dtype, path, kwargs, torch_kwargs, steps=50):
    ours = make_params(dtype)
    theirs = clone_params(ours)
    optimizer = case.cls(ours, **kwargs, **PATHS[path])
    run([(optimizer, ours), (case.torch_cls(theirs, **torch_kwargs), theirs)], steps=steps)
    assert optimizer.path(optimizer.param_groups[0]) == path
    return max_relative_difference(ours, theirs)


def _fused_if_available(paths):
    return [pytest.param(path, marks=needs_fused) if path == "fused" else path for path in paths]


@pytest.mark.parametrize("path", _fused_if_available(PATHS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", AUTHORS_CASES, ids=repr)
def test_every_path_matches_the_authors_package(case, dtype, path):
    assert _against_torch(case, dtype, path, case.kwargs, case.torch_kwargs) <= TORCH_TOLERANCE[dtype]


@pytest.mark.parametrize("path", _fused_if_available(PATHS))
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64], ids=["complex128", "complex64"])
@pytest.mark.parametrize("case", TORCH_CASES, ids=repr)
def test_complex_parameters_match_torch_on_every_path(case, dtype, path):
    """torch steps a complex parameter as its real view; so does every path here."""
    assert _against_torch(case, dtype, path, case.kwargs, case.torch_kwargs) <= TORCH_TOLERANCE[dtype]


def _as_tensors(kwargs, dtype):
    """``lr`` and ``betas`` as 0-d tensors, as torch accepts them."""
    tensors = dict(kwargs, lr=torch.tensor(kwargs["lr"], dtype=dtype))
    if "betas" in kwargs:
        tensors["betas"] = tuple(torch.tensor(beta, dtype=dtype) for beta in kwargs["betas"])
    return tensors


@pytest.mark.parametrize("path", _fused_if_available(PATHS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", TORCH_CASES, ids=repr)
def test_tensor_hyperparameters_match_torch_on_every_path(case, dtype, path):
    """Tensor ``lr`` and ``betas`` (in the parameters' dtype) give torch's trajectory on every path.

    torch does some scalar arithmetic (bias corrections) in the hyperparameter tensor's dtype,
    descentlab reads the tensor's value and does it in double: float64 tensors agree to rounding,
    float32 ones to float32's (which the float32 tolerance covers).
    """
    kwargs, torch_kwargs = _as_tensors(case.kwargs, dtype), _as_tensors(case.torch_kwargs, dtype)
    assert _against_torch(case, dtype, path, kwargs, torch_kwargs) <= TORCH_TOLERANCE[dtype]


@pytest.mark.parametrize("path", _fused_if_available(PATHS))
def test_a_tensor_learning_rate_changed_in_place_is_followed(path):
    lr = torch.tensor(0.1, dtype=torch.float64)
    ours, theirs = make_params(), make_params()
    optimizers = [optim.Adam(ours, lr=lr, betas=(torch.tensor(0.9), torch.tensor(0.99)), **PATHS[path]),
                  optim.Adam(theirs, lr=0.1, betas=(torch.tensor(0.9).item(), torch.tensor(0.99).item()))]
    for step, grads in enumerate(random_gradients(ours, 20)):
        if step == 10:
            lr.fill_(0.01)
            optimizers[1].param_groups[0]["lr"] = 0.01
        for optimizer, params in zip(optimizers, (ours, theirs), strict=True):
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            optimizer.step()
    assert max_relative_difference(ours, theirs) <= TOLERANCE[torch.float64]


@needs_fused
@settings(max_examples=40, deadline=None)
@given(
    case=st.sampled_from(ALL_CASES),
    shapes=st.lists(st.lists(st.integers(0, 6), max_size=3).map(tuple), min_size=1, max_size=4),
    dtype=st.sampled_from(DTYPES),
    sparse=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_paths_agree_on_random_shapes(case, shapes, dtype, sparse, seed):
    sparse_rows = {0} if sparse and len(shapes[0]) >= 1 else None
    result = _trajectories(case, dtype, shapes, steps=8, sparse_rows=sparse_rows, seed=seed)
    assert max_scaled_difference(result["foreach"], result["reference"]) <= TOLERANCE[dtype]
    assert max_scaled_difference(result["fused"], result["reference"]) <= TOLERANCE[dtype]


def _model(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).to(dtype)


def _batches(steps, dtype=torch.float32, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 6, generator=gen, dtype=dtype), torch.randn(16, 2, generator=gen, dtype=dtype))
            for _ in range(steps)]


def _train(model, optimizer, batches, set_to_none=True, clip=None):
    for x, y in batches:
        model.zero_grad(set_to_none=set_to_none)
        torch.nn.functional.mse_loss(model(x), y).backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()


def _same(model_a, model_b, dtype=torch.float32):
    return max_relative_difference(list(model_a.parameters()), list(model_b.parameters())) <= TOLERANCE[dtype]


@needs_fused
@pytest.mark.parametrize("set_to_none", [True, False], ids=["zero_grad_none", "zero_grad_in_place"])
@pytest.mark.parametrize("clip", [None, 0.05], ids=["no_clip", "clip_grad_norm_"])
def test_fused_training_loop_matches_reference(set_to_none, clip):
    batches = _batches(25)
    fused, reference = _model(), _model()
    _train(fused, optim.Adam(fused.parameters(), lr=0.01, fused=True), batches, set_to_none, clip)
    _train(reference, optim.Adam(reference.parameters(), lr=0.01, fused=False), batches, set_to_none, clip)
    assert _same(fused, reference)


@needs_fused
def test_fused_parameters_and_gradients_are_views_of_one_buffer():
    model = _model()
    optimizer = optim.Adam(model.parameters(), fused=True)
    _train(model, optimizer, _batches(2), set_to_none=False)
    params = list(model.parameters())
    storage = params[0].untyped_storage().data_ptr()
    assert all(p.untyped_storage().data_ptr() == storage for p in params)
    assert all(p.grad.untyped_storage().data_ptr() == params[0].grad.untyped_storage().data_ptr() for p in params)
    exp_avg = [optimizer.state[p]["exp_avg"] for p in params]
    assert all(e.untyped_storage().data_ptr() == exp_avg[0].untyped_storage().data_ptr() for e in exp_avg)


@needs_fused
def test_add_param_group_and_params_without_gradients():
    torch.manual_seed(0)
    fused_params = [torch.nn.Parameter(torch.randn(4, 3)) for _ in range(4)]
    reference_params = clone_params(fused_params)
    optimizers = [optim.Nadam(fused_params[:2], lr=0.01, fused=True),
                  optim.Nadam(reference_params[:2], lr=0.01, fused=False)]
    gen = torch.Generator().manual_seed(2)
    for step in range(12):
        if step == 4:
            optimizers[0].add_param_group({"params": fused_params[2:], "lr": 0.02})
            optimizers[1].add_param_group({"params": reference_params[2:], "lr": 0.02})
        grads = [torch.randn(4, 3, generator=gen) for _ in range(4)]
        for params, optimizer in zip((fused_params, reference_params), optimizers, strict=True):
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                # parameter 1 skips every third step: its step count falls behind the others'
                p.grad = None if (i == 1 and step % 3 == 0) else g.clone()
            optimizer.step()
    assert max_relative_difference(fused_params, reference_params) <= TOLERANCE[torch.float32]
    steps = [optimizers[0].state[p]["step"].item() for p in fused_params]
    assert steps == [12.0, 8.0, 8.0, 8.0]


def test_mixed_dtypes_fall_back_per_group_and_fused_true_refuses_them():
    mixed = [torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3, dtype=torch.float64))]
    uniform = [torch.nn.Parameter(torch.randn(3))]
    optimizer = optim.Adam([{"params": mixed}, {"params": uniform}])
    expected = "fused" if _kernels.unavailable_reason() is None else "reference"
    assert [optimizer.path(g) for g in optimizer.param_groups] == ["reference", expected]
    for p in mixed + uniform:
        p.grad = torch.ones_like(p)
    optimizer.step()
    assert all(optimizer.state[p]["step"].item() == 1 for p in mixed + uniform)
    with pytest.raises(ValueError, match="`fused=True` cannot step this group"):
        optim.Adam(mixed, fused=True)
    with pytest.raises(ValueError, match="`fused=True` cannot step this group"):
        optim.Adam([torch.nn.Parameter(torch.randn(2, 3).t())], fused=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(foreach=1), "`foreach` must be None, True or False. Received: foreach=1"),
        (dict(fused="yes"), "`fused` must be None, True or False. Received: fused='yes'"),
        (dict(foreach=True, fused=True), "`fused` and `foreach` cannot both be True"),
    ],
)
def test_path_switches_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        optim.SGD([torch.nn.Parameter(torch.randn(2))], **kwargs)


@needs_fused
@pytest.mark.parametrize("case", [c for c in TORCH_CASES if c.id in ("adam", "nadam", "sgd_nesterov")], ids=repr)
def test_fused_state_dict_moves_both_ways_with_torch(case):
    ours_params = make_params(torch.float64)
    theirs_params = clone_params(ours_params)
    ours = case.make(ours_params, fused=True)
    run([(ours, ours_params)], steps=20)
    theirs = case.make_torch(theirs_params)
    with torch.no_grad():
        for p, q in zip(theirs_params, ours_params, strict=True):
            p.copy_(q)
    theirs.load_state_dict(copy.deepcopy(ours.state_dict()))
    back_params = clone_params(ours_params)
    back = case.make(back_params, fused=True)
    back.load_state_dict(copy.deepcopy(theirs.state_dict()))
    run([(ours, ours_params), (theirs, theirs_params), (back, back_params)], steps=20, start=20)
    assert max_relative_difference(theirs_params, ours_params) <= 1e-10
    assert max_relative_difference(back_params, ours_params) <= 1e-12


@needs_fused
def test_fused_optimizer_survives_load_state_dict_pickle_and_dtype_change():
    model, twin = _model(), _model()
    batches = _batches(30)
    optimizer = optim.RMSprop(model.parameters(), lr=0.01, momentum=0.5, centered=True, fused=True)
    twin_optimizer = optim.RMSprop(twin.parameters(), lr=0.01, momentum=0.5, centered=True, fused=False)
    _train(model, optimizer, batches[:10])
    _train(twin, twin_optimizer, batches[:10])
    optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    _train(model, optimizer, batches[10:20])
    _train(twin, twin_optimizer, batches[10:20])
    assert _same(model, twin)

    restored = pickle.loads(pickle.dumps({"model": model, "optimizer": optimizer}))
    clone = restored["model"]
    _train(clone, restored["optimizer"], batches[20:])
    _train(model, optimizer, batches[20:])
    assert _same(clone, model)

    model.double()  # every parameter's storage changes: the flat buffers are rebuilt
    _train(model, optimizer, _batches(3, torch.float64))
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert all(optimizer.state[p]["square_avg"].dtype == torch.float64 for p in model.parameters())


@needs_fused
def test_compiled_kernels_are_cached_across_processes(tmp_path):
    script = textwrap.dedent(
        """
        import torch
        from descentlab import optim
        from descentlab.optim.paths import numba_kernels as _kernels
        p = torch.nn.Parameter(torch.randn(10))
        opt = optim.Adamax([p], fused=True)
        p.grad = torch.ones(10)
        opt.step()
        (module,) = [*_kernels._compiled.values(), *_kernels._compiled_tables.values()]
        print(sum(module.serial_step.stats.cache_hits.values()), sum(module.serial_step.stats.cache_misses.values()))
        """
    )
    env = {**os.environ, "DESCENTLAB_CACHE": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]
    first, second = (tuple(map(int, r.stdout.split())) for r in runs)
    assert first == (0, 1)  # compiled, then written to the cache
    assert second == (1, 0)  # loaded, not compiled
    assert list((tmp_path / "kernels").glob("[kp]_*.py"))  # a flat kernel, or one through a table (a new gradient)


def test_fused_path_can_be_turned_off(tmp_path):
    script = textwrap.dedent(
        """
        import torch
        from descentlab import optim
        p = torch.nn.Parameter(torch.randn(3))
        opt = optim.Adam([p])
        print(opt.path(opt.param_groups[0]))
        try:
            optim.Adam([p], fused=True)
        except ValueError as error:
            print(error)
        """
    )
    env = {**os.environ, "DESCENTLAB_FUSED": "0"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "reference",
        "`fused=True` cannot step this group: the fused path is turned off by DESCENTLAB_FUSED=0. Received: fused=True",
    ]


def _runs(momentum: str, adaptation: str, order: str) -> bool:
    try:
        lattice.check_point(momentum, adaptation, order, lattice.adaptation(adaptation).eps_for(momentum, "torch"))
    except ValueError:
        return False
    return True


LATTICE = [  # every point the lattice's entries allow
    (momentum, adaptation, order, flavor)
    for momentum in optim.MOMENTUM_RULES
    for adaptation in optim.ADAPTATION_RULES
    for order in optim.ORDERS
    for flavor in optim.FLAVORS
    if not (order == "adaptation_first" and "none" in (momentum, adaptation)) and _runs(momentum, adaptation, order)
]


@needs_fused
@pytest.mark.parametrize("momentum_rule, adaptation_rule, order, flavor", LATTICE)
def test_every_composed_point_agrees_across_paths(momentum_rule, adaptation_rule, order, flavor):
    kwargs = dict(momentum_rule=momentum_rule, adaptation_rule=adaptation_rule, order=order, flavor=flavor,
                  lr=0.01, weight_decay=0.01)
    start = make_params(torch.float64, [(4, 3), (5,)])
    results = []
    for switches in PATHS.values():
        params = clone_params(start)
        run([(optim.Composed(params, **kwargs, **switches), params)], steps=10)
        results.append(params)
    reference, foreach, fused = results
    assert max_relative_difference(foreach, reference) <= TOLERANCE[torch.float64]
    assert max_relative_difference(fused, reference) <= TOLERANCE[torch.float64]


def test_everything_works_without_numba():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["numba"] = None  # import numba now raises ImportError
        import torch
        from descentlab import optim
        p = torch.nn.Parameter(torch.ones(3))
        opt = optim.SGD([p], lr=0.1, momentum=0.5)
        p.grad = torch.ones(3)
        opt.step()
        print(opt.path(opt.param_groups[0]), round(p[0].item(), 4))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["reference", "0.9"]


def test_parameters_sharing_memory_are_not_flattened_apart():
    base = torch.randn(6)
    shared = [torch.nn.Parameter(base[:4]), torch.nn.Parameter(base[2:])]
    optimizer = optim.SGD(shared, lr=0.1)
    assert optimizer.path(optimizer.param_groups[0]) == "reference"
    with pytest.raises(ValueError, match=r"params\[0\] and params\[1\] share memory"):
        optim.SGD(shared, lr=0.1, fused=True)


def test_without_triton_the_fused_path_steps_aside_and_says_why():
    script = textwrap.dedent(
        """
        import os, sys
        sys.modules["triton"] = None  # import triton now raises ImportError
        os.environ["DESCENTLAB_FUSED_BACKEND"] = "triton"  # CPU tensors stand in for a GPU's
        import torch
        from descentlab import optim
        p = torch.nn.Parameter(torch.ones(3))
        opt = optim.Adam([p], lr=0.1)
        p.grad = torch.ones(3)
        opt.step()
        print(opt.path(opt.param_groups[0]))
        try:
            optim.Adam([p], fused=True)
        except ValueError as error:
            print(error)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    path, message = out.splitlines()
    assert path == "reference"  # on a GPU: foreach
    assert message.startswith("`fused=True` cannot step this group: triton cannot be imported")


@needs_fused
def test_a_parameter_shrunk_in_place_is_seen_and_its_group_rebuilt():
    """``p.data = p.data[:2]`` keeps the data pointer; the new gradient's shape gives it away."""
    fused_params = [torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(4))]
    reference_params = clone_params(fused_params)
    optimizers = [optim.SGD(fused_params, lr=1.0, fused=True), optim.SGD(reference_params, lr=1.0, fused=False)]
    for params, optimizer in zip((fused_params, reference_params), optimizers, strict=True):
        for p in params:
            p.grad = torch.ones(4)
        optimizer.step()
        params[0].data = params[0].data[:2]
        params[0].grad, params[1].grad = torch.full((2,), 1.0), torch.full((4,), 2.0)
        optimizer.step()
    assert [p.tolist() for p in fused_params] == [p.tolist() for p in reference_params]
    assert fused_params[1].tolist() == [-3.0] * 4


@needs_fused
def test_a_kernel_that_fails_when_launched_moves_no_step_count(monkeypatch):
    params = make_params(torch.float64, [(3, 2), (4,)])
    optimizer = optim.Nadam(params, fused=True)
    run([(optimizer, params)], steps=2)
    before = {key: value.clone() for key, value in optimizer.state[params[0]].items()}

    def fail(self):
        raise RuntimeError("launch failed")

    monkeypatch.setattr(_kernels.Kernel, "__call__", fail)
    monkeypatch.setattr(_kernels.TableKernel, "__call__", fail)  # new gradients are read through a table
    for p in params:
        p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="launch failed"):
        optimizer.step()
    after = optimizer.state[params[0]]
    assert all(torch.equal(before[key], after[key]) for key in before)


def _against_torch_in_one_tensor(ours, theirs, kwargs, dtype, numel=20_000, steps=30):
    """``ours`` (fused) and ``theirs`` (torch.optim) after ``steps`` steps on one tensor (vector lanes and a tail)."""
    start = make_params(dtype, [(numel,)])
    result = []
    for make in (lambda params: ours(params, fused=True, **kwargs), lambda params: theirs(params, **kwargs)):
        params = clone_params(start)
        optimizer = make(params)
        run([(optimizer, params)], steps=steps)
        result.append(params)
    return result


@needs_fused
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_fused_rmsprop_with_momentum_stays_with_torch(dtype):
    """Its multiply-adds round as torch's do; what remains is torch's CPU square root (MKL's, within an ulp)."""
    fused, theirs = _against_torch_in_one_tensor(optim.RMSprop, torch.optim.RMSprop, dict(lr=0.05, momentum=0.9), dtype)
    assert max_relative_difference(fused, theirs) <= TOLERANCE[dtype]
