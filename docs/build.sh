#!/usr/bin/env bash
# Build the API reference from the docstrings into docs/api/ (not committed).
# Needs the docs extra: .venv/bin/pip install -e '.[docs]'
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pdoc latentlab -o docs/api "$@"
echo "wrote docs/api/index.html"
