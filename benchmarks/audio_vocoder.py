"""Vocoder quality vs NFE on held-out speakers, beside Griffin-Lim (32 and 100 iterations) from the same log-mel.

    python benchmarks/audio_vocoder.py --ckpt outputs/vocoder/checkpoints/last.ckpt \
        --json benchmarks/results/audio_vocoder.json --docs docs/audio

Takes n clips of the test split (voices never heard in training; one clip per speaker, digits in turn), 62 frames
(0.99 s) each, vocodes their log-mels with the core's samplers on the model's schedule at each grid size, and scores
MR-STFT (auraloss), log-mel L1, MCD and DNSMOS P.835 (speechmos) against the real clips (audio extra:
`pip install -e ".[audio]"`). --docs writes a few playable WAVs (real / vocoded / Griffin-Lim) and a spectrogram
grid.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from throughput import cpu_name

from diffkit.config import load
from diffkit.core.samplers.gaussian import count_nfe, sample_dpmpp_2m, sample_euler, sample_heun
from diffkit.modalities.audio.datasets import read_manifest
from diffkit.modalities.audio.io import fit_length, read_wav, write_wav
from diffkit.modalities.audio.metrics import dnsmos, griffin_lim, score
from diffkit.modalities.audio.plots import spectrogram_grid

SAMPLERS = {"dpmpp_2m": sample_dpmpp_2m, "euler": sample_euler, "heun": sample_heun}


def held_out_clips(modality, n: int, frames: int, split: str = "test") -> torch.Tensor:
    """n clips [n,1,frames·hop] of a split, one per speaker (spread over the split), digit i mod 10 of speaker i."""
    rows = [r for r in read_manifest(modality.data_dir) if r["split"] == split]
    speakers = sorted({r["speaker"] for r in rows})
    step = max(1, len(speakers) // n)
    chosen = [next(r for r in rows if r["speaker"] == s and int(r["label"]) == i % 10)
              for i, s in enumerate(speakers[::step][:n])]  # fmt: skip
    clips = [fit_length(read_wav(Path(modality.data_dir) / r["file"], modality.sample_rate), frames * modality.hop)
             for r in chosen]  # fmt: skip
    return torch.as_tensor(clips)[:, None]


@torch.no_grad()
def vocode(module, mel: torch.Tensor, steps: int, sampler_name: str, seed: int = 0,
           sigma_min: float | None = None) -> tuple[torch.Tensor, int]:  # fmt: skip
    """Waveforms [n,1,F·hop] from log-mels with a core sampler on the model's schedule; returns (audio, NFE)."""
    grid = {} if sigma_min is None else {"sigma_min": sigma_min}  # the grid's last σ > 0 (default: the model's)
    sampler, sigmas = SAMPLERS[sampler_name], module.schedule(steps, **grid)
    generator = torch.Generator().manual_seed(seed)
    shape = (mel.shape[0], 1, mel.shape[-1] * module.modality.hop)
    x = module.process.prior(shape, device=torch.device("cpu"), generator=generator, sigma=float(sigmas[0]))
    out = sampler(module.ema.module, x, sigmas, cond={"mel": mel}, generator=generator)
    return module.modality.decode(out, {"mel": mel}), count_nfe(sampler, sigmas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--n-clips", type=int, default=12)
    parser.add_argument("--frames", type=int, default=62, help="mel frames per clip (62 × 256 = 15,872 samples)")
    parser.add_argument("--steps", type=int, nargs="+", default=[6, 12, 25, 50], help="DPM++(2M) grid sizes (= NFE)")
    parser.add_argument("--extra", nargs="*", default=["euler:12", "heun:6"], help="sampler:steps pairs")
    parser.add_argument("--split", default="test", help="test (held-out voices) or val (for choosing settings)")
    parser.add_argument("--sigma-min", type=float, default=None, help="override the sampling grid's last σ > 0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    parser.add_argument("--docs", default=None, help="folder for example WAVs and a spectrogram grid")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    module = load(args.ckpt)
    modality = module.modality
    real = held_out_clips(modality, args.n_clips, args.frames, args.split)
    mel = modality.log_mel(real[:, 0])
    results: dict = {"ckpt": args.ckpt, "step": None, "n_clips": len(real), "split": args.split,
                     "sigma_min": args.sigma_min, "cpu": cpu_name(), "threads": args.threads, "rows": []}  # fmt: skip
    results["step"] = int(torch.load(args.ckpt, map_location="cpu", weights_only=False)["global_step"])
    results["real_dnsmos"] = dnsmos(real, modality.sample_rate)
    print(f"real: DNSMOS {results['real_dnsmos']}", flush=True)
    outputs = {}
    for n_iter in (32, 100):
        start = time.time()
        gl = griffin_lim(mel, modality, n_iter)
        row = {"method": f"Griffin-Lim {n_iter} it", "nfe": None, "seconds": time.time() - start,
               **score(gl, real, modality)}  # fmt: skip
        results["rows"].append(row)
        outputs[row["method"]] = gl
        print(json.dumps(row), flush=True)
    runs = [("dpmpp_2m", s) for s in args.steps] + [(e.split(":")[0], int(e.split(":")[1])) for e in args.extra]
    for sampler_name, steps in runs:
        start = time.time()
        audio, nfe = vocode(module, mel, steps, sampler_name, sigma_min=args.sigma_min)
        row = {"method": f"diffkit vocoder, {sampler_name} {steps} steps", "nfe": nfe, "seconds": time.time() - start,
               **score(audio, real, modality)}  # fmt: skip
        results["rows"].append(row)
        outputs[row["method"]] = audio
        print(json.dumps(row), flush=True)
    print("| method | NFE | MR-STFT ↓ | log-mel L1 ↓ | MCD dB ↓ | DNSMOS OVRL ↑ | SIG | BAK | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results["rows"]:
        print(
            f"| {r['method']} | {r['nfe'] or '–'} | {r['mr_stft']:.3f} | {r['log_mel_l1']:.3f} | {r['mcd']:.2f} | "
            f"{r['dnsmos_ovrl']:.2f} | {r['dnsmos_sig']:.2f} | {r['dnsmos_bak']:.2f} | {r['seconds']:.1f} |"
        )
    real_mos = results["real_dnsmos"]
    print(
        f"| real clips | – | 0 | 0 | 0 | {real_mos['ovrl']:.2f} | {real_mos['sig']:.2f} | {real_mos['bak']:.2f} | – |"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.docs:
        docs, shown = Path(args.docs), ["diffkit vocoder, dpmpp_2m 12 steps", "Griffin-Lim 100 it"]
        mels, titles = [], []
        for i in range(min(3, len(real))):
            write_wav(docs / f"clip{i}_real.wav", real[i, 0], modality.sample_rate)
            write_wav(docs / f"clip{i}_vocoder_nfe12.wav", outputs[shown[0]][i, 0], modality.sample_rate)
            write_wav(docs / f"clip{i}_griffin_lim100.wav", outputs[shown[1]][i, 0], modality.sample_rate)
            for name, wave in (("real", real[i]), ("vocoder 12 NFE", outputs[shown[0]][i]),
                               ("Griffin-Lim 100", outputs[shown[1]][i])):  # fmt: skip
                mels.append(modality.log_mel(wave)[0].numpy())
                titles.append(f"clip {i}: {name}")
        spectrogram_grid(mels, docs / "spectrograms.png", cols=3, titles=titles)


if __name__ == "__main__":
    main()
