"""GAN inversion: project real photos into W / W+."""

from .project import (PRESETS, ProjectionResult, ProjectorConfig, latent_stats, override_noise, project,
                      synthesize_projection)

__all__ = ["PRESETS", "ProjectionResult", "ProjectorConfig", "latent_stats", "override_noise", "project",
           "synthesize_projection"]
