"""GAN inversion: a photo into W / W+ (and, with pivotal tuning, the generator that draws it).

:func:`invert` is the one entry point (align, project, tune, measure); :data:`PRESETS` names the
recipes; :func:`~latentlab.inversion.project.project` and
:func:`~latentlab.inversion.pti.pivotal_tuning` are its two optimisers.
"""

from .config import FOLLOW, PRESETS, ProjectorConfig, TuningConfig, preset_config
from .inverter import invert, reconstruction_metrics, resolve_config
from .project import ProjectionResult, latent_stats, project, synthesize_projection
from .pti import TuningResult, pivotal_tuning

__all__ = ["FOLLOW", "PRESETS", "ProjectionResult", "ProjectorConfig", "TuningConfig", "TuningResult", "invert",
           "latent_stats", "pivotal_tuning", "preset_config", "project", "reconstruction_metrics",
           "resolve_config", "synthesize_projection"]
