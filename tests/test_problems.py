"""Every problem: determinism, shapes, evaluate keys, Adam learns within the default budget."""

from __future__ import annotations

import functools
import itertools
import math

import pytest
import torch

from conftest import data_present
from descentlab import optim, problems
from descentlab.problems.surfaces import SURFACES

NEEDS = {
    "mnist_logreg": ("mnist", "t10k-images-idx3-ubyte"),
    "mnist_mlp": ("mnist", "t10k-images-idx3-ubyte"),
    "word2vec": ("ptb", "ptb.valid.txt"),
    "lstm_lm": ("ptb", "ptb.valid.txt"),
    "char_lstm": ("tinyshakespeare", "input.txt"),
}
SHUFFLED = {"quadratic", "mnist_logreg", "mnist_mlp", "word2vec", "lstm_lm", "char_lstm", "sparse_logreg"}


@functools.cache
def _problem(name):
    if name in NEEDS and not data_present(*NEEDS[name]):
        pytest.skip(f"{name} needs {'/'.join(NEEDS[name])}: set DESCENTLAB_DATA")
    return problems.get(name)


def _equal_batches(a, b):
    if torch.is_tensor(a):
        return torch.equal(a, b)
    return all(_equal_batches(x, y) for x, y in zip(a, b, strict=True))


