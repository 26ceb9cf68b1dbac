"""The port check as a picture: the three runs' losses, and how far each port is from Keras."""

from __future__ import annotations

import base64
import html
import os

import numpy as np

from descentlab.port.check import FLOAT32_ROUNDING, PortCheck
from descentlab.report import style

COLOURS = {"keras": "#d62728", "descentlab": "#1f77b4", "by hand": "#7f7f7f"}


def figure(result: PortCheck) -> bytes:
    """Left: the loss of each run against steps. Right: each port's largest relative parameter
    difference from Keras, and its largest loss difference so far, log scale, float32 rounding marked."""
    fig, (left, right) = style.figure(11.0, 4.0, columns=2)
    steps = np.arange(1, len(result.losses["keras"]) + 1)
    _plot_losses(left, result, steps)
    _plot_differences(right, result, steps)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return style.png(fig)


def _plot_losses(ax, result: PortCheck, steps: np.ndarray) -> None:
    """Each run's training loss against steps."""
    for run, losses in result.losses.items():
        label = {"keras": "Keras", "descentlab": "descentlab from_keras", "by hand": "torch.optim by hand"}[run]
        ax.plot(steps, losses, color=COLOURS[run], linewidth=1.4, label=label,
                linestyle="--" if run == "descentlab" else "-")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"{result.optimizer}: the same batches, three runs", fontsize=9)
    ax.legend(fontsize=8, frameon=False)


def _plot_differences(ax, result: PortCheck, steps: np.ndarray) -> None:
    """Each port's parameter and loss differences from Keras, log scale, with float32 rounding marked."""
    for run, differences in result.differences.items():
        # exactly equal losses are common: the largest difference so far reads better on a log scale
        loss = np.maximum.accumulate(np.abs(np.array(result.losses[run]) - np.array(result.losses["keras"])))
        ax.semilogy(steps, np.maximum(differences, 1e-12), color=COLOURS[run], linewidth=1.4,
                    label=f"{run}: parameters (relative)")
        ax.semilogy(steps, np.maximum(loss, 1e-12), color=COLOURS[run], linewidth=1.0, linestyle=":",
                    label=f"{run}: loss (largest so far)")
    ax.axhline(FLOAT32_ROUNDING, color="black", linewidth=0.8, linestyle="--")
    ax.text(steps[0], FLOAT32_ROUNDING * 1.3, "float32 rounding", fontsize=7)
    ax.set_xlabel("step")
    ax.set_ylabel("difference from Keras")
    ax.set_title("how far each port is from Keras", fontsize=9)
    ax.legend(fontsize=7, frameon=False)


def write(result: PortCheck, out: str) -> tuple[str, str]:
    """``out/port-check.png`` and ``out/port-check.html`` (the picture and the summary, one offline page)."""
    os.makedirs(out, exist_ok=True)
    png = figure(result)
    picture = os.path.join(out, "port-check.png")
    with open(picture, "wb") as handle:
        handle.write(png)
    page = os.path.join(out, "port-check.html")
    encoded = base64.b64encode(png).decode()
    with open(page, "w", encoding="utf-8") as handle:
        handle.write(f"""<!doctype html><meta charset="utf-8"><title>port check: {html.escape(result.optimizer)}</title>
<body style="font-family: sans-serif; max-width: 1150px; margin: 2em auto">
<h1>Port check: {html.escape(result.optimizer)}</h1>
<img alt="losses and differences" src="data:image/png;base64,{encoded}" style="width: 100%">
<pre>{html.escape(result.summary())}</pre>
</body>
""")
    return picture, page
