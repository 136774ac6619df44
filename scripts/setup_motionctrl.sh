#!/usr/bin/env bash
# Install MotionCtrl-SVD for trajbench's `motionctrl` adapter (methods/motionctrl.py) on a GPU
# machine: the upstream checkout at the pinned commit, its own Python environment and weights.
#
#   bash scripts/setup_motionctrl.sh
#
# Installs to ${TRAJBENCH_UPSTREAM:-~/.cache/trajbench/upstream}/motionctrl/{repo,env}, where the
# adapter looks by default. Upstream's instructions (README of branch svd): conda, Python
# 3.10.6, `pip install -r requirements.txt` (torch 1.13.1, xformers 0.0.16), weights
# motionctrl_svd.ckpt from the hub repo TencentARC/MotionCtrl into ./checkpoints.
# Without conda, set PYTHON310=/path/to/python3.10 to build a venv instead.
#
# Pins: upstream's requirements.txt fixes torch==1.13.1 and xformers==0.0.16 but leaves
# transformers, open_clip_torch, kornia, timm and triton open, so a fresh install resolves
# releases that need torch >= 2 (and a triton that torch 1.13 cannot use). They are installed
# here under a pip constraints file (CONSTRAINTS below) with the versions Stability AI's
# generative-models pins for the same stack, torch 1.13.1 + xformers 0.0.16
# (requirements/pt13.txt of Stability-AI/generative-models, the `sgm` code MotionCtrl-SVD is
# built on): transformers 4.19.1 (May 2022), open_clip_torch 2.20.0 (its lower bound, May 2023),
# kornia 0.6.9 (Dec 2022), timm 0.9.2 (its lower bound, May 2023), triton 2.0.0.post1 (the
# triton of torch 2.0, what pt13.txt names; torch 1.13 does not import it). All released
# before torch 2.1, none requiring torch >= 2. huggingface_hub stays < 1.0, the range
# transformers 4.19 declares.
set -euo pipefail

NAME=motionctrl
REPO_URL=https://github.com/TencentARC/MotionCtrl.git
BRANCH=svd
COMMIT=0c5cc12e15a138df6be86bc6350faa759e742492
ROOT="${TRAJBENCH_UPSTREAM:-$HOME/.cache/trajbench/upstream}/$NAME"
REPO="$ROOT/repo"
ENV_DIR="$ROOT/env"
PY="$ENV_DIR/bin/python"

mkdir -p "$ROOT"

echo "== 1/4 upstream code: $REPO_URL ($BRANCH) at $COMMIT"
if [ ! -d "$REPO/.git" ]; then
    git clone --branch "$BRANCH" "$REPO_URL" "$REPO"
fi
git -C "$REPO" fetch origin "$BRANCH"
git -C "$REPO" checkout --detach "$COMMIT"

echo "== 2/4 environment: $ENV_DIR"
if [ ! -x "$PY" ]; then
    if command -v conda >/dev/null 2>&1; then
        conda create -y -p "$ENV_DIR" python=3.10.6
    elif [ -n "${PYTHON310:-}" ]; then
        "$PYTHON310" -m venv "$ENV_DIR"
    else
        echo "error: needs conda (upstream uses a conda env with Python 3.10.6), or set" \
             "PYTHON310 to a Python 3.10 interpreter" >&2
        exit 1
    fi
fi
"$PY" -m pip install --upgrade pip
CONSTRAINTS="$ROOT/constraints.txt"
cat > "$CONSTRAINTS" <<'PINS'
torch==1.13.1
xformers==0.0.16
transformers==4.19.1
open_clip_torch==2.20.0
kornia==0.6.9
timm==0.9.2
triton==2.0.0.post1
huggingface_hub<1.0
PINS
"$PY" -m pip install -r "$REPO/requirements.txt" -c "$CONSTRAINTS"
"$PY" -m pip install "huggingface_hub[cli]" -c "$CONSTRAINTS"

echo "== 3/4 weights: TencentARC/MotionCtrl motionctrl_svd.ckpt -> $REPO/checkpoints"
mkdir -p "$REPO/checkpoints"
if [ ! -f "$REPO/checkpoints/motionctrl_svd.ckpt" ]; then
    "$ENV_DIR/bin/huggingface-cli" download TencentARC/MotionCtrl motionctrl_svd.ckpt \
        --local-dir "$REPO/checkpoints"
fi

echo "== 4/4 OpenCLIP ViT-H-14 (laion2b_s32b_b79k), loaded by the image embedder at start-up"
"$PY" -c "import open_clip; open_clip.create_model_and_transforms('ViT-H-14', pretrained='laion2b_s32b_b79k')"

cat <<MSG

MotionCtrl-SVD is installed. The preset configs/methods/motionctrl.yaml finds it by default.
If you moved it, set in the preset (or export TRAJBENCH_UPSTREAM=$(dirname "$ROOT")):
  repo_dir: $REPO
  python: $PY
Check with: trajbench check-method motionctrl
MSG
