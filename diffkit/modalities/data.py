"""Data shared by the modalities: exact mid-epoch resume (a seeded, sharded shuffle that skips trained batches).

    class MyData(ResumableDataModule):
        def train_dataloader(self):
            return DataLoader(ds, batch_size=self.per_device_batch, sampler=self.train_sampler(ds, seed=0))

The position (epoch, batches done) goes into every checkpoint through the DataModule's state_dict; a plain
shuffled DataLoader would start the epoch again with a new order and train on other batches than the
uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
from torch.utils.data import Dataset, DistributedSampler

from diffkit.modalities.base import DataError


class ResumableSampler(DistributedSampler):
    """torch's DistributedSampler (seeded shuffle, rank r takes every world-th index) that can skip the first
    `skip` examples of one epoch, so a run resumed mid-epoch sees exactly the batches it had not yet seen."""

    def __init__(self, dataset: Dataset, *, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.skip_epoch, self.skip = -1, 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        # len() stays the full epoch: Lightning counts the restored batches as already fetched.
        return iter(indices[self.skip :] if self.epoch == self.skip_epoch else indices)


class ResumableDataModule(L.LightningDataModule):
    """A LightningDataModule whose training order resumes mid-epoch exactly; subclasses set per_device_batch."""

    def __init__(self) -> None:
        super().__init__()
        self.per_device_batch = 1
        self.resume_at: tuple[int, int] = (-1, 0)  # (epoch, batches already trained in it), from a checkpoint

    def split_global_batch(self, batch_size: int) -> None:
        """Set per_device_batch from the global batch_size; it must divide evenly over the processes."""
        world = self.trainer.world_size if self.trainer is not None else 1
        if batch_size % world:
            raise DataError(
                f"data.batch_size={batch_size} (the global batch) is not divisible by the {world} processes "
                f"(trainer.devices x trainer.num_nodes); choose a multiple of {world}"
            )
        self.per_device_batch = batch_size // world

    def train_sampler(self, dataset: Dataset, seed: int) -> ResumableSampler:
        """This rank's shuffled shard; with one process the same order as rank-concatenated shards."""
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)
        sampler = ResumableSampler(dataset, num_replicas=world, rank=rank, seed=seed)
        sampler.skip_epoch, sampler.skip = self.resume_at[0], self.resume_at[1] * self.per_device_batch
        return sampler

    def state_dict(self) -> dict[str, int]:
        """Saved in checkpoints: where in the epoch training stands."""
        if self.trainer is None:
            return {}
        progress = self.trainer.fit_loop.epoch_loop.batch_progress.current
        return {"epoch": self.trainer.current_epoch, "batches": progress.ready}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state:
            self.resume_at = (int(state["epoch"]), int(state["batches"]))
