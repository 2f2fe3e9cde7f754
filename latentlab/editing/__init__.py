"""Editing in latent space: layer ranges, directions, style mixing, expression transfer, face swap."""
