r"""Test stand-in for the upstream drivers (``methods/upstream_drivers/*``): NOT a model.

Run as ``python upstream_standin.py WORKDIR`` in place of a driver, it checks that the files the
adapter wrote are what the upstream code expects, exits non-zero with a message when they are
not, and otherwise writes the conditioning image repeated ``num_frames`` times as the frames
(plumbing only: such frames are clearly not a result).

Checks (upstream facts, TencentARC/MotionCtrl@0c5cc12 branch svd, G-U-N/Motion-I2V@bc787e1):
* MotionCtrl (settings has ``pose_file``): ``main/inference/motionctrl_cmcm.py::get_RT`` reads
  the pose file as ``np.array(json.load(f))`` of shape [t, 12] and reshapes to [t, 3, 4];
  ours must be (num_frames, 12) finite numbers, relative to frame 0 (frame 0 = [I | 0]), with
  rotation blocks orthonormal; the image is 1024x576 RGB (the config's training size).
* Motion-I2V (settings has ``flow_file``): ``Drag.forward_sample`` hands stage 2 ``flow_pre`` as
  (F, 2, H, W) float pixels with frame 0 zero; ours must be a float32 .npy of shape
  (num_frames, 2, 320, 512), finite, frame 0 all zero; the image is 512x320 RGB; the prompt is
  a non-empty string.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def fail(message: str) -> None:
    print(f"upstream stand-in: invalid input: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as im:
        if im.format != "PNG" or im.mode != "RGB":
            fail(f"{path.name}: expected an RGB PNG, got {im.format} {im.mode}")
        if im.size != size:
            fail(f"{path.name}: expected {size[0]}x{size[1]}, got {im.size[0]}x{im.size[1]}")
        return np.asarray(im)


def check_motionctrl(workdir: Path, s: dict) -> np.ndarray:
    image = load_image(workdir / s["image"], (1024, 576))
    pose = np.array(json.loads((workdir / s["pose_file"]).read_text()))
    if pose.shape != (s["num_frames"], 12) or not np.issubdtype(pose.dtype, np.number):
        fail(f"pose file: expected ({s['num_frames']}, 12) numbers, got {pose.dtype} {pose.shape}")
    if not np.isfinite(pose).all():
        fail("pose file: non-finite numbers")
    rt = pose.reshape(-1, 3, 4)
    if not np.allclose(rt[0], np.eye(3, 4), atol=1e-9):
        fail(f"pose file: frame 0 must be [I|0] (relative to frame 0), got {rt[0].tolist()}")
    rot = rt[:, :, :3]
    if not np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-6):
        fail("pose file: rotation blocks are not orthonormal")
    if not np.allclose(np.linalg.det(rot), 1.0, atol=1e-6):
        fail("pose file: rotation blocks are not proper rotations")
    return image


def check_motion_i2v(workdir: Path, s: dict) -> np.ndarray:
    image = load_image(workdir / s["image"], (512, 320))
    flow = np.load(workdir / s["flow_file"])
    want = (s["num_frames"], 2, 320, 512)
    if flow.dtype != np.float32 or flow.shape != want:
        fail(f"flow: expected float32 {want}, got {flow.dtype} {flow.shape}")
    if not np.isfinite(flow).all():
        fail("flow: non-finite values")
    if np.any(flow[0] != 0):
        fail("flow: frame 0 must be all zero")
    if not isinstance(s.get("prompt"), str) or not s["prompt"].strip():
        fail("prompt: a non-empty text is required")
    return image


def main(workdir: Path) -> None:
    s = json.loads((workdir / "settings.json").read_text())
    if "pose_file" in s:
        image = check_motionctrl(workdir, s)
    elif "flow_file" in s:
        image = check_motion_i2v(workdir, s)
    else:
        fail("settings name neither a pose_file nor a flow_file")
    out = Path(s["frames_dir"])
    out.mkdir(parents=True, exist_ok=True)
    for j in range(s["num_frames"]):
        Image.fromarray(image).save(out / f"{j:06d}.png")
    print(f"upstream stand-in: wrote {s['num_frames']} copies of the input image")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
