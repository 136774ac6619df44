r"""Motion-I2V stage-2 driver: runs INSIDE the Motion-I2V environment, working dir = the checkout
of G-U-N/Motion-I2V at bc787e167610a2c6f4d569eca71fb6a26e5b8c56 with the weights under
``models/`` (as ``scripts/app.py`` expects them).

Usage: ``python motion_i2v.py WORKDIR``. Reads ``WORKDIR/settings.json`` (written by
``methods/motion_i2v.py``), the 512x320 image PNG and ``flow.npy``: float32 (F, 2, H, W),
pixels, channel 0 = x, 1 = y, frame 0 zero (the layout of ``flow_pre`` in ``Drag.forward_sample``)
and writes ``frames/000000.png, ...``.

Mirrors ``scripts/app.py``: the stage-2 half of ``Drag.__init__`` (AnimationPipeline with the
forward-warp UNet, motion module, Realistic Vision VAE and UNet, DDIM from the inference
config, xformers required) and the ``self.animate_pipeline(...)`` call of
``Drag.forward_sample`` with an empty brush mask. Stage 1 is not built: the flow comes from the
harness (camera-induced flow). The app imports gradio and builds the UI at import, so it is
not imported; its negative prompt is read from its source (``negative_prompt`` null).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

INFERENCE_CONFIG = "configs/configs_flowgen/inference/inference.yaml"  # what the app loads
STAGE2 = "models/stage2"


def app_negative_prompt(repo: Path) -> str:
    """The negative prompt ``Drag.run`` passes to ``self.forward_sample`` (its 6th positional
    argument) in ``scripts/app.py``, read with ``ast`` so that the app is not executed."""
    tree = ast.parse((repo / "scripts" / "app.py").read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "forward_sample" and len(node.args) >= 6
                and isinstance(node.args[5], ast.Constant)
                and isinstance(node.args[5].value, str)):
            return node.args[5].value
    raise SystemExit("could not find the negative prompt of Drag.run in scripts/app.py")


def build_stage2(device: str):
    """Stage-2 pipeline exactly as the second half of ``Drag.__init__`` builds it."""
    # upstream code and its environment's packages: importable only after sys.path is set
    import torch
    from animation.models.forward_unet import UNet3DConditionModel
    from animation.pipelines.pipeline_animation import AnimationPipeline
    from animation.utils.convert_from_ckpt import convert_ldm_vae_checkpoint
    from diffusers import AutoencoderKL, DDIMScheduler
    from diffusers.utils.import_utils import is_xformers_available
    from omegaconf import OmegaConf
    from safetensors import safe_open
    from transformers import CLIPTextModel, CLIPTokenizer

    config = OmegaConf.load(INFERENCE_CONFIG)
    sd_path = f"{STAGE2}/StableDiffusion"
    tokenizer = CLIPTokenizer.from_pretrained(sd_path, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(sd_path, subfolder="text_encoder")
    vae = AutoencoderKL.from_pretrained(sd_path, subfolder="vae")
    unet = UNet3DConditionModel.from_pretrained_2d(
        sd_path, subfolder="unet",
        unet_additional_kwargs=OmegaConf.to_container(config.unet_additional_kwargs),
    )
    unet.load_state_dict(
        torch.load(f"{STAGE2}/Motion_Module/motion_block.bin", map_location="cpu"), strict=False
    )
    dreambooth = {}
    lora_file = f"{STAGE2}/DreamBooth_LoRA/realisticVisionV51_v20Novae.safetensors"
    with safe_open(lora_file, framework="pt", device="cpu") as f:
        for key in f.keys():
            dreambooth[key] = f.get_tensor(key)
    vae.load_state_dict(convert_ldm_vae_checkpoint(dreambooth, vae.config))
    unet.load_state_dict(
        torch.load(f"{STAGE2}/DreamBooth_LoRA/realistic_unet.ckpt"), strict=False
    )
    if not is_xformers_available():  # the app asserts it too
        raise SystemExit("Motion-I2V needs xformers (environment.yaml: xformers==0.0.16)")
    unet.enable_xformers_memory_efficient_attention()
    pipeline = AnimationPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=DDIMScheduler(**OmegaConf.to_container(config.noise_scheduler_kwargs)),
    )
    return pipeline.to(device)


def main(workdir: Path) -> None:
    settings = json.loads((workdir / "settings.json").read_text())
    repo = Path(settings["repo_dir"]).resolve()
    sys.path.insert(0, str(repo))  # for `animation`

    # the upstream environment's packages (this driver runs there, not in trajbench's venv)
    import numpy as np
    import torch
    from PIL import Image
    from torchvision import transforms

    device = "cuda"
    num_frames = int(settings["num_frames"])
    width, height = int(settings["width"]), int(settings["height"])
    flow = np.load(workdir / settings["flow_file"])
    if flow.shape != (num_frames, 2, height, width) or flow.dtype != np.float32:
        raise SystemExit(f"flow is {flow.dtype} {flow.shape}, expected float32 "
                         f"{(num_frames, 2, height, width)}")
    with Image.open(workdir / settings["image"]) as im:
        image = np.array(im.convert("RGB"))  # the app's image2arr
    if image.shape[:2] != (height, width):
        raise SystemExit(f"image is {image.shape[1]}x{image.shape[0]}, expected {width}x{height}")
    negative = settings.get("negative_prompt")
    if negative is None:
        negative = app_negative_prompt(repo)

    pipeline = build_stage2(device)
    seed = int(settings["seed"])
    torch.manual_seed(seed)  # the VAE posterior sample of the first frame uses the global RNG
    generator = torch.Generator(device=device).manual_seed(seed)

    first_frame = transforms.ToTensor()(image).to(device)  # (3, H, W) in [0, 1]
    brush_mask = torch.zeros(1, 1, 1, height, width, device=device)  # no brush: all movable
    with torch.no_grad():
        videos = pipeline(
            settings["prompt"],
            first_frame=first_frame * 2 - 1,
            flow_pre=torch.from_numpy(flow).to(device),
            brush_mask=brush_mask,
            negative_prompt=negative,
            num_inference_steps=int(settings["num_steps"]),
            guidance_scale=float(settings["guidance_scale"]),
            width=width,
            height=height,
            video_length=num_frames,
            generator=generator,
        ).videos  # (1, 3, F, H, W) in [0, 1]

    frames_dir = Path(settings["frames_dir"])
    frames_dir.mkdir(parents=True, exist_ok=True)
    frames = (videos[0].permute(1, 2, 3, 0) * 255).numpy().astype(np.uint8)  # as save_videos_grid
    for j, frame in enumerate(frames):
        Image.fromarray(frame).save(frames_dir / f"{j:06d}.png")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: motion_i2v.py WORKDIR")
    main(Path(sys.argv[1]))
