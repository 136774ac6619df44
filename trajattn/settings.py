"""Paper / official inference settings of trajectory attention (SVD-XT), in one place.

Kept free of heavy imports so method adapters can read them without loading diffusers.
"""

from __future__ import annotations

from typing import Any

#: Paper / official inference settings (1024x576, 25 frames, 25 steps, guidance 1 -> 3).
PAPER_DEFAULTS: dict[str, Any] = {
    "width": 1024,
    "height": 576,
    "num_frames": 25,
    "num_inference_steps": 25,
    "fps": 7,
    "motion_bucket_id": 127,
    "noise_aug_strength": 0.02,
    "min_guidance_scale": 1.0,
    "max_guidance_scale": 3.0,
}
