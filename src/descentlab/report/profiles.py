"""The performance profile across problems (AlgoPerf): ρ(τ), the share of problems on which an
optimizer reached the target within τ times the fastest optimizer's steps (or seconds)."""

from __future__ import annotations

import math

import numpy as np

from descentlab.lab import stats
from descentlab.report import style


def figure(profile: dict) -> bytes | None:
    """ρ(τ) from steps and from seconds, τ from 1 to r_max (PNG); None without a problem to profile."""
    if not profile["steps"]["problems"]:
        return None
    fig, axes = style.figure(11.0, 3.8, columns=2)
    fig.subplots_adjust(left=0.07, right=0.8, bottom=0.14, top=0.88, wspace=0.22)
    steps = profile["steps"]["scores"]
    ranked = sorted(steps, key=lambda name: -steps[name])
    for ax, unit in zip(axes, ("steps", "seconds"), strict=True):
        _panel(ax, unit, profile[unit], ranked)
    _legend(fig, axes[1], profile, ranked)
    fig.suptitle("performance profile: higher and further left is better", fontsize=9)
    return style.png(fig)


def _panel(ax, unit: str, result: dict, ranked: list[str]) -> None:
    """ρ(τ) from ``unit`` (steps or seconds), one step line per optimizer in ``ranked`` order."""
    taus = np.linspace(1.0, result["r_max"], 400)
    for name in ranked if result["problems"] else []:
        shares = [stats.profile_share(result["ratios"][name], tau) for tau in taus]
        ax.step(taus, shares, where="post", **style.line(name), linewidth=1.5)
    ax.set_xlim(1.0, result["r_max"])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"τ: {unit} to the target ÷ the fastest optimizer's")
    ax.set_ylabel("ρ(τ): share of problems")
    ax.set_title(f"from {unit}, over {len(result['problems'])} problems", fontsize=9)
    ax.grid(alpha=0.3)


def _legend(fig, ax, profile: dict, ranked: list[str]) -> None:
    """The legend right of ``ax``: each optimizer's score B from steps and from seconds."""
    seconds = profile["seconds"]["scores"]
    for name in ranked:
        ax.plot([], [], **style.line(name), linewidth=1.5,
                label=f"{name}: {profile['steps']['scores'][name]:.2f} / {seconds.get(name, math.nan):.2f}")
    style.fit_legend(fig, ax.legend(title="score B (steps / seconds)", loc="upper left",
                                    bbox_to_anchor=(1.02, 1.0), fontsize=8, title_fontsize=8, frameon=False))
