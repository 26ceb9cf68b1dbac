"""The Triton kernels of the fused path: generated from the same trace as the numba ones.

Without a GPU they run under Triton's interpreter (``TRITON_INTERPRET=1``) on CPU tensors,
through the whole optimizer (``DESCENTLAB_FUSED_BACKEND=triton``): the case table, every point
of the lattice, random shapes, complex parameters, and the flat buffers under real use. The
tests at the end need a CUDA device and skip without one.
"""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import test_paths
from cases import ALL_CASES, AUTHORS_CASES, TORCH_CASES
from descentlab import optim
from descentlab.optim.paths import numba_kernels, triton_kernels
from descentlab.optim.paths.trace import OPERATIONS, Trace
from helpers import clone_params, make_params, max_relative_difference, max_scaled_difference, random_gradients, run

pytestmark = pytest.mark.skipif(
    triton_kernels.unavailable_reason() is not None, reason=f"{triton_kernels.unavailable_reason()}"
)
TOLERANCE = test_paths.TOLERANCE
DTYPES = [torch.float64, torch.float32]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; there is none here")


@pytest.fixture
def interpreted(monkeypatch):
    """Every fused step of a CPU tensor goes through a Triton kernel, run by the interpreter."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("DESCENTLAB_FUSED_BACKEND", "triton")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
def test_every_traced_operation_has_a_spelling_in_both_backends(dtype):
    assert set(OPERATIONS) <= set(numba_kernels.SPELLING)
    assert set(OPERATIONS) <= set(triton_kernels.spelling(dtype))


def test_the_source_uses_correctly_rounded_float32_division(interpreted):
    trace = Trace()
    p, g = trace.array("p"), trace.array("g")
    p.sub_(g / g.abs().sqrt().add(1e-8), alpha=0.1)
    text = triton_kernels.source(trace, torch.float32)
    assert "tl.div_rn(" in text and "tl.sqrt_rn(" in text
    assert "tl.div_rn(" not in triton_kernels.source(trace, torch.float64)  # float64's / is exact


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_the_cuda_source_compiles_with_one_rounding_where_torch_has_one(dtype, monkeypatch):
    """Compiled for an H100's architecture (no device needed; ptxas ships with Triton): ``x + α·y``
    is one ``fma.rn`` and ``g·g`` stays a product of its own."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    trace = Trace()
    p, g = trace.array("p"), trace.array("g")
    p.add_(g * g, alpha=-0.1)
    function = triton_kernels.load_module(triton_kernels.source(trace, dtype), "t").step
    pointer, scalar = {torch.float64: ("*fp64", "fp64"), torch.float32: ("*fp32", "fp32")}[dtype]
    signature = {"p": pointer, "g": pointer, "n": "i64", "c0": scalar, "BLOCK": "constexpr"}
    compiled = triton.compile(ASTSource(function, signature, constexprs={"BLOCK": triton_kernels.BLOCK}),
                              target=GPUTarget("cuda", 90, 32), options={"enable_fp_fusion": False})
    suffix = {torch.float64: "f64", torch.float32: "f32"}[dtype]
    ptx = compiled.asm["ptx"]  # one product and one fma per element, however many elements a thread holds
    assert ptx.count(f"fma.rn.{suffix}") == ptx.count(f"mul.rn.{suffix}") > 0


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", ALL_CASES, ids=repr)
def test_triton_kernel_equals_reference(case, dtype, interpreted):
    result = test_paths._trajectories(case, dtype, [(7, 5), (3,), (2, 3, 4), (1,), ()], steps=12)
    assert max_relative_difference(result["fused"], result["reference"]) <= TOLERANCE[dtype]


@pytest.mark.parametrize("momentum_rule, adaptation_rule, order, flavor", test_paths.LATTICE)
def test_every_composed_point_runs_as_a_triton_kernel(momentum_rule, adaptation_rule, order, flavor, interpreted):
    test_paths.test_every_composed_point_agrees_across_paths(momentum_rule, adaptation_rule, order, flavor)