def _train(problem, model, optimizer, steps, batch_size, seed=0):
    losses = []
    for batch in itertools.islice(problem.batches("train", batch_size, seed), steps):
        optimizer.zero_grad()
        loss = problem.loss(model, batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_names_are_the_registry():
    assert problems.names() == [
        "beale", "rosenbrock", "saddle", "valley", "rastrigin", "himmelblau", "cliff", "quadratic",
        "mnist_logreg", "mnist_mlp", "word2vec", "lstm_lm", "char_lstm", "sparse_logreg",
    ]


@pytest.mark.parametrize("name", problems.names())
def test_same_seed_same_init_batches_and_losses(name):
    problem = _problem(name)
    a, b = problem.model(3), problem.model(3)
    for (key, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), key
    batch_size = problem.default_batch_size
    for first, second in zip(
        itertools.islice(problem.batches("train", batch_size, 7), 3),
        itertools.islice(problem.batches("train", batch_size, 7), 3), strict=True
    ):
        assert _equal_batches(first, second)
    losses_a = _train(problem, a, optim.SGD(a.parameters(), lr=1e-3), 3, batch_size, seed=7)
    losses_b = _train(problem, b, optim.SGD(b.parameters(), lr=1e-3), 3, batch_size, seed=7)
    assert losses_a == losses_b
    if name in SHUFFLED:
        other = next(problem.batches("train", batch_size, 8))
        assert not _equal_batches(next(problem.batches("train", batch_size, 7)), other)


@pytest.mark.parametrize("name", problems.names())
def test_loss_is_a_finite_scalar_and_evaluate_reports_loss_and_metric(name):
    problem = _problem(name)
    model = problem.model(0)
    loss = problem.loss(model, next(problem.batches("train", problem.default_batch_size, 0)))
    assert loss.shape == () and math.isfinite(loss.item()) and loss.requires_grad
    for split in ("train", "valid", "test"):
        report = problem.evaluate(model, split)
        assert {"loss", problem.metric} <= set(report) and all(math.isfinite(v) for v in report.values())
    info = problem.info()
    assert info["provenance"] and info["description"] and info["default_steps"] > 0


# The cliff starts on a terrace 40 above its basin, 3 units from the wall: at Adam's default lr
# (1e-3 per coordinate and step) that is ~3,000 steps of almost no change in loss, by design.
# tests/test_clipping.py tests what the cliff is for.
@pytest.mark.parametrize("name", [name for name in problems.names() if name != "cliff"])
def test_adam_at_its_default_lr_lowers_validation_loss_within_the_default_budget(name):
    problem = _problem(name)
    torch.manual_seed(0)
    model = problem.model(0)
    before = problem.evaluate(model, "valid")
    _train(problem, model, optim.Adam(model.parameters()), problem.default_steps, problem.default_batch_size)
    after = problem.evaluate(model, "valid")
    assert after["loss"] <= 0.9 * before["loss"], (before, after)
    # what the lab selects and ranks by prefers the trained model to the untrained one
    untrained = problem.evaluate(problem.model(0), "valid")[problem.metric]
    trained = after[problem.metric]
    assert trained < untrained if problem.metric_goal == "min" else trained > untrained, (untrained, trained)


@pytest.mark.parametrize("name", sorted(SHUFFLED - {"word2vec"}))
def test_full_batch_is_the_whole_split_and_batch_one_is_one_example(name):
    problem = _problem(name)
    full = next(problem.batches("train", None, 0))
    single = next(problem.batches("train", 1, 0))
    first = lambda batch: batch if torch.is_tensor(batch) else batch[0]  # noqa: E731
    assert len(first(single)) == 1
    assert len(first(full)) == problem.train_examples  # every problem: one full batch is one epoch
    sizes = {"quadratic": 1000, "sparse_logreg": 100_000}  # and where the size is known here, that size
    assert len(first(full)) == sizes.get(name, problem.train_examples)


def test_epochs_are_reshuffled_and_cover_every_example():
    problem = _problem("quadratic")  # 1000 training examples
    batches = problem.batches("train", 100, 0)
    epoch_one = torch.cat([next(batches) for _ in range(10)])
    epoch_two = torch.cat([next(batches) for _ in range(10)])
    examples = problem.examples["train"]
    for epoch in (epoch_one, epoch_two):
        assert torch.equal(epoch.sort(dim=0).values, examples.sort(dim=0).values)
    assert not torch.equal(epoch_one, epoch_two)


@pytest.mark.parametrize("bad, message", [
    (dict(split="training"), r"`split` must be one of \('train', 'valid', 'test'\)\. Received: split='training'"),
    (
        dict(batch_size=0),
        r"`batch_size` must be a positive integer, or None for the full batch\. Received: batch_size=0",
    ),
])
def test_bad_split_or_batch_size_is_a_clear_error(bad, message):
    problem = _problem("quadratic")
    arguments = {"split": "train", "batch_size": 8, "seed": 0, **bad}
    with pytest.raises(ValueError, match=message):
        next(problem.batches(**arguments))


def test_unknown_problem_or_option_lists_what_is_valid():
    with pytest.raises(ValueError, match=r"Unknown problem 'mnist'\. Valid names: beale, rosenbrock"):
        problems.get("mnist")
    with pytest.raises(ValueError, match=r"Problem 'quadratic' has no option 'size'\. Valid options: dim, noise"):
        problems.get("quadratic", size=3)
    with pytest.raises(ValueError, match=r"`start` must be an index into beale's starts"):
        problems.get("beale", start=5)


# --- surfaces ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SURFACES))
def test_surface_gradient_matches_its_analytic_form(name):
    surface = SURFACES[name]
    points = (torch.rand(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) - 0.5) * 8
    points.requires_grad_(True)
    (autograd,) = torch.autograd.grad(surface.f(points).sum(), points)
    assert torch.allclose(surface.grad(points.detach()), autograd, rtol=1e-10, atol=1e-10)


def test_noisy_population_loss_grad_and_metrics_match_the_single_run_forms():
    from descentlab.problems.surfaces import SurfaceProblem

    problem = SurfaceProblem("beale", noise=0.3)
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(16, 2, dtype=torch.float64, generator=gen).requires_grad_(True)
    batches = torch.randn(16, 2, dtype=torch.float64, generator=gen)
    (autograd,) = torch.autograd.grad(problem.population_loss(points, batches).sum(), points)
    assert torch.allclose(problem.population_grad(points.detach(), batches), autograd, rtol=1e-10, atol=1e-10)
    model = problem.model(0)
    with torch.no_grad():
        model.xy.copy_(points[3])
    assert problem.loss(model, batches[3]).item() == pytest.approx(problem.population_loss(points, batches)[3].item())
    metrics = problem.population_metrics(points.detach())
    assert problem.evaluate(model, "valid") == pytest.approx({k: v[3].item() for k, v in metrics.items()})


@pytest.mark.parametrize("name", list(SURFACES))
def test_surface_is_vectorized_and_its_minima_are_stationary(name):
    surface = SURFACES[name]
    points = torch.tensor(surface.starts, dtype=torch.float64)
    assert torch.equal(surface.f(points), torch.stack([surface.f(p) for p in points]))
    grid = torch.randn(5, 7, 2, dtype=torch.float64)
    assert surface.f(grid).shape == (5, 7)
    for minimum in surface.minima:
        assert surface.grad(torch.tensor(minimum, dtype=torch.float64)).abs().max() < 1e-4


def test_surface_noise_shrinks_with_batch_size_and_vanishes_in_full_batch():
    problem = problems.get("valley", noise=1.0)
    small = torch.stack([b for b in itertools.islice(problem.batches("train", 1, 0), 2000)])
    large = torch.stack([b for b in itertools.islice(problem.batches("train", 100, 0), 2000)])
    assert 0.9 < small.std().item() < 1.1 and 0.08 < large.std().item() < 0.12
    assert torch.equal(next(problem.batches("train", None, 0)), torch.zeros(2))
    assert torch.equal(next(problem.batches("valid", 1, 0)), torch.zeros(2))


def test_saddle_starts_on_its_symmetry_line_and_plain_gd_never_leaves_it():
    problem = problems.get("saddle")
    model = problem.model(0)
    _train(problem, model, optim.SGD(model.parameters(), lr=0.1), 100, None)
    assert model.xy[1].item() == 0.0 and abs(model.xy[0].item()) < 1e-6
    noisy = problems.get("saddle", noise=0.1)
    model = noisy.model(0)
    _train(noisy, model, optim.SGD(model.parameters(), lr=0.1), 100, 1)
    assert abs(model.xy[1].item()) > 1.0  # noise breaks the symmetry and the descent runs away along y


# --- data-backed problems ---------------------------------------------------------------------


def test_mnist_offline_fallback_splits_the_test_set(shared_data):
    problem = _problem("mnist_logreg")
    assert [len(problem.splits[s][1]) for s in ("train", "valid", "test")] == [8000, 1000, 1000]
    assert "test split only" in problem.provenance and "train = test images 0-7999" in problem.provenance


def test_mnist_uses_the_standard_split_when_the_full_set_is_present(tmp_path, monkeypatch, shared_data):
    """Full training files (stand-ins, checksummed for this test) switch to 55k/5k/10k."""
    from descentlab import data
    from descentlab.problems import mnist

    folder = tmp_path / "mnist"
    folder.mkdir()
    images = folder / "train-images-idx3-ubyte"
    labels = folder / "train-labels-idx1-ubyte"
    header = bytes([0, 0, 8, 3]) + (60000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    images.write_bytes(header + bytes(60000 * 784))
    labels.write_bytes(bytes([0, 0, 8, 1]) + (60000).to_bytes(4, "big") + bytes(i % 10 for i in range(60000)))
    for path in (images, labels):
        key = ("mnist", path.name)
        monkeypatch.setitem(data.FILES, key, data.RemoteFile("mnist", path.name + ".gz", "", "", data.sha256_of(path)))
    mnist.load.cache_clear()
    try:
        problem = problems.get("mnist_logreg", data_dir=str(tmp_path))
        assert [len(problem.splits[s][1]) for s in ("train", "valid", "test")] == [55000, 5000, 10000]
        assert "train = images 0-54999, valid = 55000-59999" in problem.provenance
    finally:
        mnist.load.cache_clear()


def test_word2vec_uses_sparse_embeddings_and_reports_neighbours():
    problem = _problem("word2vec")
    model = problem.model(0)
    problem.loss(model, next(problem.batches("train", 64, 0))).backward()
    assert model.center.weight.grad.is_sparse and model.context.weight.grad.is_sparse
    report = problem.nearest_neighbours(model, k=3)
    assert report and all(len(neighbours) == 3 and word not in neighbours for word, neighbours in report.items())
    assert "text8 unavailable" in problem.provenance or "text8" in problem.provenance


def test_sparse_logreg_ftrl_with_l1_zeroes_weights_exactly():
    problem = _problem("sparse_logreg")
    model = problem.model(0)
    optimizer = optim.FTRL(model.parameters(), lr=0.1, l1=1.0)
    _train(problem, model, optimizer, problem.default_steps, problem.default_batch_size)
    report = problem.evaluate(model, "valid")
    touched = (optimizer.state[model.weights.weight]["linear"] != 0).float().mean().item()
    assert report["loss"] < 0.6 and report["zero_fraction"] > 1 - touched / 2
    assert report["bayes_loss"] < report["loss"]
