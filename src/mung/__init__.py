"""mung: offline audio toolkit — who spoke when, who is speaking, and what the music feels like."""

import os

# oneDNN (torch's CPU convolutions) caches a compiled primitive per input shape, 1024 by default;
# the CAM++ speaker encoder run in torch (``backend="torch"``, or without onnx; by default it runs
# in ONNX Runtime) sees a new shape for every window length and batch size, and on a 1-hour
# recording the cache grew the peak memory past 1 GB. 64 entries: the calls' peak 924 →
# 781 MB at the same speed (8 entries thrash beside the overlap model: 1.8 times slower). Read when
# torch starts oneDNN, so it is set before anything imports torch.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")

from mung.errors import MungError  # noqa: E402

__all__ = ["MungError", "__version__"]
__version__ = "0.1.0"
