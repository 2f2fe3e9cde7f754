"""Checkpoint readers never run code a file carries, and bad files give one-line errors."""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import types
from pathlib import Path

import pytest
import torch

from latentlab.checkpoints import read_checkpoint, sniff_format
from latentlab.checkpoints import unpickle as unpickle_mod
from latentlab.checkpoints.nvidia_pkl import read_nvidia_pkl
from latentlab.checkpoints.unpickle import load_pickle, pickle_kind
from latentlab.errors import CheckpointError, UnsafePickleError
from latentlab.models import build_generator


# ---------------------------------------------------------------------------- payloads
class _Payload:
    """Unpickling this runs ``touch <target>`` (if a loader lets it)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.fixture()
def fake_nvidia_modules(monkeypatch):
    """Importable stand-ins for NVIDIA's ``torch_utils.persistence`` and ``dnnlib.util``, so
    that plain ``pickle`` writes the same globals a real snapshot references."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # never called by latentlab: only its name is pickled
        raise AssertionError("NVIDIA's loader must not run")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"
    util.EasyDict = EasyDict
    for name, mod in [("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", persistence),
                      ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", util)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict)


class _Persistent:
    """Pickles like a ``torch_utils.persistence`` object: ``_reconstruct_persistent_obj(meta)``."""

    def __init__(self, fn, class_name: str, state: dict) -> None:
        self.fn, self.class_name, self.state = fn, class_name, state

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src="# source omitted", class_name=self.class_name,
                    state=self.state)
        return (self.fn, (meta,))


def _as_persistent(fake, module: torch.nn.Module, class_name: str, init_kwargs: dict | None = None) -> _Persistent:
    """Mirror an nn.Module tree the way NVIDIA snapshots store it (module __dict__ per object)."""
    state = {
        "training": False,
        "_parameters": {k: v.detach().clone() for k, v in module._parameters.items()},
        "_buffers": {k: v.detach().clone() for k, v in module._buffers.items()},
        "_non_persistent_buffers_set": set(),
        "_modules": {k: _as_persistent(fake, m, type(m).__name__) for k, m in module._modules.items()},
        "_init_args": (),
        "_init_kwargs": fake.EasyDict(init_kwargs or {}),
    }
    return _Persistent(fake.reconstruct, class_name, state)


def _tiny_config(**synthesis) -> dict:
    return dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                mapping_kwargs={"num_layers": 2},
                synthesis_kwargs={"channel_base": 128, "channel_max": 16, **synthesis})


def _write_snapshot(fake, path: Path, G, init_kwargs: dict, extra: dict | None = None) -> None:
    snapshot = {
        "training_set_kwargs": fake.EasyDict(path="~/datasets/x.zip", resolution=16),
        "G": _as_persistent(fake, G, "Generator", init_kwargs),
        "D": None,
        "G_ema": _as_persistent(fake, G, "Generator", init_kwargs),
        "augment_pipe": None,
        **(extra or {}),
    }
    with open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=4)


# ---------------------------------------------------------------------------- malicious files
def test_plain_malicious_pickle_is_refused(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Payload(target)}, protocol=4))
    with pytest.raises(UnsafePickleError) as exc:
        read_checkpoint(path)
    msg = str(exc.value)
    assert "system" in msg and "refused" in msg and "\n" not in msg
    # The restricted unpickler refuses it too when called directly (no sniffing first).
    with pytest.raises(UnsafePickleError):
        load_pickle(path)
    assert not target.exists()


def test_payload_inside_valid_looking_snapshot_is_refused(tmp_path, fake_nvidia_modules):
    torch.manual_seed(0)
    cfg = _tiny_config()
    G = build_generator("stylegan2", cfg).eval()
    init_kwargs = {k: cfg[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    init_kwargs["mapping_kwargs"] = fake_nvidia_modules.EasyDict(cfg["mapping_kwargs"])
    init_kwargs["synthesis_kwargs"] = fake_nvidia_modules.EasyDict(cfg["synthesis_kwargs"])

    # The clean snapshot is readable: the refusal below is due to the payload alone.
    clean = tmp_path / "network-snapshot-000000.pkl"
    _write_snapshot(fake_nvidia_modules, clean, G, init_kwargs)
    assert sniff_format(clean) == "nvidia-pkl"
    ck = read_checkpoint(clean)
    G2 = build_generator(ck.family, ck.config)
    G2.load_state_dict(ck.state_dict, strict=True)
    for k, v in G.state_dict().items():
        assert torch.equal(v, G2.state_dict()[k]), k

    target = tmp_path / "pwned"
    evil = tmp_path / "network-snapshot-000001.pkl"
    _write_snapshot(fake_nvidia_modules, evil, G, init_kwargs, extra={"progress": _Payload(target)})
    with pytest.raises(UnsafePickleError, match=r"refused to load global '(posix|nt|os)\.system'"):
        read_checkpoint(evil)
    with pytest.raises(UnsafePickleError, match="system"):
        read_nvidia_pkl(evil)  # the reader alone (no sniffing) refuses it as well
    assert not target.exists()


def test_payload_in_tensor_storage_blob_is_refused(tmp_path, fake_nvidia_modules):
    """Storage blobs are read with torch.load(weights_only=True): a pickle bomb inside one fails."""
    target = tmp_path / "pwned"

    class EvilStorage:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (pickle.dumps(_Payload(target), protocol=2),))

    path = tmp_path / "evil-blob.pkl"
    meta_obj = _Persistent(fake_nvidia_modules.reconstruct, "Generator", {"_parameters": {"w": EvilStorage()}})
    path.write_bytes(pickle.dumps({"G_ema": meta_obj}, protocol=4))
    with pytest.raises(UnsafePickleError, match=r"evil-blob.pkl: tensor storage blob: refused .*system") as exc:
        read_checkpoint(path)
    assert "\n" not in str(exc.value)
    assert not target.exists()


def test_malicious_torch_zip_is_refused(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}, "args": _Payload(target)}, path)
    assert sniff_format(path) == "rosinality-pt"
    with pytest.raises(UnsafePickleError, match="system") as exc:
        read_checkpoint(path)
    assert "\n" not in str(exc.value)
    assert not target.exists()


