"""Reader for NVIDIA's original TensorFlow StyleGAN2 pickles: the tuple ``(G, D, Gs)``.

Each network is a ``dnnlib.tflib.network.Network`` whose pickled state holds its
``static_kwargs`` and ``variables``; the restricted unpickler turns it into data without
TensorFlow and without running the embedded build source. ``Gs`` (the moving average) is
converted to NVIDIA PyTorch names and layouts, as stylegan2-ada-pytorch's ``legacy.py`` defines
them:

* conv weights [kh, kw, I, O] -> [O, I, kh, kw]; ``Conv0_up`` (and resnet ``Skip``) weights are
  stored spatially flipped; dense weights are transposed;
* TF ``mod_bias`` excludes the +1 of the affine bias init; ``const[0]``; ``noise{k}[0, 0]``;
* ``w_avg`` is the top-level network's ``dlatent_avg``.

Hyperparameters absent from ``static_kwargs`` take the TF defaults (8 mapping layers,
lr multiplier 0.01, 'skip', ``fmap_base`` 16384 -> ``channel_base`` 32768, ...).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from . import CheckpointData
from .nvidia_pkl import check_state_dict, checked_config, plain_kwargs
from .unpickle import TFNetwork, load_pickle

# TF static_kwarg -> (latentlab config location, TF default). Values read as legacy.py reads them.
_TF_KWARGS: dict[str, tuple[str, Any]] = {
    "latent_size": ("z_dim", 512),
    "label_size": ("c_dim", 0),
    "dlatent_size": ("w_dim", 512),
    "resolution": ("img_resolution", 1024),
    "num_channels": ("img_channels", 3),
    "mapping_layers": ("mapping_kwargs.num_layers", 8),
    "label_fmaps": ("mapping_kwargs.embed_features", None),
    "mapping_fmaps": ("mapping_kwargs.layer_features", None),
    "mapping_nonlinearity": ("mapping_kwargs.activation", "lrelu"),
    "mapping_lrmul": ("mapping_kwargs.lr_multiplier", 0.01),
    "w_avg_beta": ("mapping_kwargs.w_avg_beta", 0.995),
    "fmap_base": ("synthesis_kwargs.channel_base", 16384),  # doubled below
    "fmap_max": ("synthesis_kwargs.channel_max", 512),
    "num_fp16_res": ("synthesis_kwargs.num_fp16_res", 0),
    "conv_clamp": ("synthesis_kwargs.conv_clamp", None),
    "architecture": ("synthesis_kwargs.architecture", "skip"),
    "resample_kernel": ("synthesis_kwargs.resample_filter", [1, 3, 3, 1]),
    "use_noise": ("synthesis_kwargs.use_noise", True),
    "nonlinearity": ("synthesis_kwargs.activation", "lrelu"),
}
# Run-time options that TF pickles may store; they do not change the weights' meaning.
_TF_IGNORED = {"truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
               "style_mixing_prob", "structure", "conditioning", "fused_modconv", "dlatent_avg_beta",
               "randomize_noise", "is_template_graph", "dtype"}
# Accepted only at their TF default value (the PyTorch architecture has no equivalent).
_TF_FIXED = {"fmap_decay": 1.0, "fmap_min": 1, "normalize_latents": True}


def _config_from_static_kwargs(kw: dict[str, Any], path: Path) -> dict[str, Any]:
    kw = plain_kwargs(kw, path)
    config: dict[str, Any] = {"mapping_kwargs": {}, "synthesis_kwargs": {}}
    for tf_name, (dest, default) in _TF_KWARGS.items():
        value = kw.get(tf_name, default)
        if value is None and tf_name == "w_avg_beta":
            value = 1
        if value is None and default is not None:
            value = default
        if tf_name == "fmap_base":
            if isinstance(value, bool) or not isinstance(value, int):
                raise CheckpointError(f"{path}: TensorFlow option fmap_base must be an integer, got "
                                      f"{type(value).__name__}")
            value = value * 2  # TF: fmap_base / 2**(stage), stage = log2(res) - 1
        if "." in dest:
            group, key = dest.split(".")
            config[group][key] = value
        else:
            config[dest] = value
    for tf_name, fixed in _TF_FIXED.items():
        if tf_name in kw and kw[tf_name] != fixed:
            raise CheckpointError(f"{path}: unsupported TensorFlow generator option {tf_name}={kw[tf_name]!r}")
    unknown = sorted(set(kw) - set(_TF_KWARGS) - _TF_IGNORED - set(_TF_FIXED))
    if unknown:
        raise CheckpointError(f"{path}: unknown TensorFlow generator option(s): {', '.join(unknown)}")
    return checked_config(config, path)


#: Deepest nesting of TF network components accepted (real pickles: 1).
MAX_COMPONENT_DEPTH = 8


def _name(net: TFNetwork) -> str:
    name = net.state.get("name")
    return name[:60] if isinstance(name, str) else "<unnamed>"


def _build_func(net: TFNetwork) -> str | None:
    name = net.state.get("build_func_name")
    return name if isinstance(name, str) else None


def _components(net: TFNetwork, path: Path) -> dict[str, Any]:
    comps = net.state.get("components")
    if comps is None:
        return {}
    if not isinstance(comps, dict):
        raise CheckpointError(f"{path}: TensorFlow network {_name(net)!r} has components "
                              f"of type {type(comps).__name__}, not a dict")
    return comps


def _collect_variables(root: TFNetwork, out: dict[str, Any], path: Path) -> None:
    """Every TF variable under ``root`` (components prefixed ``name/``), as float32 arrays.

    Iterative, with a visited set (a network that is its own component is refused) and a depth limit.
    """
    stack: list[tuple[TFNetwork, str, int]] = [(root, "", 0)]
    visited: set[int] = set()
    while stack:
        net, prefix, depth = stack.pop()
        if id(net) in visited:
            raise CheckpointError(f"{path}: TensorFlow component {prefix.rstrip('/')[:80]!r} appears twice "
                                  "(a cycle or a shared component)")
        visited.add(id(net))
        if depth > MAX_COMPONENT_DEPTH:
            raise CheckpointError(f"{path}: TensorFlow components nested more than {MAX_COMPONENT_DEPTH} levels deep")
        variables = net.state.get("variables")
        if not isinstance(variables, (list, tuple)):
            raise CheckpointError(f"{path}: TensorFlow network {_name(net)!r} has no variable list")
        for item in variables:
            if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
                raise CheckpointError(f"{path}: malformed TensorFlow variable entry")
            name, value = item
            if isinstance(value, bool) or not isinstance(value, (np.ndarray, np.generic, float, int)) or \
                    np.asarray(value).dtype.kind not in "biuf":
                raise CheckpointError(f"{path}: TensorFlow variable {name[:80]} is not numeric data")
            out[prefix + name] = np.asarray(value, dtype=np.float32)
        for comp_name, comp in _components(net, path).items():
            if not isinstance(comp_name, str) or not isinstance(comp, TFNetwork):
                raise CheckpointError(f"{path}: TensorFlow component {str(comp_name)[:60]!r} is not a network")
            stack.append((comp, f"{prefix}{comp_name}/", depth + 1))


def _tf_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The TF variable shape that holds an NVIDIA tensor of ``shape`` in ``layout``."""
    if layout == "dense":  # [O, I] <- [I, O]
        return shape[::-1]
    if layout == "conv":  # [O, I, kh, kw] <- [kh, kw, I, O]
        o, i, kh, kw = shape
        return (kh, kw, i, o)
    if layout == "lead1":  # const [C, 4, 4] <- [1, C, 4, 4]
        return (1, *shape)
    if layout == "lead2":  # noise [r, r] <- [1, 1, r, r]
        return (1, 1, *shape)
    return shape


