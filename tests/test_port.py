"""Porting a Keras 3 recipe: from_keras / to_keras, the schedules, against Keras itself (torch backend)."""

from __future__ import annotations

import inspect
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("the port check needs KERAS_BACKEND=torch", allow_module_level=True)

from descentlab import optim  # noqa: E402
from descentlab.port import KerasSchedule, from_keras, to_keras  # noqa: E402
from descentlab.port.schedules import SCHEDULES  # noqa: E402

K, S = keras.optimizers, keras.optimizers.schedules
SHAPES = [(7, 5), (3,), (2, 3, 4)]

# Every Keras optimizer descentlab has, off its defaults, with each clipping option once
OPTIMIZERS = {
    "SGD": lambda: K.SGD(0.05, momentum=0.9, nesterov=True, clipvalue=0.5),
    "RMSprop": lambda: K.RMSprop(0.001, rho=0.8, momentum=0.5, centered=True),
    "RMSprop_clipnorm": lambda: K.RMSprop(0.001, clipnorm=1.0),
    "Adam": lambda: K.Adam(0.001, beta_1=0.8, beta_2=0.99, amsgrad=True),
    "Adam_weight_decay": lambda: K.Adam(0.001, weight_decay=0.01),
    "AdamW": lambda: K.AdamW(0.001, global_clipnorm=2.0),
    "Adadelta": lambda: K.Adadelta(0.5, rho=0.9),
    "Adagrad": lambda: K.Adagrad(0.05, initial_accumulator_value=0.2),
    "Adamax": lambda: K.Adamax(0.002),
    "Nadam": lambda: K.Nadam(0.002, beta_1=0.85),
    "Ftrl": lambda: K.Ftrl(0.1, l1_regularization_strength=0.01, l2_regularization_strength=0.01, beta=0.1),
}
# Keras rounds these to float32 in float64 training too (from_keras's Conventions): compared in float32 only
FLOAT32_ONLY = {"RMSprop_clipnorm", "Adam_weight_decay", "AdamW", "Ftrl"}
SCHEDULE_CASES = {
    "ExponentialDecay": lambda: S.ExponentialDecay(0.1, 7, 0.9, staircase=True),
    "InverseTimeDecay": lambda: S.InverseTimeDecay(0.1, 5, 0.5),
    "PiecewiseConstantDecay": lambda: S.PiecewiseConstantDecay([10, 50], [0.1, 0.05, 0.01]),
    "PolynomialDecay": lambda: S.PolynomialDecay(0.1, 40, 0.001, power=2.0, cycle=True),
    "CosineDecay": lambda: S.CosineDecay(0.0, 60, alpha=0.1, warmup_target=0.2, warmup_steps=15),
    "CosineDecayRestarts": lambda: S.CosineDecayRestarts(0.1, 13, t_mul=1.5, m_mul=0.8, alpha=0.05),
}


def _train(make_keras, dtype: str, steps: int = 100) -> float:
    """The largest relative difference between Keras and from_keras over ``steps`` steps."""
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    ours = [torch.nn.Parameter(torch.tensor(x)) for x in start]
    theirs = [keras.Variable(x, dtype=dtype) for x in start]
    keras_optimizer = make_keras()
    ported = from_keras(keras_optimizer, ours)
    optimizer, scheduler = ported if isinstance(ported, tuple) else (ported, None)
    for _ in range(steps):
        grads = [torch.tensor(rng.standard_normal(shape).astype(dtype) * 2) for shape in SHAPES]
        for p, g in zip(ours, grads, strict=True):
            p.grad = g.clone()
        optimizer.step()
        if scheduler:
            scheduler.step()
        keras_optimizer.apply_gradients(zip([g.clone() for g in grads], theirs, strict=True))
    return max(((p.detach() - v.value.detach().cpu()).abs().max() / v.value.detach().cpu().abs().max()).item()
               for p, v in zip(ours, theirs, strict=True))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_from_keras_trains_as_keras_in_float32(name):
    assert _train(OPTIMIZERS[name], "float32") <= 1e-5


