"""Errors that the CLI turns into a one-line message and a non-zero exit."""


class LatentlabError(Exception):
    """A user-facing error: bad input, unknown model, corrupt checkpoint, ..."""


class CheckpointError(LatentlabError):
    """A checkpoint file cannot be read: unknown format, corrupt, or unsafe."""


class UnsafePickleError(CheckpointError):
    """A pickle references a global that a checkpoint has no business importing."""


class DownloadError(LatentlabError):
    """A download failed or its checksum did not match."""


class ShapeError(LatentlabError, ValueError):
    """A tensor (z, ws, labels, images) has the wrong shape for the model it is given to."""
