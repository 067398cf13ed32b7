"""Errors a user can cause. The CLI prints them as one line, without a traceback."""


class MungError(Exception):
    """A problem with the user's input (file, config, label): reported as one clear line."""


def describe_error(path: object, exc: BaseException) -> str:
    """One line for an input that failed: a :class:`MungError` as it is, anything else with the
    input's ``path`` and the exception's type (the traceback is for ``--debug``)."""
    if isinstance(exc, MungError):
        return str(exc)
    return f"{path}: {type(exc).__name__}: {exc} (run with --debug for details)"
