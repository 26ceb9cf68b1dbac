"""Sparse gradients (nn.Embedding(sparse=True)): lazy state for every optimizer, torch-exact SGD/Adagrad."""

from __future__ import annotations

import copy

import pytest
import torch

from cases import ALL_CASES
from descentlab import optim

VOCAB, DIM = 12, 4


def _embedding(seed=0, sparse=True):
    torch.manual_seed(seed)
    return torch.nn.Embedding(VOCAB, DIM, sparse=sparse).double()


def _batches(steps, seed=3, high=VOCAB):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield torch.randint(0, high, (6,), generator=gen), torch.randn(6, DIM, dtype=torch.float64, generator=gen)


def _train(embedding, optimizer, batches):
    for ids, target in batches:
        optimizer.zero_grad()
        ((embedding(ids) - target) ** 2).sum().backward()
        optimizer.step()


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda p: optim.SGD(p, lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
        (lambda p: optim.Adagrad(p, lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
        (
            lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.05, initial_accumulator_value=0.2),
            lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.05, initial_accumulator_value=0.2),
        ),
    ],
    ids=["sgd", "adagrad", "adagrad_decay_accumulator"],
)
def test_sparse_sgd_and_adagrad_match_torch(ours, theirs):
    a, b = _embedding(), _embedding()
    opt_a, opt_b = ours(a.parameters()), theirs(b.parameters())
    _train(a, opt_a, _batches(40))
    _train(b, opt_b, _batches(40))
    assert torch.allclose(a.weight, b.weight, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", ALL_CASES, ids=repr)
def test_sparse_state_is_lazy(case):
    """Rows absent from a batch keep their parameter and their state exactly."""
    embedding = _embedding()
    optimizer = case.make(embedding.parameters())
    _train(embedding, optimizer, _batches(5, high=VOCAB // 2))  # rows >= VOCAB/2 never seen
    assert embedding.weight.grad.is_sparse
    untouched = _embedding().weight[VOCAB // 2 :]
    assert torch.equal(embedding.weight[VOCAB // 2 :], untouched)

    before_param = embedding.weight.detach().clone()
    before_state = copy.deepcopy(optimizer.state[embedding.weight])
    ids = torch.tensor([0, 1, 1])
    optimizer.zero_grad()
    embedding(ids).sum().backward()
    optimizer.step()
    absent = torch.arange(2, VOCAB)
    assert torch.equal(embedding.weight[absent], before_param[absent])
    assert not torch.equal(embedding.weight[:2], before_param[:2])
    for key, value in optimizer.state[embedding.weight].items():
        if torch.is_tensor(value) and value.shape == embedding.weight.shape and key in before_state:
            assert torch.equal(value[absent], before_state[key][absent]), key


@pytest.mark.parametrize("case", ALL_CASES, ids=repr)
def test_sparse_gradient_over_all_rows_equals_dense(case):
    """The lazy path runs the dense step on gathered rows: with every row present, it is the dense step."""
    sparse, dense = _embedding(sparse=True), _embedding(sparse=False)
    opt_sparse, opt_dense = case.make(sparse.parameters()), case.make(dense.parameters())
    every_row = torch.arange(VOCAB).repeat(2)
    gen = torch.Generator().manual_seed(5)
    for _ in range(20):
        target = torch.randn(every_row.numel(), DIM, dtype=torch.float64, generator=gen)
        for emb, opt in ((sparse, opt_sparse), (dense, opt_dense)):
            opt.zero_grad()
            ((emb(every_row) - target) ** 2).sum().backward()
            opt.step()
    assert torch.allclose(sparse.weight, dense.weight, rtol=1e-12, atol=1e-14)
