"""The one error a refused or malformed checkpoint raises."""

__all__ = ['UnsafeCheckpointError', 'Refused']

ADVICE = ('Checkpoints written by mmengine or torch.save(state_dict) '
          'load. If you trust this file, load it yourself and re-save its '
          'state_dict with torch.save(ckpt["state_dict"], path).')


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint was refused: it needs something outside the allow-list,
    exceeds its memory budget, or is not a well-formed torch archive.

    Attributes:
        file (str): The file (or URL) that was refused.
        reason (str): What was refused, e.g. ``it needs the global
            builtins.exec, which is not allow-listed``.
    """

    def __init__(self, file: str, reason: str) -> None:
        self.file, self.reason = file, reason
        super().__init__(
            f'Refusing to load checkpoint {file!r}: {reason}. {ADVICE}')


class Refused(Exception):
    """Raised inside a load; :func:`safe_load` turns it into
    :class:`UnsafeCheckpointError` with the file's name."""
