"""Exception types raised by the library; only cli.py turns them into click errors."""


class W2VError(Exception):
    """Base class: a problem the user can fix, with the fix in the message."""


class ConfigError(W2VError):
    """A setting is out of range (a usage error: exit code 2)."""


class InputError(W2VError):
    """An input file or corpus cannot be used (a runtime error: exit code 1)."""
