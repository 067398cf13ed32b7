"""Crop-averaged prediction of one music network, and its inputs (audio, folders, ``.npy`` mels,
competition test lists) turned into mel features."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mung.audio import find_audio
from mung.music.data import eval_crops, read_competition_test
from mung.music.features import MelConfig, load_mel


def expand_inputs(inputs: list[os.PathLike]) -> list[Path]:
    """Audio files, folders, ``.npy`` mel files, or a competition ``<q>_test.json`` list."""
    out: list[Path] = []
    for p in map(Path, inputs):
        if p.suffix == ".json":
            out.extend(read_competition_test(p))
        elif p.is_dir():
            npys = sorted(p.glob("*.npy"))
            out.extend(npys if npys else find_audio([p]))
        else:
            out.append(p)
    return out


@torch.no_grad()
def predict_mels(model: torch.nn.Module, mels: list[np.ndarray], crop: int, batch_size: int = 16,
                 device: str = "cpu") -> dict[str, np.ndarray]:
    """Probabilities per track: softmax (station) / sigmoid (mood), averaged over the
    deterministic crops that cover each track. ``mels`` are normalised ``[1, M, T]``."""
    model.eval()
    crops = [eval_crops(m, crop) for m in mels]
    owner = np.concatenate([np.full(len(c), i) for i, c in enumerate(crops)])
    flat = np.concatenate(crops)
    outs: dict[str, list[np.ndarray]] = {}
    for s in range(0, len(flat), batch_size):
        x = torch.from_numpy(flat[s : s + batch_size]).to(device)
        for task, logits in model(x).items():
            p = torch.softmax(logits, -1) if task == "station" else torch.sigmoid(logits)
            outs.setdefault(task, []).append(p.float().cpu().numpy())
    result = {}
    for task, parts in outs.items():
        probs = np.concatenate(parts)
        summed = np.zeros((len(mels), probs.shape[1]))
        np.add.at(summed, owner, probs)
        result[task] = summed / np.bincount(owner, minlength=len(mels))[:, None]
    return result


def load_mels(paths: list[os.PathLike], cfg: MelConfig, progress: bool = False,
              workers: int | None = None) -> list[np.ndarray]:
    """Raw mel of many files, decoded in a few threads (decoding and FFTs release the GIL)."""
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        it = pool.map(lambda p: load_mel(p, cfg), paths)
        return list(tqdm(it, total=len(paths), desc="features", unit="file", disable=not progress))
