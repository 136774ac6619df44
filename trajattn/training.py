r"""What the SVD and Wan trainers share (:mod:`trajattn.train`, :mod:`trajattn.wan.train`).

The data (clips read from a folder, their flow trajectories cached per clip), the device and
autocast choice, the optimisation loop (:func:`run_training_loop`: seeded clip order,
accumulation, checkpoints) and the command line built from a config dataclass.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from trajattn.flow_tracks import DisFlow, RaftFlow, flow_trajectories

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


# -------------------------------------------------------------------------------------- data


def list_clips(folder: str | Path) -> list[Path]:
    """Video files and folders of frames under ``folder`` (sorted, so the order is stable)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"training data folder {root} does not exist")
    clips = [
        p
        for p in sorted(root.iterdir())
        if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        or (p.is_dir() and any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir()))
    ]
    if not clips:
        raise ValueError(f"no video files or frame folders in {root}")
    return clips


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to cover (width, height) and crop the centre."""
    h, w = frame.shape[:2]
    scale = max(width / w, height / h)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    x0, y0 = (size[0] - width) // 2, (size[1] - height) // 2
    return np.ascontiguousarray(frame[y0 : y0 + height, x0 : x0 + width])


def read_clip(path: Path, num_frames: int, stride: int, width: int, height: int) -> np.ndarray:
    """(num_frames, height, width, 3) uint8 RGB from a video file or a folder of frames."""
    frames: list[np.ndarray] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for file in files[: num_frames * stride : stride]:
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"cannot read frame {file}")
            frames.append(image[..., ::-1])
    else:
        capture = cv2.VideoCapture(str(path))
        index = 0
        while len(frames) < num_frames:
            ok, image = capture.read()
            if not ok:
                break
            if index % stride == 0:
                frames.append(image[..., ::-1])
            index += 1
        capture.release()
    if len(frames) < num_frames:
        raise ValueError(f"{path}: {len(frames)} frames, training needs {num_frames}")
    return np.stack([_fit(f, width, height) for f in frames])


def clip_trajectories(
    video: np.ndarray, cache: Path, stride: int, flow: str = "dis"
) -> tuple[np.ndarray, np.ndarray]:
    """Flow trajectories of a clip, cached as ``cache`` (.npz) after the first computation."""
    if cache.exists():
        data = np.load(cache)
        return data["tracks"], data["visible"]
    if flow not in ("dis", "raft"):
        raise ValueError(f"flow must be 'dis' or 'raft', got {flow!r}")
    estimator = RaftFlow() if flow == "raft" else DisFlow()
    tracks, visible = flow_trajectories(video, stride=stride, flow=estimator)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, tracks=tracks, visible=visible)
    return tracks, visible


# ------------------------------------------------------------------------------------ loop


def write_checkpoint(folder: Path, step: int, write_weights: Callable[[Path], None],
                     optimizer: Any, config: Any) -> Path:
    """``folder/step-{step:07d}/``: the trainable weights (``write_weights`` writes
    ``trainable.safetensors``), the optimizer state and the config; the folder appears only
    once complete (written under a temporary name, then renamed)."""
    target = folder / f"step-{step:07d}"
    tmp = folder / f".step-{step:07d}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    write_weights(tmp / "trainable.safetensors")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "config": asdict(config)}))
    tmp.replace(target)
    return target


def read_checkpoint(path: Path, read_weights: Callable[[Path], None], optimizer: Any) -> int:
    """Restore a :func:`write_checkpoint` folder (``read_weights`` loads its
    ``trainable.safetensors``) and the optimizer; returns the step it was taken at."""
    read_weights(path / "trainable.safetensors")
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    return int(json.loads((path / "state.json").read_text())["step"])


def latest_checkpoint(folder: Path) -> Path | None:
    done = sorted(p for p in folder.glob("step-*") if p.is_dir())
    return done[-1] if done else None


def training_device(config: Any) -> torch.device:
    """``config.device``, or CUDA when available for ``"auto"``."""
    if config.device != "auto":
        return torch.device(config.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_dtype(config: Any, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``config.mixed_precision`` (None: no autocast; CUDA only)."""
    if device.type != "cuda" or config.mixed_precision == "no":
        return None
    if config.mixed_precision == "fp16":
        return torch.float16
    return torch.bfloat16


def run_training_loop(
    config: Any,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    clips: list[Path],
    device: torch.device,
    active: Callable[[np.ndarray, np.ndarray], contextlib.AbstractContextManager],
    loss_fn: Callable[[np.ndarray, torch.Generator], torch.Tensor],
    save: Callable[[int], None],
) -> dict[str, Any]:
    r"""The optimisation loop shared by the SVD and Wan trainers, from ``step`` to
    ``config.steps``; returns ``{"step", "losses"}``.

    Per step, ``config.grad_accum`` clips in a seeded per-epoch order, each read and tracked
    (trajectories cached under ``config.out``); ``loss_fn(video, generator)`` runs and its
    backward is taken inside ``active(tracks, visible)`` (the model's trajectories context,
    so that a checkpointed forward recomputed in the backward sees them too) and under
    autocast when configured; ``save(step)`` every ``config.checkpoint_every`` steps and at
    the end. ``config`` is a ``TrainConfig`` or ``WanTrainConfig``.
    """
    from tqdm import tqdm

    out = Path(config.out)
    autocast = autocast_dtype(config, device)
    model.train()
    losses: list[float] = []
    bar = tqdm(total=config.steps, initial=step, desc="train", dynamic_ncols=True)
    while step < config.steps:
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(config.grad_accum):
            draw = step * config.grad_accum + micro
            epoch, position = divmod(draw, len(clips))
            order = np.random.default_rng([config.seed, epoch]).permutation(len(clips))
            clip = clips[order[position]]
            video = read_clip(clip, config.num_frames, config.frame_stride, config.width,
                              config.height)
            tracks, visible = clip_trajectories(
                video, out / "cache" / f"{clip.name}.{config.flow}.npz", config.track_stride,
                config.flow,
            )
            generator = torch.Generator(device=device).manual_seed(
                config.seed * 1_000_003 + draw
            )
            with active(tracks, visible):
                with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                    loss = loss_fn(video, generator)
                (loss / config.grad_accum).backward()
            total += float(loss.detach()) / config.grad_accum
        optimizer.step()
        step += 1
        losses.append(total)
        bar.set_postfix(loss=f"{total:.4f}")
        bar.update(1)
        if not math.isfinite(total):
            raise FloatingPointError(f"loss became {total} at step {step}")
        if step % config.checkpoint_every == 0 or step == config.steps:
            save(step)
    bar.close()
    return {"step": step, "losses": losses}


def run_training_cli(
    config_cls: type, train_fn: Callable[..., dict[str, Any]], description: str,
    argv: Sequence[str] | None = None,
) -> int:
    """Command line of a trainer: one flag per field of its config dataclass (``data`` and
    ``out`` required, booleans as switches) plus ``--no-resume``; shared by the SVD and Wan
    trainers so both take the same flags the same way."""
    parser = argparse.ArgumentParser(description=description)
    defaults = config_cls(data="", out="")
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true", default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value,
                                required=name in ("data", "out"))
    parser.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    args = vars(parser.parse_args(argv))
    no_resume = args.pop("no_resume")
    logging.basicConfig(level=logging.INFO)
    result = train_fn(config_cls(**args), resume=not no_resume)
    print(f"trained to step {result['step']}")
    return 0
