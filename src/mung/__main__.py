"""``python -m mung`` = the ``mung`` command."""

from mung.cli import main

main()