@pytest.mark.parametrize("name", [name for name in OPTIMIZERS if name not in FLOAT32_ONLY])
def test_from_keras_trains_as_keras_in_float64(name):
    assert _train(OPTIMIZERS[name], "float64") <= 1e-14


@pytest.mark.parametrize("name", list(SCHEDULE_CASES))
def test_a_scheduled_keras_optimizer_trains_as_keras(name):
    assert _train(lambda: K.Adam(SCHEDULE_CASES[name]()), "float64") <= 1e-14


@pytest.mark.parametrize("name", list(SCHEDULE_CASES))
def test_each_schedule_gives_keras_learning_rate_at_every_step_across_a_reload(name):
    schedule = SCHEDULE_CASES[name]()
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = optim.SGD([param], lr=1.0, flavor="keras")
    scheduler = KerasSchedule(optimizer, schedule)
    lrs = []
    for step in range(200):
        if step == 90:  # a checkpoint: a new optimizer and scheduler resume from the saved states
            saved = optimizer.state_dict(), scheduler.state_dict()
            optimizer = optim.SGD([param], lr=1.0, flavor="keras")
            scheduler = KerasSchedule(optimizer, keras.optimizers.schedules.serialize(schedule))
            optimizer.load_state_dict(saved[0])
            scheduler.load_state_dict(saved[1])
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == [float(schedule(step)) for step in range(200)]
    assert set(SCHEDULES) == set(SCHEDULE_CASES)


def test_from_keras_reads_a_config_a_serialized_optimizer_and_a_keras_file(tmp_path):
    keras_optimizer = K.Nadam(0.002, beta_1=0.85, clipvalue=0.25)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras_optimizer, loss="mse")
    path = tmp_path / "model.keras"
    model.save(path)
    params = [torch.nn.Parameter(torch.zeros(2))]
    for source in (keras_optimizer, keras_optimizer.get_config(), K.serialize(keras_optimizer), str(path)):
        ported = from_keras(source, params)
        assert type(ported) is optim.Nadam
        group = ported.param_groups[0]
        assert (group["flavor"], group["betas"][0], group["clipvalue"]) == ("keras", np.float32(0.85), 0.25)


@pytest.mark.parametrize("make, message", [
    (lambda: K.Adam(use_ema=True), "`use_ema` cannot be ported: keep an EMA of the weights yourself"),
    (lambda: K.SGD(gradient_accumulation_steps=4), "`gradient_accumulation_steps` cannot be ported: accumulate"),
    (lambda: K.SGD(loss_scale_factor=128.0), "`loss_scale_factor` cannot be ported: scale the loss with"),
    (lambda: K.Lion(), "Keras's Lion has no descentlab equivalent"),
    (lambda: K.Lamb(), "Keras's Lamb has no descentlab equivalent"),
    (lambda: K.SGD(S.ExponentialDecay(0.1, 10, 0.9)), None),
])
def test_options_descentlab_cannot_honour_are_refused_by_name(make, message):
    params = [torch.nn.Parameter(torch.zeros(2))]
    if message is None:  # a schedule it follows is not refused
        assert isinstance(from_keras(make(), params)[1], KerasSchedule)
        return
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        from_keras(make(), params)


