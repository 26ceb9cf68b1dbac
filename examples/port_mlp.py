"""The talk's Keras call on an MNIST MLP, ported to PyTorch and checked step by step.

    descentlab port check --entry examples.port_mlp:setup --out port-mlp

The Keras recipe is the talk's last slide, ``SGD(lr=0.01, clipvalue=0.5)``, with Nesterov
momentum; the torch model is the same 784-256-10 network. ``descentlab port check`` copies the
Keras weights into it, compares the forward pass, and trains Keras, ``optim.from_keras`` of the
recipe and a hand-written ``torch.optim.SGD(lr=0.01)`` on the same batches.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
from torch import nn  # noqa: E402

from descentlab.problems import mnist  # noqa: E402


def setup() -> dict:
    keras.utils.set_random_seed(0)
    keras_model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                                    keras.layers.Dense(10)])
    keras_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True,
                                                       clipvalue=0.5),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    torch_model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    splits, _ = mnist.load()
    images, labels = splits["train"]
    return dict(keras_model=keras_model, torch_model=torch_model, data=(images.numpy(), labels.numpy()),
                loss_fn=nn.CrossEntropyLoss(), steps=200, batch_size=128)