def test_rosinality_namespace_is_allowed_but_nothing_else(tmp_path):
    """argparse.Namespace (train.py's ``args``) is the one extra global the .pt reader allows."""
    path = tmp_path / "ns.pt"
    torch.save({"args": argparse.Namespace(size=32), "g_ema": {}}, path)
    with pytest.raises(CheckpointError, match="not a rosinality StyleGAN2 generator") as exc:
        read_checkpoint(path)
    assert not isinstance(exc.value, UnsafePickleError)


# ---------------------------------------------------------------------------- broken files
def _one_line_error(path: Path, cls=CheckpointError) -> str:
    with pytest.raises(cls) as exc:
        read_checkpoint(path)
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


def test_empty_missing_and_unknown_files(tmp_path):
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    assert "empty file" in _one_line_error(empty)
    assert "no such file" in _one_line_error(tmp_path / "missing.pkl")
    text = tmp_path / "notes.txt"
    text.write_text("hello, I am not a checkpoint\n")
    assert "unknown checkpoint format" in _one_line_error(text)


def test_random_bytes(tmp_path):
    gen = torch.Generator().manual_seed(0)
    noise = bytes(torch.randint(0, 256, [4096], generator=gen, dtype=torch.uint8).tolist())
    path = tmp_path / "random.bin"
    path.write_bytes(noise.replace(b"\x80", b"\x00").replace(b"PK", b"pk"))
    _one_line_error(path)
    path.write_bytes(b"\x80\x04" + noise)  # looks like a pickle, is not one
    _one_line_error(path)
    path.write_bytes(b"PK\x03\x04" + noise)  # looks like a zip, is not one
    _one_line_error(path)


def test_plain_pickle_of_other_data(tmp_path):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0], "name": "x"}, protocol=4))
    assert "neither" in _one_line_error(path)
    with pytest.raises(CheckpointError):
        pickle_kind(path)


def test_truncated_pickle(tmp_path, fake_nvidia_modules):
    G = build_generator("stylegan2", _tiny_config())
    full = tmp_path / "full.pkl"
    _write_snapshot(fake_nvidia_modules, full, G, {"z_dim": 16, "c_dim": 0, "w_dim": 16, "img_resolution": 16,
                                                   "img_channels": 3})
    data = full.read_bytes()
    for cut in (40, len(data) // 2, len(data) - 2):
        path = tmp_path / f"cut{cut}.pkl"
        path.write_bytes(data[:cut])
        assert "truncated or corrupt" in _one_line_error(path)
        with pytest.raises(CheckpointError):
            load_pickle(path)


def test_truncated_shared_fixtures(tmp_path, shared_dir):
    for name in ("nvidia_tiny.pkl", "nvidia_tiny_tf.pkl", "rosinality_tiny.pt"):
        data = (shared_dir / "fixtures" / "stylegan2" / name).read_bytes()
        path = tmp_path / name
        path.write_bytes(data[: len(data) // 3])
        _one_line_error(path)


def test_huge_length_field_and_size_limit(tmp_path, monkeypatch):
    path = tmp_path / "huge.pkl"
    path.write_bytes(b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b"abc")  # BINBYTES8 of 1 TiB
    _one_line_error(path)
    with pytest.raises(CheckpointError):
        load_pickle(path)
    monkeypatch.setattr(unpickle_mod, "MAX_PICKLE_BYTES", 8)
    assert "too large" in _one_line_error(path)


def test_object_dtype_numpy_is_refused(tmp_path):
    import numpy as np

    path = tmp_path / "objarr.pkl"
    path.write_bytes(pickle.dumps(np.array([1, "a"], dtype=object), protocol=4))
    with pytest.raises(UnsafePickleError, match="numeric"):
        load_pickle(path)


def test_numeric_numpy_values_load(tmp_path):
    import numpy as np

    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = tmp_path / "np.pkl"
    path.write_bytes(pickle.dumps({"a": arr, "f": np.float64(1.5), "t": arr.T}, protocol=4))
    out = load_pickle(path)
    assert np.array_equal(out["a"], arr) and np.array_equal(out["t"], arr.T)
    assert out["f"] == 1.5 and isinstance(out["f"], np.float64)
