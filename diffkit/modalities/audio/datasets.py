"""Spoken digits synthesised with espeak-ng (an SC09-like set with speaker-disjoint splits) and user WAV folders.

A speaker is one espeak-ng voice (English accent + voice variant) at one speed and pitch. Splits are disjoint in
voices (accent + variant), so no test voice is heard in training at any speed or pitch. Clips are 16 kHz mono,
1 s (silence trimmed, centred, zero-padded), peak-normalised to 0.9, written as 16-bit WAV with a manifest.csv
(file, label, speaker, split).

References:
    Warden 2018 (Speech Commands; SC09 = its digits zero..nine, 1 s at 16 kHz); Donahue et al. 2019 (SC09).
"""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffkit.modalities.audio.io import fit_length, read_wav, write_wav
from diffkit.modalities.base import DataError

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
SPEEDS = (120, 140, 160, 180, 200)  # words per minute (espeak-ng -s)
PITCHES = (25, 40, 50, 60, 75)  # espeak-ng -p, 0..99
MANIFEST = "manifest.csv"
INSTALL = "apt-get update && apt-get install -y espeak-ng"


def espeak() -> str:
    """Path of the espeak-ng program; one clear error naming the Debian package when it is missing."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise RuntimeError(f"espeak-ng is not installed: the spoken-digits data needs the Debian package espeak-ng "
                           f"({INSTALL})")  # fmt: skip
    return path


def variants() -> list[str]:
    """espeak-ng's voice variants (`espeak-ng --voices=variant`), e.g. adam, Alicia, m3."""
    listing = subprocess.run([espeak(), "--voices=variant"], capture_output=True, text=True, check=True).stdout
    header, *lines = listing.splitlines()
    start, end = header.index("File"), header.index("Other")  # fixed-width columns; some file names hold spaces
    names = [line[start:end].strip().split("/")[-1] for line in lines]
    return sorted({n for n in names if n and " " not in n})  # `-v accent+name` takes no spaces


@dataclass(frozen=True)
class Speaker:
    accent: str
    variant: str
    speed: int
    pitch: int

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def name(self) -> str:
        return f"{self.accent}_{self.variant}_s{self.speed}_p{self.pitch}"


def synthesise(text: str, speaker: Speaker, sample_rate: int = 16000, length: int = 16000) -> np.ndarray:
    """espeak-ng speech of `text` -> float32 [length] at sample_rate: silence trimmed, centred, peak 0.9."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        command = [espeak(), "-v", speaker.voice, "-s", str(speaker.speed), "-p", str(speaker.pitch), "-w", str(path)]
        subprocess.run([*command, text], check=True, capture_output=True)
        audio = read_wav(path, sample_rate, resample=True)
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    audio = audio[loud[0] : loud[-1] + 1] if len(loud) else audio
    peak = float(np.abs(audio).max())
    return fit_length(audio * (0.9 / peak if peak > 0 else 1.0), length).astype(np.float32)


def speakers(n: int, seed: int = 0) -> list[Speaker]:
    """n distinct speakers drawn (seeded) from accents × variants × speeds × pitches."""
    pool = [(a, v) for a in ACCENTS for v in variants()]
    rng, chosen = random.Random(seed), set()
    if n > len(pool) * len(SPEEDS) * len(PITCHES):
        raise ValueError(f"at most {len(pool) * len(SPEEDS) * len(PITCHES)} distinct speakers, asked for {n}")
    while len(chosen) < n:
        accent, variant = rng.choice(pool)
        chosen.add(Speaker(accent, variant, rng.choice(SPEEDS), rng.choice(PITCHES)))
    return sorted(chosen, key=lambda s: s.name)


def voice_splits(voices: list[str], fractions: tuple[float, float], seed: int = 0) -> dict[str, str]:
    """voice -> train/val/test; whole voices go to one split (val and test shares of the voices)."""
    order = sorted(set(voices))
    random.Random(seed).shuffle(order)
    n_val, n_test = (max(1, round(len(order) * f)) for f in fractions)
    return {v: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, v in enumerate(order)}


def prepare_digits(
    out: str | Path,
    n_speakers: int = 1100,
    *,
    fractions: tuple[float, float] = (0.1, 0.1),  # val and test shares of the voices
    sample_rate: int = 16000,
    length: int = 16000,  # 1 s
    seed: int = 0,
    log_every: int = 0,  # print progress every n speakers (0 = quiet)
) -> Path:
    """Synthesise every digit for n speakers into out/wav/<split>/<label>/<speaker>.wav + out/manifest.csv."""
    out = Path(out)
    chosen = speakers(n_speakers, seed)
    split_of = voice_splits([s.voice for s in chosen], fractions, seed)
    rows = []
    for i, speaker in enumerate(chosen):
        split = split_of[speaker.voice]
        for label, word in enumerate(DIGITS):
            file = Path("wav") / split / word / f"{speaker.name}.wav"
            write_wav(out / file, synthesise(word, speaker, sample_rate, length), sample_rate)
            rows.append({"file": str(file), "label": label, "speaker": speaker.name, "split": split})
        if log_every and (i + 1) % log_every == 0:
            print(f"{i + 1}/{len(chosen)} speakers", flush=True)
    with open(out / MANIFEST, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "label", "speaker", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return out / MANIFEST


def read_manifest(root: str | Path) -> list[dict[str, str]]:
    """The prepared manifest's rows (file relative to root, label, speaker, split)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise DataError(f"{path}: no manifest; build the data with python data/spoken_digits/prepare.py")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for key in ("file", "label", "speaker", "split"):
        if rows and key not in rows[0]:
            raise DataError(f"{path}: no column {key!r}")
    return rows


def folder_files(root: str | Path) -> list[tuple[Path, int]]:
    """A user's WAV folder: `<label>/<file>.wav` (SC09 / Speech Commands; labels sorted) -> (file, label index), or
    a flat folder of .wav files (label -1), listed by an LJSpeech-style metadata.csv (`id|text|...`) if present."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such audio folder")
    metadata = root / "metadata.csv"
    if metadata.is_file():
        ids = [line.split("|")[0] for line in metadata.read_text().splitlines() if line.strip()]
        wav_dir = root / "wavs" if (root / "wavs").is_dir() else root
        return [(wav_dir / f"{i}.wav", -1) for i in ids]
    flat = sorted(root.glob("*.wav"))
    if flat:
        return [(f, -1) for f in flat]
    labels = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("_"))
    files = [(f, k) for k, name in enumerate(labels) for f in sorted((root / name).glob("*.wav"))]
    if not files:
        raise DataError(f"{root}: no .wav files (expected <label>/<file>.wav or a flat folder of .wav files)")
    return files
