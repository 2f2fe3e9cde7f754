"""Reader for NVIDIA's PyTorch StyleGAN2 pickles (stylegan2-ada-pytorch and stylegan3).

Both training snapshots (``network-snapshot-*.pkl``: ``{G, D, G_ema, augment_pipe,
training_set_kwargs}``) and released network pickles are read with the restricted unpickler;
the embedded source is never executed. The architecture is rebuilt from ``G_ema``'s
``_init_kwargs`` (class defaults filled in) and the state dict keeps NVIDIA's names, so it
fills :class:`~latentlab.models.stylegan2.StyleGAN2Generator` strictly.

The helpers :func:`check_state_dict` and :func:`estimate_w_avg` are shared with the TF and
rosinality readers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from . import CheckpointData
from .unpickle import EasyDict, PersistentObject, load_pickle

# NVIDIA generator classes with StyleGAN2's architecture, and their positional argument order.
_GENERATOR_CLASSES = {
    "training.networks.Generator": ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
                                    "mapping_kwargs", "synthesis_kwargs"),
    "training.networks_stylegan2.Generator": ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
                                              "mapping_kwargs"),
}
_TOP_KWARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")

#: Samples and seed used when a checkpoint stores no average W.
W_AVG_SAMPLES = 10000
W_AVG_SEED = 0


# ---------------------------------------------------------------------------- shared helpers
def _normalize(config: dict[str, Any], path: Path) -> dict[str, Any]:
    from ..models.stylegan2 import normalize_config

    try:
        return normalize_config(**config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: unsupported StyleGAN2 configuration ({exc})") from None


def check_state_dict(config: dict[str, Any], state: dict[str, torch.Tensor], path: str | Path) -> dict[str, torch.Tensor]:
    """Check ``state`` against the tensors a StyleGAN2Generator(**config) has, strictly.

    Missing ``resample_filter`` buffers are computed from the config (they are not learned).
    Any other missing or unexpected name, or a shape mismatch, raises CheckpointError.
    Returns a new dict of contiguous float32 CPU tensors in the model's order.
    """
    from ..models.stylegan2 import StyleGAN2Generator
    from ..ops import setup_filter

    path = Path(path)
    config = _normalize(config, path)
    with torch.device("meta"):
        template = StyleGAN2Generator(**config).state_dict()
    filt = setup_filter(config["synthesis_kwargs"]["resample_filter"])
    out: dict[str, torch.Tensor] = {}
    missing = []
    for name, ref in template.items():
        if name in state:
            t = state[name]
        elif name.endswith("resample_filter"):
            t = filt
        else:
            missing.append(name)
            continue
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{path}: {name} is not a tensor")
        if tuple(t.shape) != tuple(ref.shape):
            raise CheckpointError(f"{path}: {name} has shape {list(t.shape)}, the architecture needs {list(ref.shape)}")
        out[name] = t.detach().to(device="cpu", dtype=torch.float32).contiguous()
    if missing:
        more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing[:3])}{more}")
    unexpected = sorted(set(state) - set(template))
    if unexpected:
        more = f" (+{len(unexpected) - 3} more)" if len(unexpected) > 3 else ""
        raise CheckpointError(f"{path}: checkpoint has tensors the architecture does not: "
                              f"{', '.join(unexpected[:3])}{more}")
    return out


@torch.no_grad()
def estimate_w_avg(config: dict[str, Any], state: dict[str, torch.Tensor], num_samples: int = W_AVG_SAMPLES,
                   seed: int = W_AVG_SEED) -> torch.Tensor:
    """Mean of mapping(z) over ``num_samples`` z ~ N(0, I) drawn from ``torch.Generator`` seeded ``seed``.

    Used when a checkpoint stores no average W. Returns [w_dim] float32 on the CPU.
    """
    from ..models.stylegan2 import MappingNetwork, normalize_config

    cfg = normalize_config(**config)
    mapping = MappingNetwork(z_dim=cfg["z_dim"], c_dim=cfg["c_dim"], w_dim=cfg["w_dim"], num_ws=1,
                             **cfg["mapping_kwargs"])
    sub = {k.removeprefix("mapping."): v for k, v in state.items() if k.startswith("mapping.") and k != "mapping.w_avg"}
    sub["w_avg"] = torch.zeros(cfg["w_dim"])
    mapping.load_state_dict(sub, strict=True)
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(cfg["w_dim"], dtype=torch.float64)
    done = 0
    while done < num_samples:
        n = min(2000, num_samples - done)
        z = torch.randn([n, cfg["z_dim"]], generator=gen)
        c = None
        if cfg["c_dim"] > 0:  # conditional: average over uniformly drawn one-hot labels
            c = torch.nn.functional.one_hot(torch.randint(cfg["c_dim"], [n], generator=gen), cfg["c_dim"]).float()
        total += mapping(z, c).double().sum(0)
        done += n
    return (total / num_samples).float()


def _plain(value: Any) -> Any:
    from ..models.stylegan2 import _plain as plain

    return plain(value)


# ---------------------------------------------------------------------------- reader
def _collect_tensors(obj: PersistentObject, prefix: str, out: dict[str, torch.Tensor], path: Path) -> None:
    state = obj.state
    for key in ("_parameters", "_buffers"):
        for name, t in (state.get(key) or {}).items():
            if t is None:
                continue
            if not isinstance(t, torch.Tensor):
                raise CheckpointError(f"{path}: {prefix}{name} is not a tensor")
            out[prefix + name] = t
    for name, sub in (state.get("_modules") or {}).items():
        if sub is None:
            continue
        if not isinstance(sub, PersistentObject):
            raise CheckpointError(f"{path}: submodule {prefix}{name} is not a network object")
        _collect_tensors(sub, f"{prefix}{name}.", out, path)


def config_from_init_kwargs(class_name: str, init_args: Any, init_kwargs: Any, path: Path) -> dict[str, Any]:
    """NVIDIA ``_init_args``/``_init_kwargs`` -> latentlab StyleGAN2 config (defaults filled)."""
    arg_names = _GENERATOR_CLASSES[class_name]
    if not isinstance(init_kwargs, dict) or not isinstance(init_args, (tuple, list)):
        raise CheckpointError(f"{path}: generator without readable constructor arguments")
    if len(init_args) > len(arg_names):
        raise CheckpointError(f"{path}: generator has {len(init_args)} positional arguments, expected at most "
                              f"{len(arg_names)}")
    kwargs = dict(zip(arg_names, init_args))
    kwargs.update(init_kwargs)
    kwargs = _plain(kwargs)
    config: dict[str, Any] = {k: kwargs.pop(k) for k in _TOP_KWARGS if k in kwargs}
    missing = [k for k in _TOP_KWARGS if k not in config]
    if missing:
        raise CheckpointError(f"{path}: generator constructor arguments lack {', '.join(missing)}")
    config["mapping_kwargs"] = dict(kwargs.pop("mapping_kwargs", None) or {})
    synthesis = dict(kwargs.pop("synthesis_kwargs", None) or {})
    synthesis.update(kwargs)  # stylegan3's networks_stylegan2 takes synthesis kwargs flat
    if class_name == "training.networks_stylegan2.Generator":
        synthesis.setdefault("num_fp16_res", 4)  # that class's default
    config["synthesis_kwargs"] = synthesis
    return _normalize(config, path)


def _generator_class(G: PersistentObject, network_key: str, path: Path) -> str:
    """Which NVIDIA StyleGAN2 generator class ``G`` is (the pickle stores only the bare name).

    stylegan2-ada-pytorch's ``training.networks.Generator`` nests ``synthesis_kwargs``;
    stylegan3's ``training.networks_stylegan2.Generator`` takes them flat. StyleGAN3's own
    generator (also named ``Generator``) has no ``b4`` block and is refused.
    """
    name = G.class_name.rsplit(".", 1)[-1]
    modules = G.state.get("_modules") or {}
    synthesis = modules.get("synthesis")
    if name != "Generator" or not isinstance(synthesis, PersistentObject) or "mapping" not in modules:
        raise CheckpointError(f"{path}: {network_key} is a {G.class_name}, not a StyleGAN2 generator")
    if "b4" not in (synthesis.state.get("_modules") or {}):
        raise CheckpointError(f"{path}: {network_key} is not a StyleGAN2 generator (no synthesis.b4 block; "
                              "StyleGAN3 generators are not supported)")
    kwargs = G.state.get("_init_kwargs") or {}
    if "synthesis_kwargs" in kwargs or len(G.state.get("_init_args") or ()) > 6:
        return "training.networks.Generator"
    if any(k in kwargs for k in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture")):
        return "training.networks_stylegan2.Generator"
    return "training.networks.Generator"


def read_nvidia_pkl(path: str | Path) -> CheckpointData:
    """Read a stylegan2-ada-pytorch / stylegan3 StyleGAN2 pickle (uses ``G_ema``).

    Returns CheckpointData(family "stylegan2", config, state_dict with NVIDIA names,
    source_format "nvidia-pkl"). Raises UnsafePickleError / CheckpointError (one line).
    """
    path = Path(path)
    data = load_pickle(path)
    network_key = None
    if isinstance(data, dict):
        for key in ("G_ema", "G"):
            if isinstance(data.get(key), PersistentObject):
                network_key = key
                break
        if network_key is None:
            raise CheckpointError(f"{path}: NVIDIA pickle without a generator (no 'G_ema' or 'G' network)")
        G = data[network_key]
    elif isinstance(data, PersistentObject):
        G, network_key = data, "<top level>"
    else:
        raise CheckpointError(f"{path}: NVIDIA pickle holds a {type(data).__name__}, not a network dict")

    class_name = _generator_class(G, network_key, path)
    config = config_from_init_kwargs(class_name, G.state.get("_init_args", ()), G.state.get("_init_kwargs"), path)
    raw: dict[str, torch.Tensor] = {}
    _collect_tensors(G, "", raw, path)

    extra: dict[str, Any] = {"network": network_key, "nvidia_class": class_name}
    if network_key == "G":
        extra["note"] = "no G_ema in the pickle: used G (the non-averaged training generator)"
    if "mapping.w_avg" not in raw:
        raw["mapping.w_avg"] = estimate_w_avg(config, raw)
        extra["w_avg"] = f"estimated from {W_AVG_SAMPLES} mapping samples (torch seed {W_AVG_SEED})"
    if isinstance(data, dict) and isinstance(data.get("training_set_kwargs"), (dict, EasyDict)):
        extra["training_set_kwargs"] = _plain(data["training_set_kwargs"])
    state = check_state_dict(config, raw, path)
    return CheckpointData("stylegan2", config, state, "nvidia-pkl", extra)


__all__ = ["check_state_dict", "config_from_init_kwargs", "estimate_w_avg", "read_nvidia_pkl"]