@settings(max_examples=15, deadline=None)
@given(
    case=st.sampled_from(ALL_CASES),
    shapes=st.lists(st.lists(st.integers(0, 6), max_size=3).map(tuple), min_size=1, max_size=4),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_triton_kernel_on_random_shapes(case, shapes, dtype, seed):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRITON_INTERPRET", "1")
        patch.setenv("DESCENTLAB_FUSED_BACKEND", "triton")
        result = test_paths._trajectories(case, dtype, shapes, steps=5, seed=seed)
    assert max_scaled_difference(result["fused"], result["reference"]) <= TOLERANCE[dtype]


@pytest.mark.parametrize("case", AUTHORS_CASES, ids=repr)
def test_triton_kernels_match_the_authors_package(case, interpreted):
    error = test_paths._against_torch(case, torch.float64, "fused", case.kwargs, case.torch_kwargs, steps=20)
    assert error <= test_paths.TORCH_TOLERANCE[torch.float64]


@pytest.mark.parametrize("case", TORCH_CASES, ids=repr)
def test_complex_parameters_through_triton_match_torch(case, interpreted):
    dtype = torch.complex128
    error = test_paths._against_torch(case, dtype, "fused", case.kwargs, case.torch_kwargs, steps=20)
    assert error <= test_paths.TORCH_TOLERANCE[dtype]


@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.id in ("adam", "nadam", "sgd_nesterov", "ftrl")], ids=repr)
def test_sparse_gradients_beside_triton_kernels(case, interpreted):
    test_paths.test_paths_agree_with_sparse_gradients_in_the_group(case, torch.float64)


FLAT_BUFFER_USES = [
    pytest.param(lambda: test_paths.test_fused_training_loop_matches_reference(True, None), id="zero_grad_none"),
    pytest.param(lambda: test_paths.test_fused_training_loop_matches_reference(False, 0.05), id="in_place_clip"),
    pytest.param(test_paths.test_fused_parameters_and_gradients_are_views_of_one_buffer, id="views"),
    pytest.param(test_paths.test_add_param_group_and_params_without_gradients, id="add_group_no_grads"),
    pytest.param(test_paths.test_fused_optimizer_survives_load_state_dict_pickle_and_dtype_change, id="pickle_to"),
    *[pytest.param(lambda c=c: test_paths.test_fused_state_dict_moves_both_ways_with_torch(c), id=f"state_dict_{c.id}")
      for c in TORCH_CASES if c.id in ("adam", "nadam")],
]


@pytest.mark.parametrize("use", FLAT_BUFFER_USES)
def test_flat_buffers_under_real_use_with_triton_kernels(use, interpreted):
    use()


def _half_precision_steps(dtype, steps):
    """Adam on ``dtype`` parameters (fused: float32 state) and on float32 copies (reference)."""
    start = make_params(torch.float32, [(6, 5), (7,)], seed=3)
    half = [torch.nn.Parameter(p.detach().to(dtype)) for p in start]
    wide = [torch.nn.Parameter(p.detach().float()) for p in half]
    fused = optim.Adam(half, lr=0.01, fused=True)
    reference = optim.Adam(wide, lr=0.01, foreach=False, fused=False)
    for grads in random_gradients(wide, steps):
        for p, q, g in zip(half, wide, grads, strict=True):
            p.grad, q.grad = g.to(dtype), g.to(dtype).float()
        fused.step()
        reference.step()
    return (fused, half), (reference, wide)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_half_precision_parameters_keep_float32_state(dtype, interpreted):
    (fused, half), (_, wide) = _half_precision_steps(dtype, steps=1)
    assert fused.path(fused.param_groups[0]) == "fused"
    for p, q in zip(half, wide, strict=True):
        # one step: float32 arithmetic, the parameter rounded once (the interpreter's cast to a half
        # type truncates where a GPU rounds to nearest, so one unit in the last place; exact on CUDA)
        assert torch.allclose(p.float(), q, rtol=torch.finfo(dtype).eps, atol=0)
    (fused, half), (reference, wide) = _half_precision_steps(dtype, steps=20)
    for p, q in zip(half, wide, strict=True):
        # the moments see the same gradients in both: float32 state keeps them to float32's rounding
        for key in ("exp_avg", "exp_avg_sq"):
            assert fused.state[p][key].dtype == torch.float32
            assert max_relative_difference([fused.state[p][key]], [reference.state[q][key]]) <= 1e-6


