"""PointMaze layouts, cells <-> coordinates, shortest paths and the waypoint PD controller that D4RL's data used.

    maze = Maze.of("umaze")
    controller = WaypointController(maze)
    controller.set_goal(xy, goal_xy)
    action = controller(obs)          # obs = (x, y, vx, vy)

References:
    Fu et al. 2020 (D4RL maze2d: a waypoint controller over shortest paths between random cells);
    de Lazcano et al. 2023 (gymnasium-robotics PointMaze, the MuJoCo env and its layouts).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_IDS = {"umaze": "PointMaze_UMaze-v3", "medium": "PointMaze_Medium-v3", "large": "PointMaze_Large-v3"}
EPISODE_STEPS = {"umaze": 300, "medium": 600, "large": 800}  # D4RL's evaluation episode lengths
GOAL_RADIUS = 0.5  # D4RL: reward 1 per step with |xy - goal| <= 0.5
SUCCESS_RADIUS = 0.45  # gymnasium-robotics PointMaze's own success radius (info["success"])


def _gymnasium_robotics():  # -> the gymnasium_robotics module
    """Import gymnasium-robotics (lazily: only maze users need it) without the notice its import prints to stderr
    about its Adroit hand envs' rewards, which diffkit never uses; import errors still raise."""
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):
        import gymnasium_robotics
    return gymnasium_robotics


def _layout_map(layout: str) -> list[list[int]]:
    maps = _gymnasium_robotics().envs.maze.maps

    names = {"umaze": "U_MAZE", "medium": "MEDIUM_MAZE", "large": "LARGE_MAZE"}
    if layout not in names:
        raise ValueError(f"unknown PointMaze layout {layout!r}; choose one of {sorted(names)}")
    return [[1 if cell == 1 else 0 for cell in row] for row in getattr(maps, names[layout])]


@dataclass(frozen=True)
class Maze:
    """A grid of wall (1) and free (0) cells of side `scale`, centred on the origin (gymnasium-robotics' frame)."""

    walls: np.ndarray  # [rows, cols] int, 1 = wall
    scale: float = 1.0

    @staticmethod
    def of(layout: str) -> Maze:
        return Maze(np.asarray(_layout_map(layout), dtype=np.int64))

    @property
    def free_cells(self) -> np.ndarray:
        """[K,2] (row, col) of every free cell, in row-major order."""
        return np.argwhere(self.walls == 0)

    def cell_xy(self, cells: np.ndarray) -> np.ndarray:
        """(row, col) [...,2] -> centre (x, y) [...,2]; row 0 is the top (largest y)."""
        rows, cols = self.walls.shape
        cells = np.asarray(cells, dtype=np.float64)
        x = (cells[..., 1] + 0.5) * self.scale - cols * self.scale / 2
        y = rows * self.scale / 2 - (cells[..., 0] + 0.5) * self.scale
        return np.stack([x, y], axis=-1)

    def xy_cell(self, xy: np.ndarray) -> np.ndarray:
        """(x, y) [...,2] -> the (row, col) [...,2] that contains it, clipped to the grid."""
        rows, cols = self.walls.shape
        xy = np.asarray(xy, dtype=np.float64)
        col = np.floor((xy[..., 0] + cols * self.scale / 2) / self.scale)
        row = np.floor((rows * self.scale / 2 - xy[..., 1]) / self.scale)
        return np.stack([np.clip(row, 0, rows - 1), np.clip(col, 0, cols - 1)], axis=-1).astype(np.int64)

    def shortest_path(self, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]]:
        """Cells from start to goal (both included) by breadth-first search over 4-neighbours."""
        start, goal = (int(start[0]), int(start[1])), (int(goal[0]), int(goal[1]))
        parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            if cell == goal:
                break
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                nxt = (cell[0] + dr, cell[1] + dc)
                inside = 0 <= nxt[0] < self.walls.shape[0] and 0 <= nxt[1] < self.walls.shape[1]
                if inside and self.walls[nxt] == 0 and nxt not in parent:
                    parent[nxt] = cell
                    queue.append(nxt)
        if goal not in parent:
            raise ValueError(f"no path from cell {start} to cell {goal}")
        path, cell = [], goal
        while cell is not None:
            path.append(cell)
            cell = parent[cell]
        return path[::-1]


class WaypointController:
    """D4RL's maze2d expert: follow cell centres along the shortest path, then the goal itself, with a PD law
    a = clip(p·(wp - xy) - d·v, -1, 1); a waypoint is dropped once within `reach` of it."""

    def __init__(
        self,
        maze: Maze | None,  # None: waypoints are set directly (e.g. a plan's states), set_goal is unavailable
        p_gain: float = 10.0,  # D4RL's waypoint controller gains
        d_gain: float = 1.0,
        reach: float = 0.35,  # distance at which the next waypoint becomes the target (../shared/DATA.md)
    ) -> None:
        self.maze, self.p_gain, self.d_gain, self.reach = maze, p_gain, d_gain, reach
        self.waypoints: list[np.ndarray] = []

    def set_goal(self, xy: np.ndarray, goal: np.ndarray) -> None:
        """Plan the cell path from the cell holding xy to the goal's cell; the last waypoint is the goal itself."""
        if self.maze is None:
            raise ValueError("WaypointController.set_goal needs a maze")
        path = self.maze.shortest_path(tuple(self.maze.xy_cell(xy)), tuple(self.maze.xy_cell(goal)))
        self.waypoints = [self.maze.cell_xy(np.array(c)) for c in path[1:-1]] + [np.asarray(goal, dtype=np.float64)]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        xy, v = obs[:2], obs[2:4]
        while len(self.waypoints) > 1 and np.linalg.norm(self.waypoints[0] - xy) < self.reach:
            self.waypoints.pop(0)
        return np.clip(self.p_gain * (self.waypoints[0] - xy) - self.d_gain * v, -1.0, 1.0)


def make_env(layout: str, max_episode_steps: int | None = None):  # -> gymnasium.Env
    """gymnasium-robotics PointMaze with D4RL's protocol: never done, the goal fixed for the episode."""
    import gymnasium as gym  # lazy: only rollouts and data generation need the simulator

    gym.register_envs(_gymnasium_robotics())
    if layout not in ENV_IDS:
        raise ValueError(f"unknown PointMaze layout {layout!r}; choose one of {sorted(ENV_IDS)}")
    steps = EPISODE_STEPS[layout] if max_episode_steps is None else max_episode_steps
    env = gym.make(ENV_IDS[layout], max_episode_steps=steps, continuing_task=True, reset_target=False)
    # The maze's MJCF is written to a temporary file that gymnasium-robotics never deletes (one per env); MuJoCo has
    # read it into the model by now.
    Path(env.unwrapped.tmp_xml_file_path).unlink(missing_ok=True)
    return env
