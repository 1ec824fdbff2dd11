"""Fan charts of probabilistic forecasts: median, 50% and 90% bands of many samples, the truth and the given points.

References:
    Britton, Fisher & Whitley 1998 (the Bank of England's fan chart); GluonTS `plot_prob_forecasts`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from diffkit.io import atomic_write


def fan_chart(
    samples: np.ndarray,  # [S,C,T] in data units
    *,
    truth: np.ndarray | None = None,  # [C,T]; NaN = not observed
    given: np.ndarray | None = None,  # [C,T] mask, 1 = given to the sampler
    names: tuple[str, ...] = (),
    title: str = "",
) -> np.ndarray:
    """One panel per series; returns the figure as an RGB uint8 array [H,W,3]."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display needed
    import matplotlib.pyplot as plt

    channels, steps = samples.shape[1:]
    fig, axes = plt.subplots(channels, 1, figsize=(8, 2.4 * channels), squeeze=False)
    t = np.arange(steps)
    q = np.quantile(samples, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)  # [5,C,T]
    for c, ax in enumerate(axes[:, 0]):
        ax.fill_between(t, q[0, c], q[4, c], color="tab:blue", alpha=0.2, lw=0, label="90%")
        ax.fill_between(t, q[1, c], q[3, c], color="tab:blue", alpha=0.4, lw=0, label="50%")
        ax.plot(t, q[2, c], color="tab:blue", lw=1.5, label="median")
        if truth is not None:
            ax.plot(t, truth[c], color="black", lw=1, label="truth")
        if given is not None and truth is not None:
            keep = given[c] > 0
            ax.scatter(t[keep], truth[c][keep], s=8, color="black", zorder=3, label="given")
        ax.set_ylabel(names[c] if c < len(names) else f"series {c}")
    axes[0, 0].legend(loc="upper left", fontsize=7, ncol=5)
    axes[-1, 0].set_xlabel("step in window")
    if title:
        axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def save_png(image: np.ndarray, path: str | os.PathLike) -> None:
    """Write an RGB uint8 array [H,W,3] as a PNG, atomically."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