def test_half_precision_is_not_fused_on_the_cpu_backend():
    params = [torch.nn.Parameter(torch.randn(3, dtype=torch.bfloat16))]
    with pytest.raises(ValueError, match="take float32, float64"):
        optim.Adam(params, fused=True)


# ---- on a CUDA device ----------------------------------------------------------------------------


def _on(params, device):
    return [torch.nn.Parameter(p.detach().to(device)) for p in params]


@cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", ALL_CASES, ids=repr)
def test_cuda_fused_equals_reference(case, dtype):
    start = _on(make_params(dtype, [(7, 5), (3,), (2, 3, 4), (1,), (), (3000,)]), "cuda")
    results = {}
    for path, switches in test_paths.PATHS.items():
        params = clone_params(start)
        optimizer = case.make(params, **switches)
        run([(optimizer, params)], steps=20)
        assert optimizer.path(optimizer.param_groups[0]) == path
        results[path] = params
    assert max_relative_difference(results["fused"], results["reference"]) <= TOLERANCE[dtype]
    assert max_relative_difference(results["foreach"], results["reference"]) <= TOLERANCE[dtype]


@cuda
@pytest.mark.parametrize("path", list(test_paths.PATHS))
@pytest.mark.parametrize("name", ["Adam", "Nadam", "RMSprop", "Adadelta", "Adagrad", "FTRL", "SGD"])
def test_cuda_steps_make_no_host_device_sync(name, path):
    params = _on(make_params(torch.float32, [(64, 32)] * 5), "cuda")
    optimizer = optim.NAMED[name](params, **test_paths.PATHS[path])
    grads = [torch.randn_like(p) for p in params]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            optimizer.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@cuda
@pytest.mark.parametrize("clip", [None, 0.05], ids=["no_clip", "clip_grad_norm_"])
def test_cuda_flat_buffers_under_real_use(clip):
    """A model on the GPU: zero_grad both ways, clipping, a group added, a param without grad, state_dict, .to()."""
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).cuda()]
    models.append(copy.deepcopy(models[0]))
    extra = [torch.nn.Parameter(torch.randn(4, 3, device="cuda")) for _ in range(2)]
    optimizers = [optim.Adam(models[0].parameters(), lr=0.01, fused=True),
                  optim.Adam(models[1].parameters(), lr=0.01, foreach=False, fused=False)]
    extras = [extra, clone_params(extra)]
    gen = torch.Generator(device="cuda").manual_seed(1)
    for step in range(30):
        x, y = torch.randn(16, 6, device="cuda", generator=gen), torch.randn(16, 2, device="cuda", generator=gen)
        g = torch.randn(4, 3, device="cuda", generator=gen)
        for model, optimizer, params in zip(models, optimizers, extras, strict=True):
            if step == 5:
                optimizer.add_param_group({"params": params, "lr": 0.02})
            model.zero_grad(set_to_none=step % 2 == 0)
            torch.nn.functional.mse_loss(model(x), y).backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            params[0].grad = g.clone()
            params[1].grad = None if step % 3 else g.clone()  # often without a gradient
            optimizer.step()
        if step == 15:  # a round trip through the state dict, both ways
            optimizers[0].load_state_dict(copy.deepcopy(optimizers[0].state_dict()))
    ours = [*models[0].parameters(), *extras[0]]
    theirs = [*models[1].parameters(), *extras[1]]
    assert max_relative_difference(ours, theirs) <= TOLERANCE[torch.float32]
    models[0].double()  # storage changes: the buffers are rebuilt
    models[0](torch.randn(3, 6, device="cuda", dtype=torch.float64)).sum().backward()
    optimizers[0].step()
    assert all(optimizers[0].state[p]["exp_avg"].dtype == torch.float64 for p in models[0].parameters())


