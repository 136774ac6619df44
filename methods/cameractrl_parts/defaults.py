"""CameraCtrl-SVD constants: released checkpoints, upstream inference settings and pose-encoder
sizes. Plain data (no torch), read by the adapter at import time."""

from __future__ import annotations

from typing import Any

CKPT_REPO = "hehao13/CameraCtrl_SVD_ckpts"
CKPT_SVD = "CameraCtrl_svd.ckpt"
CKPT_SVD_XT = "CameraCtrl_svdxt.ckpt"

#: Upstream inference settings (``inference.py`` arguments and the pipeline's defaults).
CAMERACTRL_DEFAULTS: dict[str, Any] = {
    "width": 576,
    "height": 320,
    "num_inference_steps": 25,
    "min_guidance_scale": 1.0,
    "max_guidance_scale": 3.0,
    "fps": 7,
    "motion_bucket_id": 127,
    "noise_aug_strength": 0.02,
}

#: ``pose_encoder_kwargs`` of upstream ``configs/train_cameractrl/svdxt_320_576_cameractrl.yaml``
#: (``svd_320_576_cameractrl.yaml`` differs only in ``max_frames`` = 14), in our names:
#: downscale_factor, channels, nums_rb, cin, ksize, temporal_attention_nhead,
#: temporal_position_encoding_max_len. (sk: true, use_conv: false, compression_factor: 1 and
#: attention_block_types ["Temporal_Self"] are the only variants built here.)
SVD_XT_POSE_ENCODER: dict[str, Any] = {
    "downscale_factor": 8,
    "channels": (320, 640, 1280, 1280),
    "nums_rb": 2,
    "cin": 384,
    "ksize": 1,
    "num_heads": 8,
    "max_frames": 25,
}
SVD_POSE_ENCODER: dict[str, Any] = {**SVD_XT_POSE_ENCODER, "max_frames": 14}

#: Upstream inference settings under their former name.
DEFAULTS: dict[str, Any] = CAMERACTRL_DEFAULTS
