"""Runs over many photos: per-photo isolation, a manifest, resume, Ctrl-C, and the engines that
execute a run (``local``: this process; ``ray``: a Ray cluster, optional extra ``latentlab[ray]``).

* :mod:`~latentlab.engine.runs`: :func:`~latentlab.engine.runs.project_folder`, a folder run of
  :func:`latentlab.inversion.invert` on either engine;
* :mod:`~latentlab.engine.folder`: what both engines share (planning a run against the manifest,
  committing a photo's outputs, the summary, the run lock) and the local engine;
* :mod:`~latentlab.engine.ray_engine`: the Ray engine (also for direction fitting);
* :mod:`~latentlab.engine.outputs`: the files written per photo;
* :mod:`~latentlab.engine.evaluate`: presets side by side on a set of photos (``latentlab evaluate``).
"""
