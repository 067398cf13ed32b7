"""Music station classification and mood tagging (issue 3): ``features`` (mel front-end),
``data`` (labels, crops), ``models`` (registry), ``train``, ``inference`` (checkpoints, ``tag``,
ensembles), ``evaluate``, ``metrics`` and ``ablate`` (issue 5). See docs/music.md."""
