"""``latentlab ui``: a local web app (upload, align, project with live progress, edit, style mix,
face swap, download). :mod:`.core` holds the logic (testable without a server), :mod:`.app` the
Flask layer, :mod:`.page` the single HTML page."""

from .core import BusyError, Job, Session, Studio, decode_upload

__all__ = ["BusyError", "Job", "Session", "Studio", "decode_upload"]