def test_an_unknown_schedule_is_refused_by_name():
    class Halving(S.LearningRateSchedule):
        def __call__(self, step):
            return 0.1 / (step + 1)

        def get_config(self):
            return {}

    with pytest.raises(ValueError, match="the learning-rate schedule Halving cannot be ported"):
        from_keras({"class_name": "SGD", "config": {"learning_rate": {"class_name": "Halving", "config": {}}}},
                   [torch.nn.Parameter(torch.zeros(2))])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_follows_a_schedule_as_keras(name):
    """Keras's SGD and RMSprop take the learning rate into their momentum buffer: a changing one tells."""
    def scheduled():
        config = {**OPTIMIZERS[name]().get_config(), "name": None}
        config["learning_rate"] = S.ExponentialDecay(config["learning_rate"], 5, 0.7)
        return type(OPTIMIZERS[name]()).from_config(config)

    dtype, tolerance = ("float32", 1e-5) if name in FLOAT32_ONLY else ("float64", 1e-14)
    assert _train(scheduled, dtype, steps=20) <= tolerance


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_to_keras_gives_back_the_keras_optimizer(name):
    keras_optimizer = OPTIMIZERS[name]()
    ported = from_keras(keras_optimizer, [torch.nn.Parameter(torch.zeros(2))])
    back = to_keras(ported)
    assert type(back) is type(keras_optimizer)
    names = {"name": None}  # Keras numbers each new optimizer's name
    assert {**back.get_config(), **names} == {**keras_optimizer.get_config(), **names}


def test_to_keras_gives_back_the_schedule_with_its_scheduler():
    keras_optimizer = K.SGD(S.CosineDecayRestarts(0.1, 13, t_mul=1.5), momentum=0.9)
    ported, scheduler = from_keras(keras_optimizer, [torch.nn.Parameter(torch.zeros(2))])
    back = to_keras(ported, scheduler)
    names = {"name": None}
    assert {**K.serialize(back)["config"], **names} == {**K.serialize(keras_optimizer)["config"], **names}
    with pytest.raises(ValueError, match="`scheduler` must be the KerasSchedule driving `optimizer`"):
        to_keras(ported, KerasSchedule(optim.SGD([torch.nn.Parameter(torch.zeros(1))], flavor="keras"),
                                       S.ExponentialDecay(0.1, 5, 0.5)))


def test_to_keras_refuses_what_keras_lacks():
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="must have flavor='keras'"):
        to_keras(optim.Adam(params))
    with pytest.raises(ValueError, match="Keras has no `maximize`"):
        to_keras(optim.Adam(params, flavor="keras", maximize=True))
    with pytest.raises(ValueError, match="Keras has no AdaBelief"):
        to_keras(optim.AdaBelief(params, flavor="keras"))


# --- port explain -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW", "Adadelta", "Adagrad", "Adamax", "Nadam", "FTRL"])
def test_explain_states_each_side_default_as_torch_and_keras_have_it(name):
    from descentlab.port import flavors as explaining
    from descentlab.port.optimizers import KERAS

    keras_name = explaining.KERAS_NAMES.get(name, name)
    torch_cls = getattr(torch.optim, explaining.TORCH_NAMES.get(name, name), None)
    keras_config = getattr(K, keras_name)().get_config()
    keras_key = {target: key for key, target in {"learning_rate": "lr", **KERAS[keras_name].names}.items()}
    rows = explaining.differences(name)
    assert rows, name
    for row in rows:
        if not row.what.startswith("default `"):
            continue
        argument = row.what.split("`")[1]
        torch_defaults = inspect.signature(torch_cls).parameters if torch_cls else {}
        if argument in torch_defaults:
            assert eval(row.torch) == torch_defaults[argument].default
        if argument in keras_key:
            assert np.float32(eval(row.keras)) == np.float32(keras_config[keras_key[argument]])
    text = optim.explain(name)
    assert f'descentlab.optim.{optim.NAMED[name].__name__}(params, flavor="keras")' in text


def test_explain_names_the_eps_placement_and_where_the_learning_rate_enters():
    from descentlab.port.flavors import differences

    adam = {row.what: row for row in differences("adam")}
    assert adam["ε placement"].keras.startswith("ε-hat") and adam["ε placement"].torch.startswith("ε added")
    sgd = {row.what: row for row in differences("SGD")}
    assert "inside the buffer" in sgd["learning rate"].keras
    with pytest.raises(ValueError, match="`name` must be one of .* Received: name='Lion'"):
        differences("Lion")


# --- weights and the forward pass ---------------------------------------------------------------------


