"""Exception types raised by the library; only cli.py turns them into click errors."""


class W2VError(Exception):
    """Base class: a problem the user can fix, with the fix in the message."""


class ConfigError(W2VError):
    """A setting is out of range (a usage error: exit code 2)."""


class InputError(W2VError):
    """An input file or corpus cannot be used (a runtime error: exit code 1)."""


class DivergedError(W2VError):
    """The loss or a vector became NaN or infinite; nothing non-finite was written."""

    def __init__(self, epoch: int, epochs: int, what: str = "the loss"):
        self.epoch, self.epochs, self.what = epoch, epochs, what
        super().__init__(f"training diverged in epoch {epoch}/{epochs}: {what} became NaN or infinite.")


class Interrupted(W2VError):
    """A signal stopped training; a checkpoint and the vectors so far were written."""

    def __init__(self, signal_name: str, checkpoint_dir: str, checkpoint_path: str, partial: str, done: str):
        self.signal_name, self.checkpoint_dir, self.checkpoint_path, self.partial = (
            signal_name, checkpoint_dir, checkpoint_path, partial)
        super().__init__(
            f"stopped by {signal_name} {done}; saved checkpoint {checkpoint_path} and the vectors so far in "
            f"{partial} (partial)."
        )