def _convert(config: dict[str, Any], tf: dict[str, np.ndarray], path: Path) -> dict[str, torch.Tensor]:
    """TF variable dict (``synthesis/8x8/Conv0_up/weight``...) -> NVIDIA PyTorch state dict.

    Each TF variable's shape is checked against the one the config implies before it is used.
    """
    from ..models.stylegan2 import StyleGAN2Generator

    with torch.device("meta"):
        template = {k: tuple(v.shape) for k, v in StyleGAN2Generator(**config).state_dict().items()}
    used: set[str] = {"lod"}
    state: dict[str, torch.Tensor] = {}

    def take(name: str, dst: str, layout: str = "same") -> np.ndarray:
        if name not in tf:
            raise CheckpointError(f"{path}: TensorFlow pickle lacks variable {name}")
        used.add(name)
        value = tf[name]
        want = _tf_shape(template[dst], layout)
        ok = value.size == 1 if layout == "scalar" else tuple(value.shape) == want
        if not ok:
            raise CheckpointError(f"{path}: TensorFlow variable {name} has shape {list(value.shape)[:8]}, the "
                                  f"architecture needs {list(want)}")
        return value

    def put(name: str, value: np.ndarray) -> None:
        state[name] = torch.from_numpy(np.array(value, dtype=np.float32, order="C"))  # keeps rank 0

    def conv(w: np.ndarray, flip: bool = False) -> np.ndarray:  # [kh, kw, I, O] -> [O, I, kh, kw]
        return (w[::-1, ::-1] if flip else w).transpose(3, 2, 0, 1)

    mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
    put("mapping.w_avg", take("dlatent_avg", "mapping.w_avg"))
    if config["c_dim"] > 0:
        if "mapping/LabelConcat/weight" in tf:
            raise CheckpointError(f"{path}: conditional TF StyleGAN2 (LabelConcat) is not supported; "
                                  "only the ADA-style LabelEmbed")
        put("mapping.embed.weight", take("mapping/LabelEmbed/weight", "mapping.embed.weight", "dense").T)
        put("mapping.embed.bias", take("mapping/LabelEmbed/bias", "mapping.embed.bias"))
    for i in range(int(mk["num_layers"])):
        put(f"mapping.fc{i}.weight", take(f"mapping/Dense{i}/weight", f"mapping.fc{i}.weight", "dense").T)
        put(f"mapping.fc{i}.bias", take(f"mapping/Dense{i}/bias", f"mapping.fc{i}.bias"))

    def styled(dst: str, src: str, noise_index: int | None, flip: bool) -> None:
        put(f"{dst}.weight", conv(take(f"{src}/weight", f"{dst}.weight", "conv"), flip))
        put(f"{dst}.bias", take(f"{src}/bias", f"{dst}.bias"))
        put(f"{dst}.affine.weight", take(f"{src}/mod_weight", f"{dst}.affine.weight", "dense").T)
        put(f"{dst}.affine.bias", take(f"{src}/mod_bias", f"{dst}.affine.bias") + np.float32(1))
        if noise_index is not None and sk["use_noise"]:
            put(f"{dst}.noise_const", take(f"synthesis/noise{noise_index}", f"{dst}.noise_const", "lead2")[0, 0])
            put(f"{dst}.noise_strength", take(f"{src}/noise_strength", f"{dst}.noise_strength", "scalar").reshape([]))

    res_log2 = int(round(math.log2(config["img_resolution"])))
    put("synthesis.b4.const", take("synthesis/4x4/Const/const", "synthesis.b4.const", "lead1")[0])
    styled("synthesis.b4.conv1", "synthesis/4x4/Conv", 0, flip=False)
    for k in range(3, res_log2 + 1):
        r = 2**k
        styled(f"synthesis.b{r}.conv0", f"synthesis/{r}x{r}/Conv0_up", 2 * k - 5, flip=True)
        styled(f"synthesis.b{r}.conv1", f"synthesis/{r}x{r}/Conv1", 2 * k - 4, flip=False)
        if sk["architecture"] == "resnet":
            put(f"synthesis.b{r}.skip.weight",
                conv(take(f"synthesis/{r}x{r}/Skip/weight", f"synthesis.b{r}.skip.weight", "conv"), flip=True))
    for k in range(2, res_log2 + 1):
        r = 2**k
        if sk["architecture"] == "skip" or k == res_log2:
            styled(f"synthesis.b{r}.torgb", f"synthesis/{r}x{r}/ToRGB", None, flip=False)

    unused = sorted(set(tf) - used)
    if unused:
        more = f" (+{len(unused) - 3} more)" if len(unused) > 3 else ""
        raise CheckpointError(f"{path}: TensorFlow variables with no place in the architecture: "
                              f"{', '.join(u[:80] for u in unused[:3])}{more}")
    return state


