"""Errors a user can cause. The CLI prints them as one line, without a traceback."""


class MungError(Exception):
    """A problem with the user's input (file, config, label): reported as one clear line."""
