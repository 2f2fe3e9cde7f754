"""Pack the cached weights as float16 (to fit the device tool's 64 MiB) / restore them to float32."""
import sys, torch
from pathlib import Path
from safetensors.torch import load_file, save_file
mode, src, dst = sys.argv[1:4]
if mode == "pack":
    if src.endswith(".pth"):
        sd = torch.load(src, map_location="cpu", weights_only=True)
        meta = None
    else:
        sd = load_file(src)
        from safetensors import safe_open
        with safe_open(src, "pt") as f:
            meta = f.metadata()
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}, dst, metadata=meta)
else:
    from safetensors import safe_open
    with safe_open(src, "pt") as f:
        meta = f.metadata()
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(src).items()}
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    if dst.endswith(".pth"):
        torch.save(sd, dst)
    else:
        save_file(sd, dst, metadata=meta)
