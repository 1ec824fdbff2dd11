"""Plans and executed paths drawn over a PointMaze layout (matplotlib, headless)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from diffkit.modalities.trajectory.maze import Maze


def plot_paths(
    maze: Maze,
    planned: Sequence[np.ndarray],  # each [H,2] xy
    executed: Sequence[np.ndarray] | None = None,  # each [T,2] xy, drawn dashed
    *,
    path: str | os.PathLike | None = None,  # write a PNG here; None = return the RGB array
    cols: int | None = None,  # panels per row; one panel per plan
    titles: Sequence[str] | None = None,
) -> np.ndarray | None:
    """One panel per plan: walls grey, the plan solid (start circle, goal star), the executed path dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(planned)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    h, w = maze.walls.shape
    extent = (-w * maze.scale / 2, w * maze.scale / 2, -h * maze.scale / 2, h * maze.scale / 2)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(maze.walls, cmap="Greys", vmin=0, vmax=1.6, extent=extent, origin="upper")
        plan = np.asarray(planned[i])
        ax.plot(plan[:, 0], plan[:, 1], "-", color="tab:blue", lw=1.2)
        if executed is not None:
            done = np.asarray(executed[i])
            ax.plot(done[:, 0], done[:, 1], "--", color="tab:orange", lw=1.0)
        ax.plot(*plan[0], "o", color="tab:green", ms=5)
        ax.plot(*plan[-1], "*", color="tab:red", ms=8)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    if path is None:
        fig.canvas.draw()
        image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        plt.close(fig)
        return image
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
