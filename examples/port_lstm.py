"""A Keras word-level LSTM language model on PTB with Adam and a cosine schedule, ported to PyTorch.

    descentlab port check --entry examples.port_lstm:setup --out port-lstm

Keras: Embedding(2000, 64) → LSTM(128, return_sequences=True) → Dense(2000), trained by
``Adam(CosineDecay(1e-3, 100, warmup_target=3e-3, warmup_steps=20))``. PyTorch: descentlab's
``LSTMLanguageModel`` of the same sizes. The check trains Keras, ``optim.from_keras`` of the
recipe (Adam with Keras's ε and its schedule as a torch scheduler) and ``torch.optim.Adam(lr=1e-3)``
on the same batches of 20 × 35 tokens.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from descentlab.problems.text import LSTMLanguageModel, build_vocab, load_ptb  # noqa: E402

VOCAB, SEQUENCE = 2000, 35


def loss_fn(logits, targets):
    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


def setup() -> dict:
    tokens, _ = load_ptb()
    words, _ = build_vocab(tokens["train"], max_size=VOCAB, unk="<unk>")
    index = {word: i for i, word in enumerate(words)}
    ids = np.array([index.get(w, index["<unk>"]) for w in tokens["train"]], dtype=np.int64)
    count = (len(ids) - 1) // SEQUENCE
    inputs = ids[: count * SEQUENCE].reshape(count, SEQUENCE)
    targets = ids[1 : count * SEQUENCE + 1].reshape(count, SEQUENCE)
    keras.utils.set_random_seed(0)
    keras_model = keras.Sequential([keras.Input((SEQUENCE,), dtype="int64"), keras.layers.Embedding(VOCAB, 64),
                                    keras.layers.LSTM(128, return_sequences=True), keras.layers.Dense(VOCAB)])
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, 100, warmup_target=3e-3, warmup_steps=20)
    keras_model.compile(optimizer=keras.optimizers.Adam(schedule),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return dict(keras_model=keras_model, torch_model=LSTMLanguageModel(VOCAB, 64, 128, 1),
                data=(inputs, targets), loss_fn=loss_fn, steps=120, batch_size=20)
