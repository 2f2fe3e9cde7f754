"""Reader for NVIDIA's PyTorch StyleGAN2 pickles (stylegan2-ada-pytorch and stylegan3).

Both training snapshots (``network-snapshot-*.pkl``: ``{G, D, G_ema, augment_pipe,
training_set_kwargs}``) and released network pickles are read with the restricted unpickler;
the embedded source is never executed. The architecture is rebuilt from ``G_ema``'s
``_init_kwargs`` (class defaults filled in) and the state dict keeps NVIDIA's names, so it
fills :class:`~latentlab.models.stylegan2.StyleGAN2Generator` strictly.

The helpers :func:`check_state_dict` and :func:`checked_with_w_avg` are shared with the TF and
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

#: Samples and seed used when a checkpoint stores no average W (latentlab.models.w_avg).
from ..models.w_avg import W_AVG_SAMPLES, W_AVG_SEED, mapping_mean  # noqa: E402


#: Deepest module tree accepted (config-f: 4 levels).
MAX_MODULE_DEPTH = 32
#: Fewest bytes a stored weight value can take (float16 / bfloat16).
_MIN_VALUE_BYTES = 2


# ---------------------------------------------------------------------------- shared helpers
def checked_config(config: dict[str, Any], path: Path) -> dict[str, Any]:
    """:func:`~latentlab.models.stylegan2.normalize_config` with one-line, path-prefixed errors.

    The config's bounds and total size are checked here, before anything is built.
    """
    from ..models.stylegan2 import normalize_config

    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the generator configuration is {type(config).__name__}, not a dict")
    try:
        return normalize_config(**config)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: unsupported StyleGAN2 configuration ({exc})") from None
    except (TypeError, ValueError, OverflowError) as exc:
        msg = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: unsupported StyleGAN2 configuration ({msg})") from None


def _names(keys: Any, limit: int = 3) -> str:
    keys = sorted(str(k)[:80] for k in keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def check_state_dict(config: dict[str, Any], state: dict[str, torch.Tensor], path: str | Path,
                     optional: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Check ``state`` against the tensors a StyleGAN2Generator(**config) has, strictly.

    The config is bounded first (:func:`checked_config`); the architecture's weights must fit in the
    file at ``path`` (at 2 bytes a value at least); the template is built on the meta device
    (nothing allocated). Missing ``resample_filter`` buffers are computed from the config (they
    are not learned); names in ``optional`` may be absent (they are then left out). Any other
    missing or unexpected name, a value that is not a floating-point tensor, or a shape
    mismatch, raises a one-line CheckpointError naming the key. Returns a new dict of contiguous
    float32 CPU tensors in the model's order.
    """
    from ..models.stylegan2 import StyleGAN2Generator
    from ..ops import setup_filter

    path = Path(path)
    config = checked_config(config, path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the weights are a {type(state).__name__}, not a dict of tensors")
    with torch.device("meta"):
        template = StyleGAN2Generator(**config).state_dict()
    stored = sum(t.numel() for k, t in template.items() if not k.endswith("resample_filter") and k not in optional)
    size = _file_size(path)
    if size is not None and stored * _MIN_VALUE_BYTES > size:
        raise CheckpointError(f"{path}: its configuration needs {stored:,} weight values, more than a file of "
                              f"{size:,} bytes can hold")
    filt = setup_filter(config["synthesis_kwargs"]["resample_filter"])
    out: dict[str, torch.Tensor] = {}
    missing = []
    for name, ref in template.items():
        if name in state:
            t = state[name]
        elif name.endswith("resample_filter"):
            t = filt
        elif name in optional:
            continue
        else:
            missing.append(name)
            continue
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{path}: {name} is a {type(t).__name__}, not a tensor")
        if not (t.is_floating_point() and t.element_size() >= _MIN_VALUE_BYTES):
            raise CheckpointError(f"{path}: {name} holds {t.dtype} values, not floating-point weights")
        if tuple(t.shape) != tuple(ref.shape):
            raise CheckpointError(f"{path}: {name} has shape {list(t.shape)[:8]}, the architecture needs "
                                  f"{list(ref.shape)}")
        out[name] = t.detach().to(device="cpu", dtype=torch.float32).contiguous()
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {_names(missing)}")
    unexpected = set(state) - set(template)
    if unexpected:
        raise CheckpointError(f"{path}: checkpoint has tensors the architecture does not: {_names(unexpected)}")
    return out


def _mapping_from_state(config: dict[str, Any], state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The checkpoint's mapping network, for a checkpoint that stores no average W. ``state`` must
    have passed :func:`check_state_dict` (shapes checked, float32): the network is built on the meta
    device and takes those tensors as they are, so nothing is allocated beyond the weights read."""
    from ..models.stylegan2 import MappingNetwork

    cfg = checked_config(config, Path("<config>"))
    with torch.device("meta"):
        mapping = MappingNetwork(z_dim=cfg["z_dim"], c_dim=cfg["c_dim"], w_dim=cfg["w_dim"], num_ws=1,
                                 **cfg["mapping_kwargs"])
    sub = {k.removeprefix("mapping."): v.detach().to(device="cpu", dtype=torch.float32).contiguous()
           for k, v in state.items() if k.startswith("mapping.") and k != "mapping.w_avg"}
    sub["w_avg"] = torch.zeros(cfg["w_dim"])
    expected = set(mapping.state_dict())
    if set(sub) != expected:
        raise CheckpointError(f"cannot estimate w_avg: the mapping weights lack {_names(expected - set(sub))}")
    mapping.load_state_dict(sub, strict=True, assign=True)
    return mapping


def checked_with_w_avg(config: dict[str, Any], state: dict[str, torch.Tensor], path: Path,
                       extra: dict[str, Any]) -> dict[str, torch.Tensor]:
    """:func:`check_state_dict`, estimating ``mapping.w_avg`` (noted in ``extra``) when it is absent.

    The weights are checked *before* the estimate runs, so a file without mapping weights, or with
    the wrong ones, fails with a one-line message instead of inside the mapping network.
    """
    state = check_state_dict(config, state, path, optional=("mapping.w_avg",))
    if "mapping.w_avg" not in state:
        cfg = checked_config(config, path)
        state["mapping.w_avg"] = mapping_mean(_mapping_from_state(config, state), cfg["z_dim"], cfg["c_dim"],
                                              cfg["w_dim"], batch=2000)
        extra["w_avg"] = f"estimated from {W_AVG_SAMPLES} mapping samples (torch seed {W_AVG_SEED})"
        state = check_state_dict(config, state, path)  # model order, w_avg checked like the rest
    return state


def plain_kwargs(value: Any, path: Path | None = None) -> Any:
    from ..models.stylegan2 import plain_data as plain

    try:
        return plain(value)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}" if path is not None else str(exc)) from None


# ---------------------------------------------------------------------------- reader
def _dict_field(state: dict[str, Any], key: str, where: str, path: Path) -> dict[str, Any]:
    """``state[key]`` as a dict (None or absent: empty); CheckpointError for any other type."""
    value = state.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: {where}{key} is a {type(value).__name__}, not a dict")
    return value


def _collect_tensors(root: PersistentObject, out: dict[str, torch.Tensor], path: Path) -> None:
    """Every parameter and buffer of the module tree under ``root``, by dotted name.

    Iterative, with a visited set (a module that contains itself is refused, not followed forever)
    and a depth limit.
    """
    stack: list[tuple[PersistentObject, str, int]] = [(root, "", 0)]
    visited: set[int] = set()
    while stack:
        obj, prefix, depth = stack.pop()
        if id(obj) in visited:
            raise CheckpointError(f"{path}: module {prefix.rstrip('.') or '<root>'} appears twice in the module tree "
                                  "(a cycle or a shared submodule)")
        visited.add(id(obj))
        if depth > MAX_MODULE_DEPTH:
            raise CheckpointError(f"{path}: module tree nested more than {MAX_MODULE_DEPTH} levels deep")
        state = obj.state
        for key in ("_parameters", "_buffers"):
            for name, t in _dict_field(state, key, prefix, path).items():
                if t is None:
                    continue
                if not isinstance(name, str):
                    raise CheckpointError(f"{path}: {prefix}{key} has a key that is not a string")
                if not isinstance(t, torch.Tensor):
                    raise CheckpointError(f"{path}: {prefix}{name} is not a tensor")
                out[prefix + name] = t
        for name, sub in _dict_field(state, "_modules", prefix, path).items():
            if sub is None:
                continue
            if not isinstance(name, str):
                raise CheckpointError(f"{path}: {prefix}_modules has a key that is not a string")
            if not isinstance(sub, PersistentObject):
                raise CheckpointError(f"{path}: submodule {prefix}{name} is not a network object")
            stack.append((sub, f"{prefix}{name}.", depth + 1))


def config_from_init_kwargs(class_name: str, init_args: Any, init_kwargs: Any, path: Path) -> dict[str, Any]:
    """NVIDIA ``_init_args``/``_init_kwargs`` -> latentlab StyleGAN2 config (defaults filled)."""
    arg_names = _GENERATOR_CLASSES[class_name]
    if init_args is None:
        init_args = ()
    if not isinstance(init_kwargs, dict) or not isinstance(init_args, (tuple, list)):
        raise CheckpointError(f"{path}: generator without readable constructor arguments")
    if len(init_args) > len(arg_names):
        raise CheckpointError(f"{path}: generator has {len(init_args)} positional arguments, expected at most "
                              f"{len(arg_names)}")
    kwargs = dict(zip(arg_names, init_args))
    kwargs.update(init_kwargs)
    kwargs = plain_kwargs(kwargs, path)
    config: dict[str, Any] = {k: kwargs.pop(k) for k in _TOP_KWARGS if k in kwargs}
    missing = [k for k in _TOP_KWARGS if k not in config]
    if missing:
        raise CheckpointError(f"{path}: generator constructor arguments lack {', '.join(missing)}")
    groups = {}
    for key in ("mapping_kwargs", "synthesis_kwargs"):
        value = kwargs.pop(key, None) or {}
        if not isinstance(value, dict):
            raise CheckpointError(f"{path}: generator {key} is a {type(value).__name__}, not a dict")
        groups[key] = dict(value)
    config["mapping_kwargs"] = groups["mapping_kwargs"]
    synthesis = groups["synthesis_kwargs"]
    synthesis.update(kwargs)  # stylegan3's networks_stylegan2 takes synthesis kwargs flat
    if class_name == "training.networks_stylegan2.Generator":
        synthesis.setdefault("num_fp16_res", 4)  # that class's default
    config["synthesis_kwargs"] = synthesis
    return checked_config(config, path)


def _generator_class(G: PersistentObject, network_key: str, path: Path) -> str:
    """Which NVIDIA StyleGAN2 generator class ``G`` is (the pickle stores only the bare name).

    stylegan2-ada-pytorch's ``training.networks.Generator`` nests ``synthesis_kwargs``;
    stylegan3's ``training.networks_stylegan2.Generator`` takes them flat. StyleGAN3's own
    generator (also named ``Generator``) has no ``b4`` block and is refused.
    """
    name = G.class_name.rsplit(".", 1)[-1]
    modules = _dict_field(G.state, "_modules", f"{network_key}.", path)
    synthesis = modules.get("synthesis")
    if name != "Generator" or not isinstance(synthesis, PersistentObject) or "mapping" not in modules:
        raise CheckpointError(f"{path}: {network_key} is a {G.class_name[:80]}, not a StyleGAN2 generator")
    if "b4" not in _dict_field(synthesis.state, "_modules", f"{network_key}.synthesis.", path):
        raise CheckpointError(f"{path}: {network_key} is not a StyleGAN2 generator (no synthesis.b4 block; "
                              "StyleGAN3 generators are not supported)")
    kwargs = _dict_field(G.state, "_init_kwargs", f"{network_key}.", path)
    init_args = G.state.get("_init_args") or ()
    if not isinstance(init_args, (tuple, list)):
        raise CheckpointError(f"{path}: {network_key}._init_args is a {type(init_args).__name__}, not a tuple")
    if "synthesis_kwargs" in kwargs or len(init_args) > 6:
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
    _collect_tensors(G, raw, path)

    extra: dict[str, Any] = {"network": network_key, "nvidia_class": class_name}
    if network_key == "G":
        extra["note"] = "no G_ema in the pickle: used G (the non-averaged training generator)"
    state = checked_with_w_avg(config, raw, path, extra)
    if isinstance(data, dict) and isinstance(data.get("training_set_kwargs"), (dict, EasyDict)):
        try:  # informational only: left out when it is not plain data
            extra["training_set_kwargs"] = plain_kwargs(data["training_set_kwargs"], path)
        except CheckpointError as exc:
            extra["training_set_kwargs_ignored"] = str(exc).split(": ", 1)[-1]
    return CheckpointData("stylegan2", config, state, "nvidia-pkl", extra)


__all__ = ["check_state_dict", "checked_with_w_avg", "config_from_init_kwargs", 
           "read_nvidia_pkl"]
