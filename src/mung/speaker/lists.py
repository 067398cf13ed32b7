"""Training lists (``speaker_id relative/path``) and trial lists (``label path1 path2``) in the
voxceleb_trainer formats, and :func:`make_lists` to build both from a one-folder-per-speaker set."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from mung.audio import SAMPLE_RATE, find_audio, info, load
from mung.errors import MungError
from mung.outputs import check_writable, write_text, write_with


@dataclass(frozen=True)
class Utterance:
    speaker: str
    path: Path  # absolute
    seconds: float


@dataclass(frozen=True)
class Trial:
    label: int
    enroll: str  # paths as written in the trial file (relative to the audio root)
    test: str


def _lines(path: str | os.PathLike, what: str) -> list[tuple[int, list[str]]]:
    path = Path(path)
    if not path.is_file():
        raise MungError(f"{path}: {what} not found")
    rows = [(i, ln.split()) for i, ln in enumerate(path.read_text().splitlines(), start=1)]
    rows = [(i, parts) for i, parts in rows if parts and not parts[0].startswith("#")]
    if not rows:
        raise MungError(f"{path}: {what} is empty")
    return rows


def read_train_list(
    list_path: str | os.PathLike, audio_root: str | os.PathLike, min_per_speaker: int = 1
) -> list[Utterance]:
    """Parse and check a training list: every file exists and is audio, every speaker has at
    least ``min_per_speaker`` utterances (batches draw M per speaker)."""
    root = Path(audio_root)
    if not root.is_dir():
        raise MungError(f"{root}: audio root is not a directory")
    utts: list[Utterance] = []
    for line_no, parts in _lines(list_path, "training list"):
        if len(parts) != 2:
            raise MungError(
                f"{list_path}:{line_no}: expected 'speaker_id relative/path', "
                f"got {' '.join(parts)!r}"
            )
        path = root / parts[1]
        if not path.is_file():
            raise MungError(f"{list_path}:{line_no}: audio file {path} not found")
        utts.append(Utterance(parts[0], path, info(path).duration))
    counts = defaultdict(int)
    for u in utts:
        counts[u.speaker] += 1
    few = sorted(s for s, n in counts.items() if n < min_per_speaker)
    if few:
        raise MungError(
            f"{list_path}: {len(few)} speaker(s) have fewer than {min_per_speaker} utterances "
            f"(utterances per speaker M={min_per_speaker}), e.g. {few[0]!r} with {counts[few[0]]}; "
            "add utterances, drop them from the list or lower --utts-per-speaker"
        )
    if len(counts) < 2:
        raise MungError(f"{list_path}: training needs at least 2 speakers")
    return utts


def read_trials(trials_path: str | os.PathLike, audio_root: str | os.PathLike) -> list[Trial]:
    """Parse a trial list and check that every file it names exists under ``audio_root``."""
    root = Path(audio_root)
    if not root.is_dir():
        raise MungError(f"{root}: audio root is not a directory")
    trials: list[Trial] = []
    for line_no, parts in _lines(trials_path, "trial list"):
        if len(parts) != 3 or parts[0] not in ("0", "1"):
            raise MungError(
                f"{trials_path}:{line_no}: expected 'label(0/1) path1 path2', "
                f"got {' '.join(parts)!r}"
            )
        trials.append(Trial(int(parts[0]), parts[1], parts[2]))
    for t in trials:
        for rel in (t.enroll, t.test):
            if not (root / rel).is_file():
                raise MungError(
                    f"{trials_path}: trial names unknown file {rel!r} (not under {root})"
                )
    return trials


def _parts(n_samples: int, n_parts: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n_samples, n_parts + 1).round().astype(int)
    return list(zip(edges[:-1], edges[1:], strict=False))


def make_lists(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    trial_speakers: int | None = 50,
    train_part_seconds: float = 3.0,
    trial_parts: int = 2,
    nontargets_per_target: int = 5,
    min_trial_seconds: float = 8.0,
    seed: int = 0,
    force: bool = False,
) -> dict[str, int]:
    """Cut a ``<speaker>/<file>`` folder into parts and write ``train_list.txt``, ``trials.txt``
    and ``audio/`` under ``out_dir``.

    ``trial_speakers`` speakers (``None`` = all, ``0`` = none) with at least ``min_trial_seconds``
    of audio are held out for trials: each utterance is cut into ``trial_parts`` parts, every
    ordered pair of parts of a speaker is a target trial, and each target has
    ``nontargets_per_target`` non-targets against other trial speakers. The remaining speakers'
    audio is cut into parts of about ``train_part_seconds`` (at least two) for training.
    """
    source, out_dir = Path(source), Path(out_dir)
    if not source.is_dir():
        raise MungError(f"{source}: not a directory")
    files = find_audio([source])
    by_spk: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        by_spk[f.relative_to(source).parts[0] if f.parent != source else f.stem].append(f)
    check_writable(out_dir / "train_list.txt", force)
    check_writable(out_dir / "trials.txt", force)
    rng = np.random.default_rng(seed)
    seconds = {s: sum(info(f).duration for f in fs) for s, fs in by_spk.items()}
    eligible = sorted(s for s in by_spk if seconds[s] >= min_trial_seconds)
    n_trial = len(eligible) if trial_speakers is None else trial_speakers
    if n_trial > len(eligible):
        raise MungError(
            f"{source}: only {len(eligible)} speakers have >= {min_trial_seconds} s for trials"
        )
    if n_trial == 1:
        raise MungError("trials need at least 2 speakers (or 0 for a training-only list)")
    trial_set = (
        set(rng.choice(eligible, size=n_trial, replace=False).tolist()) if n_trial else set()
    )

    train_lines: list[str] = []
    trial_files: dict[str, list[str]] = {}
    for spk in sorted(by_spk):
        wav = np.concatenate([load(f) for f in sorted(by_spk[spk])])
        if spk in trial_set:
            n_parts = trial_parts
        else:
            n_parts = max(2, int(len(wav) / SAMPLE_RATE // train_part_seconds))
        rels = []
        for k, (a, b) in enumerate(_parts(len(wav), n_parts)):
            rel = f"{spk}/{spk}-p{k}.wav"
            path = out_dir / "audio" / rel
            write_with(
                path, lambda p, x=wav[a:b]: sf.write(p, x, SAMPLE_RATE, format="WAV"), force=True
            )
            rels.append(rel)
        if spk in trial_set:
            trial_files[spk] = rels
        else:
            train_lines += [f"{spk} {r}" for r in rels]

    trial_lines: list[str] = []
    spk_list = sorted(trial_files)
    for spk in spk_list:
        others = [s for s in spk_list if s != spk]
        for i, enroll in enumerate(trial_files[spk]):
            for j, test in enumerate(trial_files[spk]):
                if i == j:
                    continue
                trial_lines.append(f"1 {enroll} {test}")
                for o in rng.choice(
                    others, size=min(nontargets_per_target, len(others)), replace=False
                ):
                    trial_lines.append(f"0 {enroll} {trial_files[o][j % len(trial_files[o])]}")
    if train_lines:
        write_text(out_dir / "train_list.txt", "\n".join(train_lines) + "\n", force)
    if trial_lines:
        write_text(out_dir / "trials.txt", "\n".join(trial_lines) + "\n", force)
    return {
        "train_speakers": len(by_spk) - len(trial_set),
        "train_utterances": len(train_lines),
        "trial_speakers": len(trial_set),
        "trials": len(trial_lines),
        "target_trials": sum(ln.startswith("1 ") for ln in trial_lines),
    }