class ChannelsFirst(torch.nn.Module):
    """Keras's channels-last input to torch's channels-first convolution."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x.movedim(-1, 1))


def _recurrent(cls, **kwargs):
    class Last(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = cls(3, 5, batch_first=True, **kwargs)

        def forward(self, x):
            return self.rnn(x)[0][:, -1]

    return Last()


LAYERS = {  # Keras model, torch model, an input batch
    "Dense": (lambda: [keras.Input((4,)), keras.layers.Dense(3, activation="tanh")],
              lambda: torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()), (6, 4)),
    "Conv1D": (lambda: [keras.Input((9, 2)), keras.layers.Conv1D(4, 3)],
               lambda: ChannelsFirst(torch.nn.Conv1d(2, 4, 3)), (6, 9, 2)),
    "Conv2D": (lambda: [keras.Input((7, 7, 2)), keras.layers.Conv2D(4, 3, activation="relu")],
               lambda: ChannelsFirst(torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.ReLU())), (6, 7, 7, 2)),
    "Embedding": (lambda: [keras.Input((5,), dtype="int64"), keras.layers.Embedding(11, 3)],
                  lambda: torch.nn.Embedding(11, 3), None),
    "LSTM": (lambda: [keras.Input((8, 3)), keras.layers.LSTM(5)], lambda: _recurrent(torch.nn.LSTM), (6, 8, 3)),
    "GRU": (lambda: [keras.Input((8, 3)), keras.layers.GRU(5)], lambda: _recurrent(torch.nn.GRU), (6, 8, 3)),
    "SimpleRNN": (lambda: [keras.Input((8, 3)), keras.layers.SimpleRNN(5)], lambda: _recurrent(torch.nn.RNN),
                  (6, 8, 3)),
    "BatchNormalization": (lambda: [keras.Input((4,)), keras.layers.BatchNormalization()],
                           lambda: torch.nn.BatchNorm1d(4, eps=1e-3), (6, 4)),
    "LayerNormalization": (lambda: [keras.Input((4,)), keras.layers.LayerNormalization()],
                           lambda: torch.nn.LayerNorm(4, eps=1e-3), (6, 4)),
}


@pytest.mark.parametrize("kind", list(LAYERS))
def test_each_layer_type_is_copied_and_computes_the_same(kind):
    from descentlab.port import layers
    from descentlab.port.check import forward_differences

    make_keras, make_torch, shape = LAYERS[kind]
    keras.utils.set_random_seed(0)
    keras_model = keras.Sequential(make_keras())
    rng = np.random.default_rng(0)
    for layer in keras_model.layers:  # random weights everywhere, biases and norms included
        values = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in layer.weights]
        layer.set_weights([np.abs(v) + 0.5 if "variance" in w.path else v
                           for v, w in zip(values, layer.weights, strict=True)])
    torch_model = make_torch()
    matched = layers.copy_weights(keras_model, torch_model)
    inputs = rng.integers(0, 11, (6, 5)) if shape is None else rng.standard_normal(shape).astype("float32")
    ((_, _, difference),) = forward_differences(keras_model, torch_model, inputs, matched)
    assert difference <= 1e-5


@pytest.mark.parametrize("make_torch, message", [
    (lambda: torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)),
     "the torch module '2' \\(Linear\\) has no Keras layer to match"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Conv1d(3, 2, 1)),
     "the Keras layer 'dense_b' \\(Dense\\) meets the torch module '1' \\(Conv1d\\): expected Linear"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(4, 3)), "the Keras layer 'dense_b' \\(Dense\\) has no torch module"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 7)),
     "the Keras layer 'dense_b' gives weight of shape \\(2, 3\\), the torch module '1' has \\(7, 3\\)"),
])
def test_a_mismatched_architecture_names_the_layer(make_torch, message):
    from descentlab.port import layers

    keras_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense_a"),
                                    keras.layers.Dense(2, name="dense_b")])
    with pytest.raises(ValueError, match=message):
        layers.copy_weights(keras_model, make_torch())


# --- the check ----------------------------------------------------------------------------------------


def _mlp_recipe(optimizer):
    keras.utils.set_random_seed(0)
    keras_model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16, activation="relu"),
                                    keras.layers.Dense(3)])
    keras_model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    torch_model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    rng = np.random.default_rng(1)
    data = rng.standard_normal((128, 10)).astype("float32"), rng.integers(0, 3, 128)
    return keras_model, torch_model, data, torch.nn.CrossEntropyLoss()


def test_the_check_finds_the_port_exact_and_the_hand_written_one_drifting():
    from descentlab.port.check import check

    result = check(*_mlp_recipe(K.SGD(0.05, momentum=0.9, nesterov=True, clipvalue=0.5)), steps=30, batch_size=16)
    assert result.forward_mismatch is None
    assert result.first_departure("descentlab") is None  # within float32 rounding at every step
    assert result.first_departure("by hand") == 1  # torch's SGD(lr) has no momentum and no clipping
    assert result.cause().startswith("none")
    assert len(result.losses["keras"]) == len(result.differences["by hand"]) == 30


def test_the_check_names_a_loss_that_differs():
    from descentlab.port.check import check

    keras_model, torch_model, data, _ = _mlp_recipe(K.Adam(0.01))
    result = check(keras_model, torch_model, data, lambda out, y: torch.nn.functional.cross_entropy(out, y) * 2,
                   steps=3, batch_size=16)
    assert "the loss functions differ" in result.cause()


def test_port_check_command_writes_the_picture_and_the_page(tmp_path, monkeypatch, capsys):
    from descentlab.cli import main

    (tmp_path / "recipe.py").write_text(
        "import os\nos.environ.setdefault('KERAS_BACKEND', 'torch')\n"
        "import keras\nfrom test_port import _mlp_recipe\n"
        "def setup():\n"
        "    keras_model, torch_model, data, loss_fn = _mlp_recipe(keras.optimizers.Adam(0.01))\n"
        "    return dict(keras_model=keras_model, torch_model=torch_model, data=data, loss_fn=loss_fn, steps=5)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    assert main(["port", "check", "--entry", "recipe:setup", "--out", "out"]) == 0
    printed = capsys.readouterr().out
    assert "port check: Adam, 5 steps" in printed and "descentlab:" in printed
    assert (tmp_path / "out" / "port-check.png").read_bytes().startswith(b"\x89PNG")
    assert "<img" in (tmp_path / "out" / "port-check.html").read_text()
    assert main(["port", "check", "--entry", "recipe:nothing"]) == 2


def test_an_lstm_port_trains_exactly_with_torch_second_bias_frozen():
    from descentlab.port.check import check

    keras.utils.set_random_seed(0)
    keras_model = keras.Sequential([keras.Input((6,), dtype="int64"), keras.layers.Embedding(30, 8),
                                    keras.layers.LSTM(12, return_sequences=True), keras.layers.Dense(30)])
    keras_model.compile(optimizer=K.Adam(S.CosineDecay(1e-3, 20, warmup_target=1e-2, warmup_steps=5)),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.lstm, self.out = torch.nn.Embedding(30, 8), torch.nn.LSTM(8, 12, batch_first=True), \
                torch.nn.Linear(12, 30)

        def forward(self, x):
            return self.out(self.lstm(self.embed(x))[0])

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 30, (64, 7))
    result = check(keras_model, Model(), (tokens[:, :-1], tokens[:, 1:]),
                   lambda out, y: torch.nn.functional.cross_entropy(out.reshape(-1, 30), y.reshape(-1)),
                   steps=8, batch_size=4)
    assert result.first_departure("descentlab") is None
    assert result.first_departure("by hand") is not None
    assert "keeps bias_hh_l0 at 0" in result.summary()


def test_a_functional_model_with_same_padding_is_checked_and_a_padding_that_differs_is_named():
    from descentlab.port.check import check

    keras.utils.set_random_seed(0)
    inputs = keras.Input((9, 2))
    hidden = keras.layers.Conv1D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    keras_model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(hidden)))
    keras_model.compile(optimizer=K.RMSprop(0.01, momentum=0.5), loss="mse")
    data = np.random.default_rng(0).standard_normal((32, 9, 2)).astype("float32"), np.zeros((32, 1), "float32")

    class Port(torch.nn.Module):  # Keras flattens channels last
        def __init__(self, padding):
            super().__init__()
            self.conv, self.out = torch.nn.Conv1d(2, 4, 3, padding=padding), torch.nn.Linear(36, 1)

        def forward(self, x):
            return self.out(torch.relu(self.conv(x.movedim(-1, 1))).movedim(1, -1).flatten(1))

    result = check(keras_model, Port(1), data, torch.nn.MSELoss(), steps=5, batch_size=8)
    assert (result.forward_mismatch, result.first_departure("descentlab"), result.known) == (None, None, [])
    with pytest.raises(ValueError, match="the Keras layer 'conv' gives outputs of shape \\(8, 9, 4\\), the torch "
                                         "module 'conv' \\(8, 7, 4\\): the Keras Conv1D 'conv': padding='same' in "
                                         "Keras, padding=\\(0,\\) in 'conv'"):
        check(keras_model, Port(0), data, torch.nn.MSELoss(), steps=1, batch_size=8)


def _normalized_recipe(middle, torch_middle):
    keras.utils.set_random_seed(0)
    keras_model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16), middle, keras.layers.Dense(3)])
    keras_model.compile(optimizer=K.SGD(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    torch_model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch_middle, torch.nn.Linear(16, 3))
    rng = np.random.default_rng(1)
    return keras_model, torch_model, (rng.standard_normal((64, 10)).astype("float32"), rng.integers(0, 3, 64))


def test_batch_statistics_and_dropout_are_named_as_what_differs():
    from descentlab.port.check import check

    loss = torch.nn.CrossEntropyLoss()
    result = check(*_normalized_recipe(keras.layers.BatchNormalization(name="norm"),
                                       torch.nn.BatchNorm1d(16, eps=1e-3, momentum=0.01)), loss, steps=4, batch_size=16)
    assert result.first_departure("descentlab") is None  # a bias that only rounding moves is not a departure
    assert result.known == ["the Keras BatchNormalization 'norm': its moving variance averages the biased batch "
                            "variance, torch's the unbiased one (n/(n − 1) times larger): evaluation outputs differ "
                            "slightly after training, the trained weights do not"]
    result = check(*_normalized_recipe(keras.layers.BatchNormalization(name="norm"), torch.nn.BatchNorm1d(16)), loss,
                   steps=1, batch_size=16)
    assert "the Keras BatchNormalization 'norm': momentum=0.99 in Keras is momentum=0.01 in torch" in result.cause()
    assert "epsilon=0.001 in Keras, eps=1e-05 in '1'" in result.summary()
    result = check(*_normalized_recipe(keras.layers.Dropout(0.3, name="drop"), torch.nn.Dropout(0.3)), loss,
                   steps=1, batch_size=16)
    assert result.cause().startswith("the first losses differ with equal weights: the Keras Dropout 'drop' draws its "
                                     "own random numbers in training")
    result = check(*_normalized_recipe(keras.layers.Dense(16, kernel_regularizer="l2", name="penalized"),
                                       torch.nn.Linear(16, 16)), loss, steps=1, batch_size=16)
    assert result.cause() == ("the first losses differ with equal weights: the Keras Dense 'penalized' has a "
                              "kernel_regularizer: Keras adds its penalty to the loss: add it to loss_fn")


def test_a_bias_on_one_side_only_is_named():
    from descentlab.port import layers

    keras_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, use_bias=False, name="dense")])
    with pytest.raises(ValueError, match="the Keras layer 'dense' and the torch module '0' differ: '0' has "
                                         "bias, 'dense' none"):
        layers.copy_weights(keras_model, torch.nn.Sequential(torch.nn.Linear(4, 3)))
