"""AudioDataModule: 1-s clips of the spoken-digits set (prepared on first use) or of a user's WAV folder.

Training items are random crops of `length` samples (the vocoder) or whole clips (length = clip length); val and
test items are the centred crop, so their loss is the same every epoch. Batches: {"audio": [B,1,L], "label": [B]}.
Crops start on a multiple of `hop` of the clip trimmed to whole frames (the clip a vocoder is given at sampling
time); with `context` > 0 a batch also holds "context" [B,1,L+2·context]: the crop with that many clip samples each
side (reflected at the clip's edges, as the whole clip's log-mel pads), so the crop's mel frames equal the whole
clip's (AudioModality.encode reads it).
A user's folder is split by speaker where the file names say it (SC09 `<speaker>_nohash_<n>.wav`), else by file.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from diffkit.io import exclusive
from diffkit.modalities.audio.datasets import folder_files, prepare_digits, read_manifest
from diffkit.modalities.audio.io import fit_length, read_wav
from diffkit.modalities.base import DataError
from diffkit.modalities.data import ResumableDataModule


class ClipDataset(Dataset):
    """int16 clips [N,C] -> items {"audio": [1,length] in [-1, 1], "label": long, "context"?}; frame-aligned crops."""

    def __init__(self, clips: np.ndarray, labels: np.ndarray, length: int, random_crop: bool, *, hop: int = 1,
                 context: int = 0) -> None:  # fmt: skip
        self.clips, self.labels, self.length, self.random_crop = clips, labels, int(length), random_crop
        self.hop, self.context = int(hop), int(context)
        # The whole clip: trimmed (centred) to whole frames, the way a vocoder's held-out clip is cut.
        self.whole = max(clips.shape[1] // self.hop * self.hop if clips.ndim == 2 else 0, self.length)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        clip = fit_length(self.clips[i].astype(np.float32) / 32767.0, self.whole)
        frames = (self.whole - self.length) // self.hop  # spare whole frames beside the crop
        k = int(torch.randint(0, frames + 1, ()).item()) if self.random_crop and frames > 0 else frames // 2
        start = k * self.hop
        item = {"audio": torch.from_numpy(clip[start : start + self.length].copy())[None],
                "label": torch.tensor(int(self.labels[i]))}  # fmt: skip
        if self.context:
            padded = np.pad(clip, self.context, mode="reflect")  # as torch.stft(center=True) pads the whole clip
            item["context"] = torch.from_numpy(padded[start : start + self.length + 2 * self.context].copy())[None]
        return item


def _split_of(path: Path, fractions: tuple[float, float]) -> str:
    """Deterministic split of a user's file by its speaker (SC09 names) or its name: a hash, not the order."""
    key = path.name.split("_nohash_")[0] if "_nohash_" in path.name else path.name
    u = (zlib.crc32(key.encode()) % 10_000) / 10_000
    return "test" if u < fractions[1] else "val" if u < fractions[0] + fractions[1] else "train"


class AudioDataModule(ResumableDataModule):
    """Spoken digits from data_dir (prepared by data/spoken_digits/prepare.py when missing) or a WAV `folder`."""

    def __init__(
        self,
        data_dir: str = "data/spoken_digits/out",
        folder: str | None = None,  # a user's WAV folder instead (SC09 `<label>/<file>.wav`, flat, or LJSpeech)
        sample_rate: int = 16000,
        clip_length: int = 16000,  # every clip padded/trimmed to this (1 s)
        length: int = 16000,  # samples per training example: random crops when shorter than the clip
        resample: bool = True,  # user files at another rate are resampled on load; False = an error
        hop: int = 1,  # crops start on a multiple of this (the mel hop: crop frames = whole-clip frames)
        context: int = 0,  # clip samples each side of a crop in batch["context"] (≥ n_fft/2 for its exact mel)
        n_speakers: int = 1100,  # speakers synthesised when the spoken digits are missing
        fractions: tuple[float, float] = (0.1, 0.1),  # val and test shares (voices, or a user's speakers/files)
        batch_size: int = 16,  # global batch; divided by the number of devices in setup()
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.data_dir, self.folder = Path(data_dir), folder
        self.sample_rate, self.clip_length, self.length = int(sample_rate), int(clip_length), int(length)
        self.resample, self.n_speakers, self.fractions = bool(resample), int(n_speakers), tuple(fractions)
        self.hop, self.context = int(hop), int(context)
        self.batch_size, self.num_workers, self.seed, self.per_device_batch = int(batch_size), num_workers, seed, 1
        self.splits: dict[str, ClipDataset] = {}

    def prepare_data(self) -> None:
        if self.folder is None:
            with exclusive(self.data_dir):  # synthesised once when several processes start together
                if not (self.data_dir / "manifest.csv").exists():
                    prepare_digits(self.data_dir, self.n_speakers, fractions=self.fractions,
                                   sample_rate=self.sample_rate, length=self.clip_length)  # fmt: skip

    def files(self) -> dict[str, list[tuple[Path, int]]]:
        """split -> [(file, label)] of the prepared manifest or the user's folder."""
        out: dict[str, list[tuple[Path, int]]] = {"train": [], "val": [], "test": []}
        if self.folder is None:
            for row in read_manifest(self.data_dir):
                out[row["split"]].append((self.data_dir / row["file"], int(row["label"])))
        else:
            for path, label in folder_files(self.folder):
                out[_split_of(path, self.fractions)].append((path, label))
        return out

    def setup(self, stage: str | None = None) -> None:
        self.split_global_batch(self.batch_size)
        self.prepare_data()
        for split, files in self.files().items():
            if not files and split == "train":
                raise DataError(f"{self.folder or self.data_dir}: no training clips")
            clips = [fit_length(read_wav(f, self.sample_rate, resample=self.resample), self.clip_length)
                     for f, _ in files]  # fmt: skip
            stacked = np.round(np.stack(clips) * 32767).astype(np.int16) if clips else np.zeros((0, self.clip_length))
            labels = np.asarray([label for _, label in files], dtype=np.int64)
            self.splits[split] = ClipDataset(stacked, labels, self.length, random_crop=split == "train", hop=self.hop,
                                             context=self.context)  # fmt: skip

    def _loader(self, split: str, **kwargs: Any) -> DataLoader:
        return DataLoader(self.splits[split], batch_size=self.per_device_batch, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, **kwargs)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", sampler=self.train_sampler(self.splits["train"], self.seed), drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
