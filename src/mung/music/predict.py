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
from mung.batch import usable_cores
from mung.music.data import eval_crops, read_competition_test
from mung.music.features import MelConfig, load_mel
from mung.music.models.base import MusicNet


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
    return predict_many([model], mels, crop, batch_size, device)[0]


@torch.no_grad()
def predict_many(models: list[torch.nn.Module], mels: list[np.ndarray], crop: int, batch_size: int = 16,
                 device: str = "cpu") -> list[dict[str, np.ndarray]]:
    """:func:`predict_mels` of several models on the same crops, one batch at a time: networks
    built on :class:`MusicNet` share a per-batch feature cache (the hand-crafted members of the
    shipped ensemble compute their statistics once instead of three times)."""
    for model in models:
        model.eval()
    crops = [eval_crops(m, crop) for m in mels]
    owner = np.concatenate([np.full(len(c), i) for i, c in enumerate(crops)])
    flat = np.concatenate(crops)
    outs: list[dict[str, list[np.ndarray]]] = [{} for _ in models]
    for s in range(0, len(flat), batch_size):
        x = torch.from_numpy(flat[s : s + batch_size]).to(device)
        cache: dict = {}
        for model, out in zip(models, outs, strict=True):
            logits = model(x, cache=cache) if isinstance(model, MusicNet) else model(x)
            for task, z in logits.items():
                p = torch.softmax(z, -1) if task == "station" else torch.sigmoid(z)
                out.setdefault(task, []).append(p.float().cpu().numpy())
    counts = np.bincount(owner, minlength=len(mels))[:, None]
    results = []
    for out in outs:
        result = {}
        for task, parts in out.items():
            probs = np.concatenate(parts)
            summed = np.zeros((len(mels), probs.shape[1]))
            np.add.at(summed, owner, probs)
            result[task] = summed / counts
        results.append(result)
    return results


def load_mels(paths: list[os.PathLike], cfg: MelConfig, progress: bool = False,
              workers: int | None = None) -> list[np.ndarray]:
    """Raw mel of many files, decoded in a few threads (decoding and FFTs release the GIL)."""
    workers = workers or min(4, usable_cores())
    with ThreadPoolExecutor(workers) as pool:
        it = pool.map(lambda p: load_mel(p, cfg), paths)
        return list(tqdm(it, total=len(paths), desc="features", unit="file", disable=not progress))
