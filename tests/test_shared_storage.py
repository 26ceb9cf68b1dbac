"""Parameters whose storage someone else holds are trained where they live, on every path.

An alias taken before training, Hogwild's shared memory with forked workers, ZeRO's bucket views
and FSDP2's DTensor shards (two gloo ranks, in the one spawn of ``distributed_worker.py`` that
serves the suite), each against torch.optim.
"""

from __future__ import annotations

import json
import multiprocessing
import warnings

import pytest
import torch

from cases import ALL_CASES
from descentlab import optim
from descentlab.optim.paths import numba_kernels as _kernels
from helpers import clone_params, make_params, max_relative_difference, random_gradients

PATHS = {
    "reference": dict(foreach=False, fused=False),
    "foreach": dict(foreach=True),
    "fused": dict(fused=True),
    "default": {},
}
needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")


def _paths():
    unavailable = _kernels.unavailable_reason() is not None
    skip = pytest.mark.skipif(unavailable, reason="fused path unavailable")
    return [pytest.param(path, marks=[skip] if path == "fused" else []) for path in PATHS]


@pytest.mark.parametrize("path", _paths())
def test_an_alias_taken_before_training_follows_the_weight(path):
    model = torch.nn.Linear(3, 2)
    alias = model.weight.detach()
    optimizer = optim.Adam(model.parameters(), lr=0.1, **PATHS[path])
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.ones(4, 3)).sum().backward()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # fused=True says it steps in place
            optimizer.step()
    assert alias.data_ptr() == model.weight.data_ptr()
    assert torch.equal(alias, model.weight.detach())
    assert not torch.equal(alias, torch.zeros_like(alias))


def test_fused_true_says_why_it_steps_a_shared_group_in_place():
    if _kernels.unavailable_reason() is not None:
        pytest.skip("fused path unavailable")
    p = torch.nn.Parameter(torch.ones(3))
    alias = p.detach()
    optimizer = optim.SGD([p], lr=0.5, fused=True)
    p.grad = torch.ones(3)
    message = r"table path, in place: params\[0\]'s storage has 1 other holder"
    with pytest.warns(RuntimeWarning, match=message):
        optimizer.step()
    assert alias.tolist() == [0.5] * 3


def test_a_group_flattened_before_an_alias_keeps_its_buffer_across_a_rebuild():
    """An alias made after flattening views the flat buffer: a rebuild (load_state_dict) must not move it."""
    if _kernels.unavailable_reason() is not None:
        pytest.skip("fused path unavailable")
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))]
    optimizer = optim.SGD(params, lr=0.5)
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    assert optimizer.path(optimizer.param_groups[0]) == "fused"
    alias = params[1].detach()
    optimizer.load_state_dict(optimizer.state_dict())
    optimizer.step()
    assert alias.tolist() == [0.0, 0.0] and params[1].data_ptr() == alias.data_ptr()


def _aliased_trajectory(case, start, path, steps=12, sparse=()):
    """``start``'s parameters after ``steps`` steps on ``path``, each held by an alias all along."""
    params = clone_params(start)
    aliases = [p.detach() for p in params]
    optimizer = case.make(params, **PATHS[path])
    for grads in random_gradients(params, steps):
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            p.grad = g.to_sparse(1) if i in sparse else g
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            optimizer.step()
    assert all(alias.data_ptr() == p.data_ptr() for alias, p in zip(aliases, params, strict=True))
    assert optimizer.path(optimizer.param_groups[0]) == ("table" if path == "default" else path)
    return optimizer, params


needs_kernels = pytest.mark.skipif(_kernels.unavailable_reason() is not None, reason="fused path unavailable")


# every kernel structure in float64; float32 (another compilation) and complex for a few
TABLE_CASES = [pytest.param(case, torch.float64, id=f"{case.id}-float64") for case in ALL_CASES] + [
    pytest.param(case, dtype, id=f"{case.id}-{str(dtype).removeprefix('torch.')}")
    for case in ALL_CASES if case.id in ("adam", "rmsprop_centered_momentum", "nadam")
    for dtype in (torch.float32, torch.complex128)
]


