r"""MotionCtrl-SVD driver: runs INSIDE the MotionCtrl environment, working dir = the checkout of
TencentARC/MotionCtrl branch ``svd`` at 0c5cc12e15a138df6be86bc6350faa759e742492.

Usage: ``python motionctrl_svd.py WORKDIR``. Reads ``WORKDIR/settings.json`` (written by
``methods/motionctrl.py``), the image PNG and the pose file (a JSON list of F lists of 12
numbers, like ``examples/camera_poses/*.json``), and writes ``frames/000000.png, ...``.

Mirrors ``main/inference/motionctrl_cmcm.py::sample`` for one image and one pose file, using its
own ``load_model``, ``to_relative_RT2``, ``get_batch`` and
``get_unique_embedder_keys_from_conditioner``. Differences, on purpose: the pose file is used as
given (``get_RT``'s ``[3, 1, 4] * speed`` rescale is replaced by the harness's isotropic
translation scale, already applied) and one sample is drawn (``sample_num`` 1).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path


def load_cli_module(repo: Path):
    """``main/inference/motionctrl_cmcm.py`` is a script, not a package module: load it by
    path (importing it defines functions only)."""
    path = repo / "main" / "inference" / "motionctrl_cmcm.py"
    spec = importlib.util.spec_from_file_location("motionctrl_cmcm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(workdir: Path) -> None:
    settings = json.loads((workdir / "settings.json").read_text())
    repo = Path(settings["repo_dir"]).resolve()
    sys.path.insert(0, str(repo))  # for `sgm`

    # the upstream environment's packages (this driver runs there, not in trajbench's venv)
    import numpy as np
    import torch
    import torchvision
    from einops import rearrange, repeat
    from PIL import Image
    from torchvision.transforms import ToTensor

    cli = load_cli_module(repo)
    device = "cuda"
    num_frames = int(settings["num_frames"])
    width, height = int(settings["width"]), int(settings["height"])

    # sample(): load_model(config, ckpt, device, num_frames, num_steps), then the seed.
    model, _ = cli.load_model(
        settings["config"], settings["ckpt"], device, num_frames, int(settings["num_steps"])
    )
    torch.manual_seed(int(settings["seed"]))

    # get_RT(): np.array(json.load(f)) -> [t, 12] -> to_relative_RT2 (frame 0 is already [I|0]).
    pose = np.array(json.loads((workdir / settings["pose_file"]).read_text()), dtype=np.float64)
    if pose.shape != (num_frames, 12):
        raise SystemExit(f"pose file has shape {pose.shape}, expected ({num_frames}, 12)")
    rt = torch.tensor(cli.to_relative_RT2(pose.reshape(-1, 3, 4))).float()
    rt = rt.unsqueeze(0).repeat(2, 1, 1).to(device)  # conditional + unconditional batch

    with Image.open(workdir / settings["image"]) as im:
        image = im.convert("RGB")
    if image.size != (width, height):
        raise SystemExit(f"image is {image.size}, expected {(width, height)}")
    image = (ToTensor()(image) * 2.0 - 1.0).unsqueeze(0).to(device)
    shape = (num_frames, 4, height // 8, width // 8)  # C = 4 latent channels, F = 8

    cond_aug = float(settings["cond_aug"])
    value_dict = {
        "motion_bucket_id": int(settings["motion_bucket_id"]),
        "fps_id": int(settings["fps_id"]),
        "cond_aug": cond_aug,
        "cond_frames_without_noise": image,
        "cond_frames": image + cond_aug * torch.randn_like(image),
    }
    with torch.no_grad(), torch.autocast(device):
        batch, batch_uc = cli.get_batch(
            cli.get_unique_embedder_keys_from_conditioner(model.conditioner),
            value_dict, [1, num_frames], T=num_frames, device=device,
        )
        c, uc = model.conditioner.get_unconditional_conditioning(
            batch, batch_uc=batch_uc,
            force_uc_zero_embeddings=["cond_frames", "cond_frames_without_noise"],
        )
        for k in ["crossattn", "concat"]:
            uc[k] = rearrange(repeat(uc[k], "b ... -> b t ...", t=num_frames),
                              "b t ... -> (b t) ...", t=num_frames)
            c[k] = rearrange(repeat(c[k], "b ... -> b t ...", t=num_frames),
                             "b t ... -> (b t) ...", t=num_frames)
        extra = {
            "image_only_indicator": torch.zeros(2, num_frames).to(device),
            "num_video_frames": batch["num_video_frames"],
            "RT": rt,
        }

        def denoiser(x, sigma, cond):
            return model.denoiser(model.model, x, sigma, cond, **extra)

        randn = torch.randn(shape, device=device)
        samples_z = model.sampler(denoiser, randn, cond=c, uc=uc)
        model.en_and_decode_n_samples_a_time = int(settings["decoding_t"])
        samples_x = model.decode_first_stage(samples_z)
        samples = torch.clamp((samples_x + 1.0) / 2.0, min=0.0, max=1.0).cpu()  # [t, c, h, w]

    frames_dir = Path(settings["frames_dir"])
    frames_dir.mkdir(parents=True, exist_ok=True)
    for j in range(num_frames):  # as sample(save_images=True)
        torchvision.utils.save_image(samples[j], str(frames_dir / f"{j:06d}.png"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: motionctrl_svd.py WORKDIR")
    main(Path(sys.argv[1]))
