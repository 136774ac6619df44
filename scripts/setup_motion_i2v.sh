#!/usr/bin/env bash
# Install Motion-I2V for trajbench's `motion_i2v` adapter (methods/motion_i2v.py) on a GPU
# machine: the upstream checkout at the pinned commit, its own conda environment and the
# stage-2 weights (stage 1 is bypassed: the harness supplies the camera-induced flow).
#
#   bash scripts/setup_motion_i2v.sh
#
# Installs to ${TRAJBENCH_UPSTREAM:-~/.cache/trajbench/upstream}/motion_i2v/{repo,env}, where the
# adapter looks by default. Upstream's instructions (README): `conda env create -f
# environment.yaml` (Python 3.10, torch 1.13.1 + CUDA 11.7, diffusers 0.11.1, xformers 0.0.16,
# cupy), weights from the hub repo wangfuyun/Motion-I2V, whose models/ folder scripts/app.py
# reads by relative paths (models/stage2/...).
set -euo pipefail

NAME=motion_i2v
REPO_URL=https://github.com/G-U-N/Motion-I2V.git
COMMIT=bc787e167610a2c6f4d569eca71fb6a26e5b8c56
ROOT="${TRAJBENCH_UPSTREAM:-$HOME/.cache/trajbench/upstream}/$NAME"
REPO="$ROOT/repo"
ENV_DIR="$ROOT/env"
PY="$ENV_DIR/bin/python"

mkdir -p "$ROOT"

echo "== 1/3 upstream code: $REPO_URL at $COMMIT"
if [ ! -d "$REPO/.git" ]; then
    git clone "$REPO_URL" "$REPO"
fi
git -C "$REPO" fetch origin
git -C "$REPO" checkout --detach "$COMMIT"

echo "== 2/3 environment: $ENV_DIR (conda env from upstream environment.yaml)"
if ! command -v conda >/dev/null 2>&1; then
    echo "error: needs conda: upstream's environment.yaml pins conda packages (CUDA 11.7" \
         "runtime, pytorch 1.13.1)" >&2
    exit 1
fi
if [ ! -x "$PY" ]; then
    conda env create -p "$ENV_DIR" -f "$REPO/environment.yaml"
fi
"$PY" -c "import xformers, diffusers; print('xformers', xformers.__version__, 'diffusers', diffusers.__version__)"

echo "== 3/3 stage-2 weights: wangfuyun/Motion-I2V models/stage2 -> $REPO/models/stage2"
if [ ! -f "$REPO/models/stage2/Motion_Module/motion_block.bin" ]; then
    "$ENV_DIR/bin/huggingface-cli" download wangfuyun/Motion-I2V --include "models/stage2/*" \
        --local-dir "$REPO"
fi

cat <<MSG

Motion-I2V (stage 2) is installed. The preset configs/methods/motion_i2v.yaml finds it by default.
If you moved it, set in the preset (or export TRAJBENCH_UPSTREAM=$(dirname "$ROOT")):
  repo_dir: $REPO
  python: $PY
Check with: trajbench check-method motion_i2v
MSG