@needs_kernels
@pytest.mark.parametrize("case, dtype", TABLE_CASES)
def test_the_pointer_table_kernel_steps_held_parameters_as_the_reference_does(case, dtype):
    """A group held elsewhere is stepped in place by the fused kernel through a table of addresses."""
    start = make_params(dtype, [(7, 5), (3,), (0,), (2, 3, 4), (1,), ()])
    _, ours = _aliased_trajectory(case, start, "default")
    _, reference = _aliased_trajectory(case, start, "reference")
    tolerance = 1e-12 if dtype != torch.float32 else 1e-6  # as the fused path against the reference
    assert max_relative_difference(ours, reference) <= tolerance


@needs_kernels
def test_the_pointer_table_path_with_sparse_gradients_and_the_users_own_state():
    start = make_params(torch.float64, [(6, 3), (4,), (5, 2)])
    case = next(case for case in ALL_CASES if case.id == "adam")
    table, ours = _aliased_trajectory(case, start, "default", sparse={0})
    _, reference = _aliased_trajectory(case, start, "reference", sparse={0})
    assert max_relative_difference(ours, reference) <= 1e-12
    exp_avg = table.state[ours[1]]["exp_avg"]
    ours[1].grad = torch.ones(4, dtype=torch.float64).expand(2, 4)[0]  # a view, not a tensor of its own
    table.step()
    assert table.state[ours[1]]["exp_avg"] is exp_avg and exp_avg._base is None  # updated where it is


def _held_trajectory(path: str, start, steps: int = 6) -> list:
    """Adam with clipping on ``start``'s parameters, each held by an alias; ``params[1]`` skips steps 1 and 4,
    after step 3 the state is reloaded with its matrices non-contiguous, after step 4 one entry is replaced so."""
    params = clone_params(start)
    aliases = [p.detach() for p in params]
    optimizer = optim.Adam(params, lr=0.1, clipnorm=0.5, **PATHS[path])
    for t, grads in enumerate(random_gradients(params, steps)):
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            p.grad = None if (i == 1 and t % 3 == 1) else g
        optimizer.step()
        if t == 3:
            saved = optimizer.state_dict()
            for entries in saved["state"].values():
                entries.update({key: value.t().contiguous().t() for key, value in entries.items() if value.dim() == 2})
            optimizer.load_state_dict(saved)
        if t == 4:  # replaced behind the optimizer's back, read when the runs change at the next step
            entries = optimizer.state[params[1]]
            entries["exp_avg"] = torch.zeros(10, dtype=torch.float64)[::2].copy_(entries["exp_avg"])
    assert all(alias.data_ptr() == p.data_ptr() for alias, p in zip(aliases, params, strict=True))
    assert optimizer.path(optimizer.param_groups[0]) == ("table" if path == "default" else path)
    return params


@needs_kernels
def test_the_pointer_table_path_through_partial_steps_clipping_and_a_reload():
    """Runs of parameters that agree on their step counts, a scratch buffer for the clipped gradients, state
    read by address (replaced once by a contiguous copy where it was loaded non-contiguous): as the reference."""
    start = make_params(torch.float64, [(4, 3), (5,), (2, 2), (3,)])
    ours, reference = _held_trajectory("default", start), _held_trajectory("reference", start)
    assert max_relative_difference(ours, reference) <= 1e-12


def _hogwild_worker(model, kwargs):
    optimizer = optim.SGD(model.parameters(), lr=0.1, **kwargs) if kwargs is not None else \
        torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.ones(2, 3)).sum().backward()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            optimizer.step()


