#!/usr/bin/env bash
# A two-node Ray cluster on this machine, and a tiny-generator `latentlab project --engine ray` on it
# that shows (from manifest.jsonl: node id and pid per photo) work landing on both nodes.
#
#   benchmarks/ray_two_nodes.sh            # ~1-2 minutes on an idle 2-core machine
#
# Head: `ray start --head --num-cpus=1`; second node: `ray start --address=... --num-cpus=1
# --resources='{"second_node": 1}'`. Both run with --block in the background and are stopped by
# their PIDs at the end (no `ray stop`, which would stop every Ray on the machine); everything lives
# in a temp folder that is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=${VPY:-.venv/bin/python}
RAY=$(dirname "$VPY")/ray
TMP=$(mktemp -d /tmp/latentlab-ray2.XXXXXX)
PORT=$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export RAY_AUTH_MODE=disabled LATENTLAB_CACHE=${LATENTLAB_CACHE:-$HOME/.cache/latentlab}
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

echo "==> head node (1 CPU) on 127.0.0.1:$PORT, temp dir $TMP/ray"
"$RAY" start --head --node-ip-address=127.0.0.1 --port="$PORT" --num-cpus=1 --include-dashboard=false \
  --temp-dir="$TMP/ray" --block >"$TMP/head.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 60); do grep -q "Ray runtime started" "$TMP/head.log" && break; sleep 1; done
echo "==> second node (1 CPU, resource second_node)"
"$RAY" start --address="127.0.0.1:$PORT" --node-ip-address=127.0.0.1 --num-cpus=1 \
  --resources='{"second_node": 1}' --block >"$TMP/worker.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 60); do grep -q "Ray runtime started" "$TMP/worker.log" && break; sleep 1; done

echo "==> a tiny generator and 4 photos"
"$VPY" - "$TMP" <<'EOF'
import sys
from pathlib import Path

import torch
from PIL import Image

from latentlab.checkpoints.native import save_native
from latentlab.models import build_generator

tmp = Path(sys.argv[1])
cfg = dict(z_dim=16, w_dim=16, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
           synthesis_kwargs=dict(channel_base=256, channel_max=16))
torch.manual_seed(0)
G = build_generator("stylegan2", cfg)
save_native("stylegan2", G.config, G.state_dict(), tmp / "tiny32.safetensors")
(tmp / "photos").mkdir()
shared = Path("../shared/photos/ffhq")
for i in range(4):
    Image.open(shared / f"{i:05d}.png").resize((64, 64)).save(tmp / "photos" / f"p{i}.png")
EOF

echo "==> latentlab project --engine ray --ray-address 127.0.0.1:$PORT --ray-workers 2 --threads-per-worker 1"
"$(dirname "$VPY")/latentlab" project "$TMP/photos" --network "$TMP/tiny32.safetensors" --outdir "$TMP/out" \
  --no-align --num-steps 2 --device cpu --engine ray --ray-address "127.0.0.1:$PORT" --ray-workers 2 \
  --threads-per-worker 1 2>"$TMP/driver.log" || { tail -20 "$TMP/driver.log"; exit 1; }

echo "==> where each photo ran (manifest.jsonl), and the cluster's nodes"
"$VPY" - "$TMP" "$PORT" <<'EOF'
import json
import sys
from pathlib import Path

import ray

tmp, port = Path(sys.argv[1]), sys.argv[2]
rows = [json.loads(l) for l in (tmp / "out" / "manifest.jsonl").read_text().splitlines()]
ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
nodes = {n["NodeID"]: ("head" if n["Resources"].get("second_node") is None else "second") for n in ray.nodes()
         if n["Alive"]}
ray.shutdown()
for r in rows:
    print(f"{r['name']:4} {r['status']:6} node {r['node_id'][:12]} ({nodes.get(r['node_id'], '?')}) "
          f"host {r['host']} pid {r['pid']} {r['seconds']:.1f}s")
used = {nodes.get(r["node_id"]) for r in rows if r["status"] == "done"}
print(f"photos done on: {sorted(used)} ({len(used)} of {len(nodes)} nodes)")
sys.exit(0 if used == {"head", "second"} else 1)
EOF
