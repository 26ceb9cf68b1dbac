"""The look every figure shares: one fixed colour per optimizer (its clipped variants in shades of
it), the Agg backend, PNG encoding."""

from __future__ import annotations

import io
import math
from typing import cast

import matplotlib

matplotlib.use("Agg")  # files only: no display, and the same pixels on every machine

import matplotlib.pyplot as plt  # after the backend is chosen
import numpy as np
from matplotlib.colors import ListedColormap
from PIL import Image

from descentlab.lab.spec import OPTIMIZERS


def _listed(name: str) -> list[tuple[float, float, float]]:
    """The colours of one of matplotlib's qualitative colormaps (a ListedColormap)."""
    colormap = matplotlib.colormaps[name]
    assert isinstance(colormap, ListedColormap)
    return cast("list[tuple[float, float, float]]", colormap.colors)


# One colour per lab optimizer, by name, so that a colour means the same optimizer in every
# figure of every report: tab10, two more that stay apart from it, then tab20b one shade of each
# of its five hues at a time. Drawn for every name of the lab's vocabulary, so that a new
# optimizer has its colour (and 40 is the most this can give: more names fail the strict zip).
_TAB20B = _listed("tab20b")
_COLOURS = [*map(matplotlib.colors.to_hex, _listed("tab10")), "#000000", "#b8860b",
            *(matplotlib.colors.to_hex(_TAB20B[i]) for i in sorted(range(20), key=lambda i: (i % 4, i)))
            ][: len(OPTIMIZERS)]
PALETTE = dict(zip(OPTIMIZERS, _COLOURS, strict=True))
MINIMUM = "#ffd700"  # the surfaces' minima
DPI = 100
# A clipped variant (``momentum+clipnorm=1``) is drawn in its base optimizer's colour mixed with
# black (norm clipping) or white (value clipping): related to its base, and apart from the others.
SHADES = {"clipnorm": "#000000", "global_clipnorm": "#000000", "clipvalue": "#ffffff"}
SHADE = 0.45  # the share of black or white
# Mixed, momentum's orange comes near RMSprop's brown: a clipped variant's line is also dashed.
DASHES = {"clipnorm": "--", "global_clipnorm": "-.", "clipvalue": ":"}


def _mix(colour: str, other: str, share: float) -> str:
    a, b = matplotlib.colors.to_rgb(colour), matplotlib.colors.to_rgb(other)
    red, green, blue = ((1 - share) * x + share * y for x, y in zip(a, b, strict=True))
    return matplotlib.colors.to_hex((red, green, blue))


def colour(optimizer: str) -> str:
    """The optimizer's colour (``#rrggbb``); a name outside the lab's vocabulary gets a stable one of tab20."""
    if optimizer in PALETTE:
        return PALETTE[optimizer]
    base, _, variant = optimizer.partition("+")
    option = variant.partition("=")[0]
    if base in PALETTE and option in SHADES:
        return _mix(PALETTE[base], SHADES[option], SHADE)
    return matplotlib.colors.to_hex(matplotlib.colormaps["tab20"](sum(map(ord, optimizer)) % 20))


def line(optimizer: str) -> dict:
    """Matplotlib's ``color`` and ``linestyle`` for the optimizer's lines (a clipped variant's dashed)."""
    option = optimizer.partition("+")[2].partition("=")[0]
    return {"color": colour(optimizer), "linestyle": DASHES.get(option, "-")}


def figure(width: float, height: float, columns: int = 1):
    """A figure of ``width`` × ``height`` inches with ``columns`` axes side by side."""
    fig, axes = plt.subplots(1, columns, figsize=(width, height), dpi=DPI, squeeze=False)
    return fig, list(axes[0])


def fit_legend(fig, legend) -> None:
    """Widen ``fig`` until ``legend``, drawn right of the axes, fits; the axes keep their size in inches
    (a clipped variant's name, ``momentum+clipvalue=0.5``, is longer than the rest)."""
    fig.canvas.draw()
    needed = legend.get_window_extent().x1 / fig.dpi + 0.1
    width, height = fig.get_size_inches()
    if needed > width:
        params = fig.subplotpars
        fig.set_size_inches(needed, height)
        fig.subplots_adjust(left=params.left * width / needed, right=params.right * width / needed)


def png(fig) -> bytes:
    """The figure as PNG bytes, at its own size and dpi (the race player relies on that), then closed.

    Stored with a palette of 256 colours, a third of the bytes of full colour, which keeps a
    report small enough to mail. The palette holds every optimizer's colour exactly: an adaptive
    palette alone would merge a thin line's few pixels into the background's shades."""
    image = _rendered(fig)
    indexed = _indexed(image, _palette(image))
    buffer = io.BytesIO()
    indexed.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _rendered(fig) -> Image.Image:
    """The figure's pixels (RGB), the figure closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return Image.open(buffer).convert("RGB")


def _palette(image: Image.Image) -> np.ndarray:
    """256 colours (rows of r, g, b): every optimizer's colour, its shades, the minima's, black and
    white exactly, then the image's own most common shades (median cut) for the rest."""
    shades = {_mix(c, shade, SHADE) for c in PALETTE.values() for shade in set(SHADES.values())}
    exact = [*_COLOURS, *sorted(shades), MINIMUM, "#000000", "#ffffff"]
    adaptive = image.quantize(256 - len(exact), method=Image.Quantize.MEDIANCUT).getpalette() or []
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in exact] +
                    np.reshape(adaptive[: 3 * (256 - len(exact))], (-1, 3)).tolist(), dtype=np.int32)


def _indexed(image: Image.Image, palette: np.ndarray) -> Image.Image:
    """The image in ``palette``: each distinct colour to its nearest entry (Pillow's own mapping
    is approximate)."""
    pixels = np.asarray(image, dtype=np.int32)
    packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]  # 1-D unique: far faster than rows
    codes, index = np.unique(packed.ravel(), return_inverse=True)
    colours = np.stack([codes >> 16, (codes >> 8) & 0xFF, codes & 0xFF], axis=1)
    nearest = ((colours[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    indexed = Image.fromarray(nearest[index.ravel()].reshape(pixels.shape[:2]).astype(np.uint8), mode="P")
    indexed.putpalette(palette.astype(np.uint8).ravel().tolist())
    return indexed


def value_scale(ax, values: list[float]) -> None:
    """A y scale that shows metric values spanning decades: log when they are all positive,
    symmetric-log (linear only below 1e-12 of the largest) when some are exactly 0, else linear."""
    values = [v for v in values if math.isfinite(v)]
    positive = [v for v in values if v > 0]
    if not positive or len(positive) < len(values) - values.count(0.0) or max(positive) <= 100 * min(positive):
        return
    if len(positive) == len(values):
        ax.set_yscale("log")
    else:
        ax.set_yscale("symlog", linthresh=max(min(positive), 1e-12 * max(positive)))
