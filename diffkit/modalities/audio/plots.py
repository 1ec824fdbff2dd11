"""Spectrogram PNG grids of log-mels (one panel per clip, optional row titles)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from diffkit.modalities.timeseries.plots import save_png


def spectrogram_grid(mels: np.ndarray, path: str | os.PathLike | None = None, *, cols: int = 4,
                     titles: Sequence[str] = ()) -> np.ndarray:  # fmt: skip
    """log-mels [N,n_mels,F] -> an RGB uint8 grid [H,W,3] (low frequencies at the bottom), saved as PNG if path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(mels)
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 1.9 * rows), squeeze=False)
    low, high = float(np.min(mels)), float(np.max(mels))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(mels[i], origin="lower", aspect="auto", vmin=low, vmax=high, cmap="magma")
            if i < len(titles):
                ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    if path is not None:
        save_png(image, path)
    return image