@cuda
def test_cuda_state_dict_moves_both_ways_with_torch_fused_adam():
    ours_params = _on(make_params(torch.float32), "cuda")
    ours = optim.Adam(ours_params, lr=0.01, fused=True)
    run([(ours, ours_params)], steps=10)
    theirs_params = clone_params(ours_params)
    theirs = torch.optim.Adam(theirs_params, lr=0.01, fused=True)
    theirs.load_state_dict(copy.deepcopy(ours.state_dict()))
    back_params = clone_params(ours_params)
    back = optim.Adam(back_params, lr=0.01, fused=True)
    back.load_state_dict(copy.deepcopy(theirs.state_dict()))  # torch's fused state has step on the GPU
    assert all(back.state[p]["step"].device.type == "cpu" for p in back_params)
    run([(ours, ours_params), (theirs, theirs_params), (back, back_params)], steps=10, start=10)
    assert max_relative_difference(theirs_params, ours_params) <= 1e-5
    assert max_relative_difference(back_params, ours_params) <= 1e-6


@cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_cuda_half_precision_parameters(dtype):
    params = _on(make_params(torch.float32, [(64, 33)], seed=4), "cuda")
    half = [torch.nn.Parameter(p.detach().to(dtype)) for p in params]
    wide = [torch.nn.Parameter(p.detach().float()) for p in half]
    fused = optim.Adam(half, lr=0.01, fused=True)
    reference = optim.Adam(wide, lr=0.01, foreach=False, fused=False)
    for p, q in zip(half, wide, strict=True):
        g = torch.randn_like(q)
        p.grad, q.grad = g.to(dtype), g.to(dtype).float()
    fused.step()
    reference.step()
    assert fused.state[half[0]]["exp_avg"].dtype == torch.float32
    assert torch.equal(half[0], wide[0].to(dtype))



def test_half_precision_state_goes_back_to_the_parameters_dtype_off_the_fused_path(interpreted):
    params = [torch.nn.Parameter(torch.randn(5, 3).to(torch.bfloat16)) for _ in range(2)]
    optimizer = optim.Adam(params, lr=0.01, fused=True)
    run([(optimizer, params)], steps=2)
    assert optimizer.state[params[0]]["exp_avg"].dtype == torch.float32
    optimizer.param_groups[0].update(fused=None, foreach=True)
    run([(optimizer, params)], steps=2)
    assert optimizer.path(optimizer.param_groups[0]) == "foreach"
    assert all(optimizer.state[p]["exp_avg"].dtype == torch.bfloat16 for p in params)
    assert optimizer.state[params[0]]["step"].item() == 4


def test_a_sparse_gradient_in_a_half_precision_fused_group_is_refused_before_anything_moves(interpreted):
    params = [torch.nn.Parameter(torch.randn(5, 3).to(torch.bfloat16)) for _ in range(2)]
    optimizer = optim.Adam(params, lr=0.01, fused=True)
    run([(optimizer, params)], steps=1)
    before = [p.detach().clone() for p in params]
    params[0].grad = torch.ones(5, 3, dtype=torch.bfloat16).to_sparse(1)
    params[1].grad = torch.ones(5, 3, dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match="use fused=False for a group with sparse gradients"):
        optimizer.step()
    assert all(torch.equal(p, q) for p, q in zip(params, before, strict=True))
    assert all(optimizer.state[p]["step"].item() == 1 for p in params)


def test_an_alias_taken_before_training_follows_the_weight_on_the_triton_path(interpreted):
    """The storage check is the backend's too: an aliased group is stepped in place, not moved."""
    model = torch.nn.Linear(3, 2)
    alias = model.weight.detach()
    optimizer = optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    assert optimizer.path(optimizer.param_groups[0]) != "fused"
    assert alias.data_ptr() == model.weight.data_ptr() and torch.equal(alias, model.weight.detach())
    del alias  # now the optimizer holds the storage alone: the next build flattens it
    optimizer.load_state_dict(optimizer.state_dict())
    optimizer.step()
    assert optimizer.path(optimizer.param_groups[0]) == "fused"
