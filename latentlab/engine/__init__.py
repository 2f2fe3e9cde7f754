"""Running projection over many photos: per-photo isolation, a manifest, resume, Ctrl-C, and
the engines that execute a run (``local``: this process; ``ray``: a Ray cluster, optional extra
``latentlab[ray]``).

:mod:`latentlab.engine.folder` holds what both engines share (planning a run against the
manifest, committing a photo's outputs, the summary) and the local engine;
:mod:`latentlab.engine.ray_engine` the Ray one.
"""

from .folder import MANIFEST_NAME, Manifest, PhotoJob, RunSummary, plan_run, run_local

ENGINES = ("local", "ray")

__all__ = ["ENGINES", "MANIFEST_NAME", "Manifest", "PhotoJob", "RunSummary", "plan_run", "run_local"]
