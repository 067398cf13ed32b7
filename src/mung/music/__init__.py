"""Music station classification and mood tagging: ``features`` (mel front-end), ``data`` (labels,
crops), ``models`` (one file per network, registered by name), ``train``, ``model_io`` (checkpoints),
``predict``, ``ensemble``, ``tag``, ``formats``, ``evaluate``, ``metrics`` and ``ablate``.
See docs/music.md."""