@needs_fork
@pytest.mark.parametrize("path", _paths())
def test_hogwild_workers_train_the_shared_model(path):
    context = multiprocessing.get_context("fork")
    results = []
    for kwargs in (None, PATHS[path]):  # torch.optim.SGD, then descentlab's
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        model.share_memory()
        workers = [context.Process(target=_hogwild_worker, args=(model, kwargs)) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
        results.append(model.weight.detach().clone())
    # one worker after the other: the same arithmetic as torch's
    assert torch.equal(results[1], results[0])
    assert results[0].abs().max() > 1.0


def _two_rank_results(folder, name: str) -> list[dict]:
    """Both ranks' results of one check of ``distributed_worker.py`` (one spawn serves the suite)."""
    for rank in range(2):
        errors = json.loads((folder / f"errors{rank}.json").read_text())
        assert name not in errors, f"rank {rank}: {errors.get(name)}"
    return [torch.load(folder / f"{name}{rank}.pt") for rank in range(2)]


def test_zero_with_bucket_views_trains_every_parameter_on_every_path(two_ranks):
    ranks = _two_rank_results(two_ranks, "zero")
    for name in PATHS:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        assert torch.allclose(ranks[0][name], ranks[0]["torch"], rtol=0, atol=1e-7), name
    assert torch.allclose(ranks[0]["torch"], torch.full((2, 4), 0.7), atol=1e-6)


@pytest.mark.parametrize("path", _paths())
def test_a_step_without_gradients_leaves_no_state_entries(path):
    params = [torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))]
    optimizer = optim.Adam(params, **PATHS[path])
    optimizer.step()
    assert optimizer.state_dict()["state"] == {}
    params[1].grad = torch.ones(3)
    optimizer.step()
    assert list(optimizer.state_dict()["state"]) == [1]


@pytest.mark.parametrize("path", _paths())
def test_ftrl_at_lr_zero_takes_no_step(path):
    """torch.distributed.checkpoint initializes state with one step at lr = 0; warm-ups start there."""
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = optim.FTRL([p], lr=0.0, beta=0.1, l1=0.01, **PATHS[path])
    p.grad = torch.tensor([0.5, 0.5])
    optimizer.step()
    assert p.tolist() == [1.0, -2.0]
    assert optimizer.state[p]["step"].item() == 1 and optimizer.state[p]["linear"].tolist() == [0.0, 0.0]
    optimizer.param_groups[0]["lr"] = 0.1
    optimizer.step()
    assert p.tolist() != [1.0, -2.0]


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Nadam", "RMSprop", "Adadelta", "Adamax", "SGD", "Adagrad"])
def test_torch_switches_are_taken_at_the_values_honoured_and_refused_by_name_otherwise(name):
    cls = optim.NAMED[name]
    params = [torch.nn.Parameter(torch.ones(2))]
    switches = ["differentiable"] if name in ("SGD", "Adagrad") else ["capturable", "differentiable"]
    for switch in switches:
        assert cls(params, **{switch: False}).param_groups[0][switch] is False
        with pytest.raises(ValueError, match=rf"`{switch}` must be False.*Received: {switch}=True"):
            cls(params, **{switch: True})
    if name in ("SGD", "Adagrad"):
        with pytest.raises(TypeError):  # torch's SGD and Adagrad have no `capturable` either
            cls(params, capturable=False)


def test_fsdp2_dtensor_groups_on_every_path_and_a_dcp_round_trip(two_ranks):
    """FSDP2 with a group of one DTensor, every path against torch; DCP restores the optimizer exactly."""
    ranks = _two_rank_results(two_ranks, "fsdp")
    for name in [*PATHS, "restored"]:
        for mine, other in zip(ranks[0][name], ranks[1][name], strict=True):
            assert torch.equal(mine, other), name
    for name in PATHS:
        for mine, expected in zip(ranks[0][name], ranks[0]["torch"], strict=True):
            assert torch.allclose(mine, expected, rtol=0, atol=1e-6), name
    for mine, expected in zip(ranks[0]["restored"], ranks[0]["continued"], strict=True):
        assert torch.equal(mine, expected)
    # the default path steps the local shards with the fused kernel through a table, before and after DCP
    assert ranks[0]["paths"] == ranks[1]["paths"] == ["table"] * 4


