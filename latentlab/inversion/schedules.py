"""Optimisation schedules of NVIDIA's StyleGAN2 projector (Karras et al. 2020, appendix D).

``t`` is the optimisation progress in [0, 1] (step / num_steps).
"""

from __future__ import annotations

import math


def learning_rate(t: float, initial_lr: float, rampup_length: float, rampdown_length: float) -> float:
    """Cosine ramp-down over the last ``rampdown_length`` fraction, linear ramp-up over the first
    ``rampup_length`` fraction: ``lr = initial_lr * rampup(t) * (0.5 - 0.5*cos(pi*min(1, (1-t)/rampdown)))``."""
    ramp = min(1.0, (1.0 - t) / rampdown_length) if rampdown_length > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if rampup_length > 0:
        ramp = ramp * min(1.0, t / rampup_length)
    return initial_lr * ramp


def latent_noise_scale(t: float, w_std: float, initial_noise_factor: float, noise_ramp_length: float) -> float:
    """Std of the Gaussian noise added to the latent: ``w_std * factor * max(0, 1 - t/ramp)**2``."""
    if noise_ramp_length <= 0:
        return 0.0
    return w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
