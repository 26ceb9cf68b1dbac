"""``descentlab port explain NAME`` and ``descentlab port check --entry module:setup``."""

from __future__ import annotations

import argparse
import sys

CHECK_ARGUMENTS = ("keras_model", "torch_model", "data", "loss_fn")


def add_arguments(port: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The ``port`` subcommands; returns their parsers (for the options every command takes)."""
    kinds = port.add_subparsers(dest="port", required=True)
    explaining = kinds.add_parser("explain", help="how torch.optim.NAME() and keras.optimizers.NAME() differ")
    explaining.add_argument("name", help="an optimizer: SGD, Adam, RMSprop, Adagrad, Adadelta, Adamax, Nadam, ...")
    checking = kinds.add_parser("check", help="train a Keras model and its PyTorch port side by side")
    checking.add_argument("--entry", required=True,
                          help="module:function returning dict(keras_model=, torch_model=, data=(inputs, targets), "
                               "loss_fn=) and optionally steps=, batch_size=")
    checking.add_argument("--steps", type=int, help="training steps (default: the entry's, else 100)")
    checking.add_argument("--batch-size", type=int, help="examples per step (default: the entry's, else 32)")
    checking.add_argument("--out", default="port-check",
                          help="folder for port-check.png and .html (default port-check)")
    return [explaining, checking]


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from descentlab.port.flavors import explain

    try:
        if args.port == "explain":
            print(explain(args.name))
            return 0
        return _check(args)
    except ValueError as error:
        print(f"descentlab port {args.port}: {error}", file=sys.stderr)
        return 2


def _check(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    from descentlab.lab.compare import load_function
    from descentlab.port.check import check
    from descentlab.port.figure import write

    setup = load_function(args.entry)()
    missing = [name for name in CHECK_ARGUMENTS if not isinstance(setup, dict) or name not in setup]
    if missing:
        raise ValueError(f"`entry` {args.entry!r} must return a dict with {', '.join(CHECK_ARGUMENTS)}. "
                         f"Missing: {', '.join(missing)}")
    steps = args.steps or setup.get("steps", 100)
    batch_size = args.batch_size or setup.get("batch_size", 32)
    result = check(*(setup[name] for name in CHECK_ARGUMENTS), steps=steps, batch_size=batch_size,
                   optimizer=setup.get("optimizer"))
    print(result.summary())
    picture, page = write(result, args.out)
    print(f"wrote {picture} and {page}")
    return 0