@needs_kernels
@pytest.mark.parametrize("aliased", [False, True], ids=["fused", "table"])
def test_conjugated_gradients_are_read_as_their_values(aliased):
    """Autograd leaves a lazily conjugated gradient (``conj(p)``'s backward): its memory holds the unconjugated
    values, so the kernel must not read it by its address."""
    c = torch.tensor([1 + 2j, 3 - 1j, 0.5j], dtype=torch.complex128)
    results = []
    for make in (torch.optim.SGD, optim.SGD):
        p = torch.nn.Parameter(torch.tensor([1 + 1j, 2 - 1j, 0.5], dtype=torch.complex128))
        alias = p.detach() if aliased else None
        optimizer = make([p], lr=0.1)
        for _ in range(3):
            optimizer.zero_grad()
            (torch.conj(p) * c).real.sum().backward()
            assert p.grad.is_conj()
            optimizer.step()
        results.append(p.detach().clone())
    assert optimizer.path(optimizer.param_groups[0]) == ("table" if aliased else "fused")
    assert alias is None or alias.data_ptr() == p.data_ptr()
    assert torch.allclose(results[1], results[0], rtol=0, atol=1e-15)


def _reloaded_trajectory(kwargs: dict, aliased: bool) -> list:
    """Adam whose state is put back as ZeroRedundancyOptimizer.load_state_dict does (``state[p] = ...``, a new
    dict per parameter) after step 4, and one parameter's started over (``state[p] = {}``) after step 5."""
    params = make_params(torch.float64, [(4, 3), (5,)])
    aliases = [p.detach() for p in params] if aliased else None
    optimizer = optim.Adam(params, lr=0.1, **kwargs)
    for t, grads in enumerate(random_gradients(params, 8)):
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        optimizer.step()
        if t == 1:
            saved = {p: {key: value.clone() for key, value in optimizer.state[p].items()} for p in params}
        if t == 3:
            for p in params:
                optimizer.state[p] = {key: value.clone() for key, value in saved[p].items()}
        if t == 4:
            optimizer.state[params[1]] = {}
    assert aliases is None or optimizer.path(optimizer.param_groups[0]) in ("table", "reference")
    return [*params, *(optimizer.state[p]["exp_avg"] for p in params), *(optimizer.state[p]["step"] for p in params)]


@needs_kernels
@pytest.mark.parametrize("aliased", [False, True], ids=["fused", "table"])
def test_state_put_back_behind_the_optimizers_back_is_the_state_stepped(aliased):
    ours = _reloaded_trajectory({}, aliased)
    reference = _reloaded_trajectory(dict(foreach=False, fused=False), aliased)
    assert max_relative_difference(ours, reference) <= 1e-12


def test_fsdp2_groups_that_start_clipping_leave_the_shards_table(two_ranks):
    """The norm spans both ranks' shards: a group kept on the table path must leave it when it starts clipping."""
    ranks = _two_rank_results(two_ranks, "fsdp_clipping")
    for mine, other in zip(ranks[0]["default"], ranks[1]["default"], strict=True):
        assert torch.equal(mine, other)
    for mine, expected in zip(ranks[0]["default"], ranks[0]["foreach"], strict=True):
        assert torch.allclose(mine, expected, rtol=0, atol=1e-6)
    assert ranks[0]["default paths"] == ["foreach", "foreach"]


def test_dtensor_gradients_placed_unlike_their_parameters_are_redistributed(two_ranks):
    """A Partial gradient's local shard is one rank's addend, a sharded one's a part: read as the shards of
    the gradient placed as its parameter is (as DTensor arithmetic on the foreach path does), never past an end."""
    ranks = _two_rank_results(two_ranks, "placements")
    for rank in ranks:
        for mine, expected in zip(rank["default"], rank["foreach"], strict=True):
            assert torch.allclose(mine, expected, rtol=0, atol=1e-6)
        assert (rank["default path"], rank["foreach path"]) == ("table", "foreach")
    for mine, other in zip(ranks[0]["default"], ranks[1]["default"], strict=True):
        assert torch.equal(mine, other)