def read_nvidia_tf_pkl(path: str | Path) -> CheckpointData:
    """Read an original TensorFlow StyleGAN2 pickle ``(G, D, Gs)``; converts ``Gs``.

    Returns CheckpointData(family "stylegan2", config, NVIDIA-named state_dict,
    source_format "nvidia-tf-pkl"). Raises UnsafePickleError / CheckpointError (one line).
    """
    path = Path(path)
    data = load_pickle(path)
    if isinstance(data, (tuple, list)) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data):
        Gs, which = data[2], "Gs"
    elif isinstance(data, TFNetwork):
        Gs, which = data, _name(data)
    else:
        raise CheckpointError(f"{path}: expected the TensorFlow tuple (G, D, Gs), got a {type(data).__name__}")
    state = Gs.state
    if _build_func(Gs) != "G_main" or not isinstance(state.get("static_kwargs"), dict):
        raise CheckpointError(f"{path}: {which[:60]} is not a StyleGAN2 generator "
                              f"(build function {str(_build_func(Gs))[:60]!r})")
    synthesis = _components(Gs, path).get("synthesis")
    if not isinstance(synthesis, TFNetwork) or _build_func(synthesis) != "G_synthesis_stylegan2":
        name = _build_func(synthesis) if isinstance(synthesis, TFNetwork) else None
        raise CheckpointError(f"{path}: {which[:60]} synthesis is {str(name)[:60]!r}, not G_synthesis_stylegan2")
    config = _config_from_static_kwargs(state["static_kwargs"], path)
    tf: dict[str, np.ndarray] = {}
    _collect_variables(Gs, tf, path)
    sd = check_state_dict(config, _convert(config, tf, path), path)
    extra = {"network": which, "tf_static_kwargs": plain_kwargs(dict(state["static_kwargs"]), path)}
    return CheckpointData("stylegan2", config, sd, "nvidia-tf-pkl", extra)


__all__ = ["read_nvidia_tf_pkl"]
