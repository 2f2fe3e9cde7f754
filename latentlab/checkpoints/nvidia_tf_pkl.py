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
from .nvidia_pkl import _normalize, _plain, check_state_dict
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
    kw = _plain(kw)
    config: dict[str, Any] = {"mapping_kwargs": {}, "synthesis_kwargs": {}}
    for tf_name, (dest, default) in _TF_KWARGS.items():
        value = kw.get(tf_name, default)
        if value is None and tf_name == "w_avg_beta":
            value = 1
        if value is None and default is not None:
            value = default
        if tf_name == "fmap_base":
            value = int(value) * 2  # TF: fmap_base / 2**(stage), stage = log2(res) - 1
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
    return _normalize(config, path)


def _collect_variables(net: TFNetwork, prefix: str, out: dict[str, Any], path: Path) -> None:
    variables = net.state.get("variables")
    if not isinstance(variables, (list, tuple)):
        raise CheckpointError(f"{path}: TensorFlow network {net.state.get('name')!r} has no variable list")
    for item in variables:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            raise CheckpointError(f"{path}: malformed TensorFlow variable entry")
        name, value = item
        if not isinstance(value, (np.ndarray, np.generic, float, int)):
            raise CheckpointError(f"{path}: TensorFlow variable {name} is not numeric data")
        out[prefix + name] = np.asarray(value, dtype=np.float32)
    for comp_name, comp in (net.state.get("components") or {}).items():
        if not isinstance(comp, TFNetwork):
            raise CheckpointError(f"{path}: TensorFlow component {comp_name!r} is not a network")
        _collect_variables(comp, f"{prefix}{comp_name}/", out, path)


def _convert(config: dict[str, Any], tf: dict[str, np.ndarray], path: Path) -> dict[str, torch.Tensor]:
    """TF variable dict (``synthesis/8x8/Conv0_up/weight``...) -> NVIDIA PyTorch state dict."""
    used: set[str] = {"lod"}
    state: dict[str, torch.Tensor] = {}

    def take(name: str) -> np.ndarray:
        if name not in tf:
            raise CheckpointError(f"{path}: TensorFlow pickle lacks variable {name}")
        used.add(name)
        return tf[name]

    def put(name: str, value: np.ndarray) -> None:
        state[name] = torch.from_numpy(np.array(value, dtype=np.float32, order="C"))  # keeps rank 0

    def conv(w: np.ndarray, flip: bool = False) -> np.ndarray:  # [kh, kw, I, O] -> [O, I, kh, kw]
        if w.ndim != 4:
            raise CheckpointError(f"{path}: TensorFlow conv weight of rank {w.ndim}")
        return (w[::-1, ::-1] if flip else w).transpose(3, 2, 0, 1)

    mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
    put("mapping.w_avg", take("dlatent_avg"))
    if config["c_dim"] > 0:
        if "mapping/LabelConcat/weight" in tf:
            raise CheckpointError(f"{path}: conditional TF StyleGAN2 (LabelConcat) is not supported; "
                                  "only the ADA-style LabelEmbed")
        put("mapping.embed.weight", take("mapping/LabelEmbed/weight").T)
        put("mapping.embed.bias", take("mapping/LabelEmbed/bias"))
    for i in range(int(mk["num_layers"])):
        put(f"mapping.fc{i}.weight", take(f"mapping/Dense{i}/weight").T)
        put(f"mapping.fc{i}.bias", take(f"mapping/Dense{i}/bias"))

    def styled(dst: str, src: str, noise_index: int | None, flip: bool) -> None:
        put(f"{dst}.weight", conv(take(f"{src}/weight"), flip))
        put(f"{dst}.bias", take(f"{src}/bias"))
        put(f"{dst}.affine.weight", take(f"{src}/mod_weight").T)
        put(f"{dst}.affine.bias", take(f"{src}/mod_bias") + np.float32(1))
        if noise_index is not None and sk["use_noise"]:
            put(f"{dst}.noise_const", take(f"synthesis/noise{noise_index}")[0, 0])
            put(f"{dst}.noise_strength", take(f"{src}/noise_strength").reshape([]))

    res_log2 = int(round(math.log2(config["img_resolution"])))
    put("synthesis.b4.const", take("synthesis/4x4/Const/const")[0])
    styled("synthesis.b4.conv1", "synthesis/4x4/Conv", 0, flip=False)
    for k in range(3, res_log2 + 1):
        r = 2**k
        styled(f"synthesis.b{r}.conv0", f"synthesis/{r}x{r}/Conv0_up", 2 * k - 5, flip=True)
        styled(f"synthesis.b{r}.conv1", f"synthesis/{r}x{r}/Conv1", 2 * k - 4, flip=False)
        if sk["architecture"] == "resnet":
            put(f"synthesis.b{r}.skip.weight", conv(take(f"synthesis/{r}x{r}/Skip/weight"), flip=True))
    for k in range(2, res_log2 + 1):
        r = 2**k
        if sk["architecture"] == "skip" or k == res_log2:
            styled(f"synthesis.b{r}.torgb", f"synthesis/{r}x{r}/ToRGB", None, flip=False)

    unused = sorted(set(tf) - used)
    if unused:
        more = f" (+{len(unused) - 3} more)" if len(unused) > 3 else ""
        raise CheckpointError(f"{path}: TensorFlow variables with no place in the architecture: "
                              f"{', '.join(unused[:3])}{more}")
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
        Gs, which = data, str(data.state.get("name"))
    else:
        raise CheckpointError(f"{path}: expected the TensorFlow tuple (G, D, Gs), got a {type(data).__name__}")
    state = Gs.state
    if state.get("build_func_name") != "G_main" or not isinstance(state.get("static_kwargs"), dict):
        raise CheckpointError(f"{path}: {which} is not a StyleGAN2 generator "
                              f"(build function {state.get('build_func_name')!r})")
    components = state.get("components") or {}
    synthesis = components.get("synthesis")
    if not isinstance(synthesis, TFNetwork) or synthesis.state.get("build_func_name") != "G_synthesis_stylegan2":
        name = synthesis.state.get("build_func_name") if isinstance(synthesis, TFNetwork) else None
        raise CheckpointError(f"{path}: {which} synthesis is {name!r}, not G_synthesis_stylegan2")
    config = _config_from_static_kwargs(state["static_kwargs"], path)
    tf: dict[str, np.ndarray] = {}
    _collect_variables(Gs, "", tf, path)
    sd = check_state_dict(config, _convert(config, tf, path), path)
    extra = {"network": which, "tf_static_kwargs": _plain(dict(state["static_kwargs"]))}
    return CheckpointData("stylegan2", config, sd, "nvidia-tf-pkl", extra)


__all__ = ["read_nvidia_tf_pkl"]
