"""Short vocoder probe: the same net trained for a few hundred steps under two noise settings, scored on val clips.

    OMP_NUM_THREADS=1 python benchmarks/audio_noise_probe.py --steps 300

Setting "edm": σ ∈ [0.002, 80], ln σ ~ N(-1.2, 1.2²) (EDM Table 1, made for images of std 0.5). Setting "vocoder":
σ ∈ [1e-4, 2], ln σ ~ N(-4.3, 2.4²) (recipes/audio/vocoder.yaml). Both: the recipe's net (C=32, 12 layers), batch 8
of frame-aligned 2,048-sample crops whose mel has clip context, AdamW 2e-4, DPM++(2M) 12 steps on Karras grids.
Scores (log-mel L1, MR-STFT) on 4 val clips of 62 frames, so the test speakers stay unseen. Prints s/step too.
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from functools import partial

import numpy as np
import torch

from diffkit.core.losses import DenoisingLoss
from diffkit.core.precond import EDMPrecond
from diffkit.core.processes import GaussianProcess
from diffkit.core.samplers.gaussian import sample_dpmpp_2m
from diffkit.core.schedules import karras_sigmas, log_normal
from diffkit.core.weighting import edm_weight
from diffkit.modalities.audio.adapter import AudioModality
from diffkit.modalities.audio.data import ClipDataset
from diffkit.modalities.audio.io import fit_length, read_wav
from diffkit.modalities.audio.metrics import log_mel_l1, mr_stft
from diffkit.modalities.audio.nets import DiffWave

SETTINGS = {"edm": (0.002, 80.0, -1.2, 1.2), "vocoder": (1e-4, 2.0, -4.3, 2.4)}


def clips(root: str, split: str, n: int, length: int) -> np.ndarray:
    """n clips of a split spread over its files, [n,length] (the folders are wav/<split>/<digit>/)."""
    files = sorted(glob.glob(f"{root}/wav/{split}/*/*.wav"))
    return np.stack([fit_length(read_wav(f, 16000), length) for f in files[:: max(1, len(files) // n)][:n]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/spoken_digits/out")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--sigma-data", type=float, default=0.13)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    parser.add_argument("--mel-norm", type=float, nargs=2, default=(0.0, 1.0), help="the net's mel_mean, mel_std")
    parser.add_argument("--sample-sigma-min", type=float, nargs="*", default=[], help="also sample down to these σ")
    args = parser.parse_args()
    torch.set_num_threads(1)
    modality = AudioModality(length=2048, mel_cond=True, sigma_data=args.sigma_data)
    train = np.round(clips(args.root, "train", 2000, 16000) * 32767).astype(np.int16)
    data = ClipDataset(train, np.zeros(len(train)), 2048, True, hop=256, context=512)
    real = torch.as_tensor(clips(args.root, "val", 4, 62 * 256))[:, None]
    mel = modality.log_mel(real[:, 0])
    results = {}
    for name in args.settings:
        sigma_min, sigma_max, p_mean, p_std = SETTINGS[name]
        torch.manual_seed(0)
        net = DiffWave(channels=32, layers=12, dilation_cycle=6, emb_dim=128, n_mels=80, mel_mean=args.mel_norm[0],
                       mel_std=args.mel_norm[1])  # fmt: skip
        denoiser = EDMPrecond(net, sigma_data=args.sigma_data)
        process = GaussianProcess(sigma_min, sigma_max)
        loss = DenoisingLoss(process, partial(log_normal, p_mean=p_mean, p_std=p_std),
                             partial(edm_weight, sigma_data=args.sigma_data))  # fmt: skip
        opt = torch.optim.AdamW(net.parameters(), lr=2e-4)
        start, losses = time.time(), []
        for _ in range(args.steps):
            batch = [data[int(i)] for i in torch.randint(0, len(data), (8,))]
            x0, cond = modality.encode({k: torch.stack([b[k] for b in batch]) for k in batch[0]})
            value = loss(denoiser, x0, cond).mean()
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            losses.append(float(value.detach()))
        per_step = (time.time() - start) / args.steps
        results[name] = {"s_per_step": per_step, "last_loss": float(np.mean(losses[-50:]))}
        for low in [sigma_min, *args.sample_sigma_min]:
            sigmas = karras_sigmas(12, low, sigma_max)
            with torch.no_grad():
                x = process.prior(real.shape, generator=torch.Generator().manual_seed(0), sigma=float(sigmas[0]))
                fake = modality.decode(sample_dpmpp_2m(denoiser, x, sigmas, cond={"mel": mel}))
            l1 = log_mel_l1(modality.log_mel(fake[:, 0]), mel)
            results[name][f"sample_sigma_min={low:g}"] = {"log_mel_l1": l1, "mr_stft": mr_stft(fake, real)}
        print(name, json.dumps(results[name]), flush=True)


if __name__ == "__main__":
    main()
