"""Reading and writing speaker models: ours (fp16 safetensors in the shared :mod:`mung.checkpoint`
format, or ``torch.save`` of plain tensors and JSON-able metadata for resumable training) and
published voxceleb_trainer ones (``__S__.``-prefixed state dicts). Everything loads with
``weights_only=True``; no code is ever unpickled."""

from __future__ import annotations

import json
import os
import pickle
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from mung import checkpoint
from mung.config import Config, Interval, param
from mung.errors import MungError
from mung.outputs import write_with
from mung.speaker.models import FrontendConfig, ResNetSE34L, ResNetSEConfig, SegmentAggregator

FORMAT = "mung.speaker"
ARCHITECTURE = "ResNetSE34L"


@dataclass
class AggregationConfig(Config):
    """Segment aggregation: segment length and hop (seconds); ``hidden`` = aggregator GRU size."""

    section: ClassVar[str] = "aggregation"

    segment_seconds: float = param(0.5, Interval(float, 0, None, "neither"))
    segment_hop: float = param(0.25, Interval(float, 0, None, "neither"))
    hidden: int = param(128, Interval(int, 1, None))


@dataclass
class SpeakerModel:
    """A loaded model with everything needed to use it."""

    model: ResNetSE34L
    aggregator: SegmentAggregator | None = None
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    meta: dict[str, Any] = field(default_factory=dict)


def checkpoint_dict(sm: SpeakerModel, **extra: Any) -> dict[str, Any]:
    """The checkpoint payload (plain tensors, strings and numbers only)."""
    out: dict[str, Any] = {
        "format": FORMAT,
        "version": 1,
        "architecture": ARCHITECTURE,
        "model_config": asdict(sm.model.cfg),
        "aggregation": asdict(sm.aggregation),
        "state_dict": checkpoint.state_tensors(sm.model),
        "meta": json.loads(json.dumps(sm.meta, default=str)),
    }
    if sm.aggregator is not None:
        out["aggregator_state_dict"] = checkpoint.state_tensors(sm.aggregator)
    out.update(extra)
    return out


def save_speaker_model(
    path: str | os.PathLike, sm: SpeakerModel, force: bool = False, **extra: Any
) -> Path:
    """Write ``path`` atomically: ``.safetensors`` (fp16, metadata as JSON) or a torch file."""
    payload = checkpoint_dict(sm, **extra)
    if str(path).endswith(".safetensors"):
        tensors = {f"model.{k}": v for k, v in payload.pop("state_dict").items()}
        tensors.update(
            {f"aggregator.{k}": v for k, v in payload.pop("aggregator_state_dict", {}).items()}
        )
        return checkpoint.save(path, checkpoint.half(tensors), payload, force)
    return write_with(path, lambda p: torch.save(payload, p), force)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MungError(f"{path}: checkpoint not found")
    if path.suffix == ".safetensors":
        tensors, payload = checkpoint.load(path, "mung speaker model")
        tensors = {k: v.float() for k, v in tensors.items()}
        payload["state_dict"] = checkpoint.strip_prefix(tensors, "model.")
        agg = checkpoint.strip_prefix(tensors, "aggregator.")
        if agg:
            payload["aggregator_state_dict"] = agg
        return payload
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise MungError(
            f"{path}: not a loadable weights-only torch checkpoint ({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(obj, dict):
        raise MungError(f"{path}: checkpoint holds a {type(obj).__name__}, not a state dict")
    return obj


def _from_voxceleb_trainer(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """Convert a voxceleb_trainer state dict (``__S__.`` model, ``__L__.`` loss) to our payload."""
    model_state: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.replace("module.", "")
        if key.startswith("__S__.") and not key.startswith("__S__.torchfb."):
            model_state[key[6:]] = value
    if "fc.weight" not in model_state or "sap_linear.weight" not in model_state:
        raise MungError(
            f"{path}: voxceleb_trainer checkpoint is not a ResNetSE34L model (no SAP/ASP head)"
        )
    layers = []
    for i in range(1, 5):
        blocks = {int(m.group(1)) for k in model_state if (m := re.match(rf"layer{i}\.(\d+)\.", k))}
        layers.append(max(blocks) + 1 if blocks else 0)
    try:
        channels = [int(model_state["conv1.weight"].shape[0])] + [
            int(model_state[f"layer{i}.0.conv1.weight"].shape[0]) for i in (2, 3, 4)
        ]
    except KeyError:
        raise MungError(f"{path}: voxceleb_trainer checkpoint is not a ResNetSE34L model") from None
    fc_in, c_last = model_state["fc.weight"].shape[1], model_state["sap_linear.weight"].shape[0]
    n_mels = next((int(v.shape[-1]) for k, v in state.items() if k.endswith("mel_scale.fb")), 40)
    cfg = ResNetSEConfig(
        layers=layers,
        channels=channels,
        n_out=int(model_state["fc.weight"].shape[0]),
        encoder_type="ASP" if fc_in == 2 * c_last else "SAP",
        frontend=FrontendConfig(n_mels=n_mels),
    )
    return {
        "format": "voxceleb_trainer",
        "architecture": ARCHITECTURE,
        "model_config": asdict(cfg),
        "state_dict": model_state,
        "meta": {"source": "voxceleb_trainer", "path": str(path)},
    }


def load_speaker_model(path: str | os.PathLike, device: str = "cpu") -> SpeakerModel:
    """Load our checkpoint or a voxceleb_trainer one as an eval-mode :class:`SpeakerModel`."""
    path = Path(path)
    payload = _read(path)
    if payload.get("format") != FORMAT:
        state = payload.get("model_state_dict", payload)  # voxceleb_trainer new / legacy layout
        if not isinstance(state, dict) or not any(
            str(k).replace("module.", "").startswith("__S__.") for k in state
        ):
            raise MungError(
                f"{path}: neither a mung speaker checkpoint nor a voxceleb_trainer one "
                "(no '__S__.' keys)"
            )
        payload = _from_voxceleb_trainer(state, path)
    if payload.get("architecture") != ARCHITECTURE:
        raise MungError(
            f"{path}: checkpoint architecture is {payload.get('architecture')!r}, "
            f"expected {ARCHITECTURE}"
        )
    try:
        model = ResNetSE34L(ResNetSEConfig.from_dict(payload["model_config"]))
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise MungError(
            f"{path}: weights do not fit a ResNetSE34L ({str(exc).splitlines()[0][:200]})"
        ) from None
    agg_cfg = AggregationConfig(**payload.get("aggregation", {}))
    aggregator = None
    if "aggregator_state_dict" in payload:
        aggregator = SegmentAggregator(model.cfg.n_out, agg_cfg.hidden)
        try:
            aggregator.load_state_dict(payload["aggregator_state_dict"])
        except RuntimeError as exc:
            raise MungError(
                f"{path}: aggregator weights do not fit ({str(exc).splitlines()[0][:200]})"
            ) from None
        aggregator.to(device).eval()
    return SpeakerModel(model.to(device).eval(), aggregator, agg_cfg, dict(payload.get("meta", {})))
