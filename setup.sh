#!/usr/bin/env bash
# Set up latentlab from a fresh clone and run the main job on the embedded default model.
#   ./setup.sh            # venv + dependencies + model weights, then the main job
#   ./setup.sh --no-run   # set up only
# Re-running is cheap: every step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
RUN_MAIN=1
[[ "${1:-}" == "--no-run" ]] && RUN_MAIN=0

if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating virtual environment .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python

echo "==> installing latentlab and its dependencies (torch==2.13.0; no torchvision; Ray for --engine ray)"
"$VPY" -m pip install --quiet --upgrade pip
"$VPY" -m pip install --quiet -e ".[test,ray]"

echo "==> fetching and converting model weights into the cache (once)"
"$VPY" -m latentlab.cli setup-weights

if [[ $RUN_MAIN == 1 ]]; then
  echo "==> main job: latentlab demo"
  .venv/bin/latentlab demo --outdir out/demo --force
fi
