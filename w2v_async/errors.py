"""Exception types raised by the library; only cli/ turns them into click errors."""

from typing import Optional


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
    """A signal stopped training; a checkpoint and the vectors so far were written where the run had
    somewhere to write them (None: a Python API run without output or checkpoint_dir)."""

    def __init__(self, signal_name: str, checkpoint_dir: Optional[str], checkpoint_path: Optional[str],
                 partial: Optional[str], done: str):
        self.signal_name, self.checkpoint_dir, self.checkpoint_path, self.partial = (
            signal_name, checkpoint_dir, checkpoint_path, partial)
        if checkpoint_path is None:
            saved = "nothing was saved (give output or checkpoint_dir to keep the state)"
        elif partial is None:
            saved = f"saved checkpoint {checkpoint_path}"
        else:
            saved = f"saved checkpoint {checkpoint_path} and the vectors so far in {partial} (partial)"
        super().__init__(f"stopped by {signal_name} {done}; {saved}.")
