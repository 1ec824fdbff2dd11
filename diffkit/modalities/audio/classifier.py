"""The project's spoken-digit classifier: a temporal CNN over standardised log-mels whose pooled penultimate layer is
the feature space of the audio Fréchet distance (like the image classifiers; not a pretrained audio judge).

References:
    Choi et al. 2019 (TC-ResNet: mel bands as the channels of a 1-d convolution over time, for keyword spotting);
    Kong et al. 2021 (DiffWave: SC09 samples judged by a digit classifier trained on the real data).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MelClassifier(nn.Module):
    """[B,1,n_mels,F] standardised log-mels -> logits [B,num_classes]; features(): [B,feature_dim] (mean+max pooled)."""

    def __init__(self, num_classes: int = 10, feature_dim: int = 128, n_mels: int = 80, width: int = 128) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(n_mels, width, 3, padding=1), nn.SiLU()]
        for _ in range(3):  # F -> F/8 frames: 64 frames (1 s) -> 8
            layers += [nn.Conv1d(width, width, 3, stride=2, padding=1), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        self.proj = nn.Sequential(nn.Linear(2 * width, feature_dim), nn.SiLU())
        self.head = nn.Linear(feature_dim, num_classes)
        self.config = {"num_classes": num_classes, "feature_dim": feature_dim, "n_mels": n_mels}

    @staticmethod
    def data_config(mels: Tensor) -> dict[str, int]:
        """The config entries the data fixes (a cached classifier for other data is stale)."""
        return {"n_mels": int(mels.shape[-2])}

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features [B, feature_dim]: mean and max over time of the last convolution."""
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.config["n_mels"]:
            raise ValueError(f"MelClassifier expects [B, 1, {self.config['n_mels']}, F], got {tuple(x.shape)}")
        h = self.body(x[:, 0])
        return self.proj(torch.cat([h.mean(-1), h.amax(-1)], dim=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
