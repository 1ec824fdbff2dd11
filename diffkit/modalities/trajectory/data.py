"""PointMaze windows for training: a generated (or the user's own) D4RL-layout stream cut into H-step state windows.

    dm = PointMazeDataModule("data/pointmaze/out", layout="umaze", steps=1_000_000, horizon=128)
    dm.prepare_data()   # generates data/pointmaze/out/umaze_1000000_s0.npz if missing, writes the normalizer
    dm.setup()          # batches {"states": [B,128,4]}

References:
    Janner et al. 2022 (Diffuser's SequenceDataset: windows within paths, a normalizer fitted on the data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from diffkit.io import exclusive
from diffkit.modalities.base import DataError
from diffkit.modalities.data import ResumableDataModule
from diffkit.modalities.trajectory.adapter import write_normalizer
from diffkit.modalities.trajectory.dataset import episode_ids, generate_stream, load_stream, save_stream, window_starts


class WindowDataset(Dataset):
    """{"states": [H,D]} windows of a state stream [N,D] at the given starts."""

    def __init__(self, states: Tensor, starts: np.ndarray, horizon: int) -> None:
        self.states, self.starts, self.horizon = states, torch.as_tensor(starts), horizon

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        start = int(self.starts[i])
        return {"states": self.states[start : start + self.horizon]}


class PointMazeDataModule(ResumableDataModule):
    """Windows of (x, y, vx, vy) from one stream; the last val_fraction of the stream (in time) is validation."""

    def __init__(
        self,
        data_dir: str = "data/pointmaze/out",
        layout: str = "umaze",
        steps: int = 1_000_000,  # stream length to generate (D4RL: 1 M per maze)
        seed: int = 0,  # seed of the generated stream
        horizon: int = 128,  # window length (the modality's horizon)
        batch_size: int = 32,  # global batch; divided by the number of devices in setup()
        num_workers: int = 0,
        val_fraction: float = 0.05,  # the stream's tail held out for val/test loss
        file: str | None = None,  # a user's own D4RL-layout file (.npz/.hdf5) instead of generating one
        normalizer_file: str | None = None,  # where the train split's limits go (the modality reads them)
        action_noise: float = 0.0,  # Gaussian action noise of the generating controller (D4RL's --noisy: 0.5)
        split_at_goals: bool = False,  # also end paths where the controller's goal changes (needs infos/goal)
    ) -> None:
        super().__init__()
        self.data_dir, self.layout, self.steps, self.seed = Path(data_dir), layout, int(steps), int(seed)
        self.horizon, self.batch_size, self.num_workers = int(horizon), int(batch_size), num_workers
        self.val_fraction, self.file, self.normalizer_file = float(val_fraction), file, normalizer_file
        self.action_noise, self.split_at_goals = float(action_noise), split_at_goals
        self.per_device_batch = self.batch_size
        self.splits: dict[str, WindowDataset] = {}

    @property
    def path(self) -> Path:
        if self.file is not None:
            return Path(self.file)
        noise = f"_noise{self.action_noise:g}" if self.action_noise else ""
        return self.data_dir / f"{self.layout}_{self.steps}_s{self.seed}{noise}.npz"

    def prepare_data(self) -> None:
        if self.file is None:
            with exclusive(self.path.parent):  # generated once when several processes start together
                if not self.path.exists():
                    save_stream(generate_stream(self.layout, self.steps, self.seed, self.action_noise), self.path)
        if self.normalizer_file is not None:
            states, _, n_train = self._load()
            write_normalizer(states[:n_train].numpy(), self.normalizer_file)

    def _load(self) -> tuple[Tensor, np.ndarray, int]:
        """(states [N,4], episode id per step, number of train steps)."""
        stream = load_stream(self.path)
        episodes = episode_ids(stream["terminals"], stream["timeouts"])
        if self.split_at_goals:
            if "infos/goal" not in stream:
                raise DataError(f"{self.path}: split_at_goals needs the field 'infos/goal'")
            goal = stream["infos/goal"]
            episodes = np.concatenate([[0], np.cumsum(np.any(goal[1:] != goal[:-1], axis=1))])
        n_train = int(len(episodes) * (1 - self.val_fraction))
        return torch.as_tensor(stream["observations"][:, :4], dtype=torch.float32), episodes, n_train

    def setup(self, stage: str | None = None) -> None:
        self.split_global_batch(self.batch_size)
        if not self.path.exists() or (self.normalizer_file and not Path(self.normalizer_file).exists()):
            self.prepare_data()
        states, episodes, n_train = self._load()
        train = window_starts(episodes, self.horizon, 0, n_train)
        held = window_starts(episodes, self.horizon, n_train, len(episodes))[:: self.horizon]  # non-overlapping
        if len(train) == 0 or len(held) < 2:
            raise DataError(f"{self.path}: too few {self.horizon}-step windows (train {len(train)}, held {len(held)})")
        half = len(held) // 2
        self.splits = {"train": WindowDataset(states, train, self.horizon),
                       "val": WindowDataset(states, held[:half], self.horizon),
                       "test": WindowDataset(states, held[half:], self.horizon)}  # fmt: skip

    def _loader(self, split: str, sampler: Any = None) -> DataLoader:
        return DataLoader(self.splits[split], batch_size=self.per_device_batch, sampler=sampler,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.train_sampler(self.splits["train"], self.seed))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
