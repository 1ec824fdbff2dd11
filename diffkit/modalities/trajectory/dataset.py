"""PointMaze data in the D4RL field layout: generate one long controller stream, save it, read a user's file.

    stream = generate_stream("umaze", steps=1_000_000, seed=0)   # D4RL's maze2d generation, locally
    save_stream(stream, "data/pointmaze/out/umaze.npz")
    stream = load_stream("maze2d-umaze-v1.hdf5")                 # a D4RL export (or a Minari file's episodes)

Fields (D4RL): observations [N,4] = (x, y, vx, vy), actions [N,2], rewards [N], terminals [N], timeouts [N],
infos/goal [N,2] (the controller's goal at each step, optional in a user's file).

References:
    Fu et al. 2020 (D4RL, scripts/generation/generate_maze2d_datasets.py); Minari's HDF5 episode layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from diffkit.io import atomic_write
from diffkit.modalities.base import DataError
from diffkit.modalities.trajectory.maze import GOAL_RADIUS, Maze, WaypointController, make_env

REQUIRED = {"observations": 2, "actions": 2, "rewards": 1, "terminals": 1, "timeouts": 1}  # field -> ndim
GOAL_NOISE = 0.25  # uniform goal offset within a cell (gymnasium-robotics' position_noise_range)


def generate_stream(layout: str, steps: int, seed: int = 0, action_noise: float = 0.0) -> dict[str, np.ndarray]:
    """One stream of `steps` steps: the waypoint controller drives to a random other cell and gets a new goal on
    arrival (within GOAL_RADIUS); reward 1 per step within GOAL_RADIUS of the current goal, never terminal."""
    maze, rng = Maze.of(layout), np.random.default_rng(seed)
    cells = maze.free_cells
    env = make_env(layout, max_episode_steps=steps + 1)
    start = cells[rng.integers(len(cells))]
    obs, _ = env.reset(seed=seed, options={"reset_cell": start, "goal_cell": cells[(rng.integers(len(cells)))]})
    state = obs["observation"]
    controller = WaypointController(maze)

    def new_goal(xy: np.ndarray) -> np.ndarray:
        here = tuple(maze.xy_cell(xy))
        others = [c for c in cells if tuple(c) != here]
        goal = maze.cell_xy(others[rng.integers(len(others))]) + rng.uniform(-GOAL_NOISE, GOAL_NOISE, 2)
        controller.set_goal(xy, goal)
        return goal

    goal = new_goal(state[:2])
    out = {k: np.zeros((steps, d), np.float32) for k, d in (("observations", 4), ("actions", 2), ("infos/goal", 2))}
    rewards = np.zeros(steps, np.float32)
    for t in range(steps):
        action = controller(state)
        if action_noise > 0:  # D4RL's --noisy option
            action = np.clip(action + action_noise * rng.standard_normal(2), -1.0, 1.0)
        out["observations"][t], out["actions"][t], out["infos/goal"][t] = state, action, goal
        rewards[t] = float(np.linalg.norm(state[:2] - goal) <= GOAL_RADIUS)
        obs, *_ = env.step(action.astype(np.float32))
        state = obs["observation"]
        if np.linalg.norm(state[:2] - goal) <= GOAL_RADIUS:
            goal = new_goal(state[:2])
    env.close()
    timeouts = np.zeros(steps, bool)
    timeouts[-1] = True
    meta = {"seed": np.int64(seed), "action_noise": np.float64(action_noise), "layout": np.str_(layout)}
    return {**out, "rewards": rewards, "terminals": np.zeros(steps, bool), "timeouts": timeouts, **meta}


def save_stream(stream: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write the fields to an npz atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to the temp name
            np.savez(f, **stream)

    return atomic_write(path, write)


def _read_hdf5(path: Path) -> dict[str, np.ndarray]:
    """D4RL's flat datasets, or Minari's episode groups concatenated (observation dicts: their "observation")."""
    import h5py  # lazy: only users' HDF5 files need it

    with h5py.File(path, "r") as f:
        if "observations" in f:
            return {k: f[k][()] for k in [*REQUIRED, "infos/goal"] if k in f}
        episodes = sorted((k for k in f if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
        if not episodes:
            return {}
        parts: dict[str, list[np.ndarray]] = {k: [] for k in REQUIRED}
        for name in episodes:
            ep = f[name]
            obs = ep["observations"]
            obs = obs["observation"][()] if isinstance(obs, h5py.Group) else obs[()]
            parts["observations"].append(obs[:-1])  # Minari stores N+1 observations per episode
            parts["actions"].append(ep["actions"][()])
            parts["rewards"].append(ep["rewards"][()])
            parts["terminals"].append(ep["terminations"][()])
            timeouts = np.array(ep["truncations"][()], dtype=bool)
            timeouts[-1] = not bool(parts["terminals"][-1][-1])  # an episode ends either way
            parts["timeouts"].append(timeouts)
        return {k: np.concatenate(v) for k, v in parts.items()}


def load_stream(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A D4RL-layout file (.npz, or .hdf5/.h5), checked: a missing field, a wrong shape or a non-finite value raises
    one DataError naming the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"trajectory file not found: {path}")
    try:
        if path.suffix in (".hdf5", ".h5"):
            data = _read_hdf5(path)
        else:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"cannot read trajectory file {path}: {err}") from None
    for name, ndim in REQUIRED.items():
        if name not in data:
            raise DataError(f"{path}: missing field {name!r} (a D4RL-layout file has {sorted(REQUIRED)})")
        if data[name].ndim != ndim:
            raise DataError(f"{path}: field {name!r} has shape {data[name].shape}; expected {ndim} dimension(s)")
    n = len(data["observations"])
    if data["observations"].shape[1] < 4:
        raise DataError(f"{path}: field 'observations' has shape {data['observations'].shape}; expected [N, >=4]")
    for name in REQUIRED:
        if len(data[name]) != n:
            raise DataError(f"{path}: field {name!r} has {len(data[name])} rows; 'observations' has {n}")
        if data[name].dtype.kind == "f" and not np.isfinite(data[name]).all():
            raise DataError(f"{path}: field {name!r} holds NaN or infinite values")
    return data


def episode_ids(terminals: np.ndarray, timeouts: np.ndarray) -> np.ndarray:
    """[N] index of the episode each step belongs to; an episode ends at a step that is terminal or timed out."""
    ends = np.asarray(terminals, bool) | np.asarray(timeouts, bool)
    return np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int64)


def window_starts(episodes: np.ndarray, horizon: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Starts i of the windows [i, i + horizon) inside [lo, hi) that do not cross an episode end."""
    hi = len(episodes) if hi is None else hi
    starts = np.arange(lo, max(lo, hi - horizon + 1))
    return starts[episodes[starts] == episodes[starts + horizon - 1]]
