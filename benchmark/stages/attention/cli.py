"""The attention-figure stage: a suite scene's request, the capture, ``maps.npz`` and the
figure (:func:`run_attention_figure`), and its command line (:func:`main`, also
``trajbench attention``)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from benchmark.cameras import CameraFileError, load_camera_path
from benchmark.config.suites import load_suite
from benchmark.sources.scenes import load_scene_view, make_scene_camera, prepare_synthetic_scene
from benchmark.stages.attention.capture import collect_attention_maps
from benchmark.stages.attention.figure import plot_attention_maps, steps_text, unavailable_card
from benchmark.stages.attention.files import save_maps
from benchmark.stages.request import build_request
from methods.base import GenerationRequest, MethodUnavailable

DESCRIPTION = "Fig. 2-style temporal vs trajectory attention maps of a trajattn preset."


@contextlib.contextmanager
def scene_request(
    suite: str,
    scene: str | None,
    camera: str,
    num_frames: int | None = None,
    scene_dir: str | Path | None = None,
    seed: int = 0,
) -> Iterator[GenerationRequest]:
    r"""The image-task request of a suite scene and camera path.

    Synthetic scenes are prepared in a temporary folder unless ``scene_dir`` (a prepared
    ``results/{suite}/scenes/{scene}`` folder) is given; real suites need ``scene_dir``.
    ``camera`` is a parametric path name (scaled by the scene's median depth) or a camera
    JSON file. ``num_frames`` defaults to the suite's first frame count.
    """
    loaded = load_suite(suite)
    frames = int(num_frames or loaded.frame_counts[0])
    with tempfile.TemporaryDirectory() as tmp:
        if scene_dir is None:
            if scene is None:
                raise ValueError("give --scene (a suite scene name) or --scene-dir")
            if not loaded.is_synthetic:
                raise ValueError(
                    f"suite {loaded.name!r} is not synthetic: prepare the scene with `trajbench "
                    f"prepare-scene --suite {suite} --scene {scene} --out "
                    f"results/{loaded.name}/scenes/{scene}` and give that folder as --scene-dir"
                )
            scene_dir = prepare_synthetic_scene(loaded, scene, Path(tmp) / "scene")
        view = load_scene_view(scene_dir)
        if str(camera).endswith(".json"):
            path = load_camera_path(camera)
            if path.num_frames != frames and num_frames is not None:
                raise ValueError(f"{camera} has {path.num_frames} frames, asked for {frames}")
        else:
            path = make_scene_camera(view, camera, frames)
        yield build_request(view, path, seed)


def run_attention_figure(
    preset: str,
    out_dir: str | Path,
    suite: str = "smoke",
    scene: str | None = None,
    camera: str = "orbit_left_15deg",
    num_frames: int | None = None,
    scene_dir: str | Path | None = None,
    seed: int = 0,
    blocks: Sequence[str | int] | None = None,
    steps: Sequence[int] | None = None,
    title: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    r"""Capture the maps of ``preset`` on a suite scene and write ``maps.npz``,
    ``attention.png`` and ``attention.pdf`` into ``out_dir`` (the stage function the CLI and
    the Snakefile call).

    Args:
        preset: method preset name or .yaml path (a ``trajattn`` preset).
        out_dir: output folder.
        suite, scene, camera, num_frames, scene_dir, seed: the request (see
            :func:`scene_request`).
        blocks, steps, options: see :func:`collect_attention_maps`; ``blocks`` also limits the
            figure (maps.npz keeps the same blocks).
        title: figure title (default names the preset, scene, camera and steps).

    Returns:
        ``{"png": ..., "pdf": ..., "npz": ...}``.

    Raises:
        methods.base.MethodUnavailable: the preset's model or weights are missing.
    """
    out = Path(out_dir)
    with scene_request(suite, scene, camera, num_frames, scene_dir, seed) as request:
        maps = collect_attention_maps(preset, request, blocks=blocks, steps=steps, options=options)
    maps.info = {
        "preset": preset,
        "suite": suite,
        "scene": scene if scene_dir is None else str(scene_dir),
        "camera": camera,
        "num_frames": int(request.num_frames),
        "seed": int(seed),
        "generation": maps.info,
    }
    npz = save_maps(maps, out / "maps.npz")
    if title is None:
        title = (
            f"{preset}: {maps.info['scene']} / {Path(camera).stem}, {request.num_frames} frames, "
            f"step(s) {steps_text(maps.steps)} of {maps.num_inference_steps}\n"
            "temporal vs trajectory attention (each map min-max normalised)"
        )
    png, pdf = plot_attention_maps(maps, out / "attention.png", title=title)
    return {"png": png, "pdf": pdf, "npz": npz}


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The attention figure's arguments (shared by this module's CLI and ``trajbench
    attention``)."""
    parser.add_argument("--preset", required=True, help="method preset (e.g. trajattn_tiny)")
    parser.add_argument("--suite", default="smoke", help="suite name or YAML path")
    parser.add_argument("--scene", default=None, help="scene name of the suite")
    parser.add_argument("--scene-dir", type=Path, default=None,
                        help="prepared scene folder (results/{suite}/scenes/{scene})")
    parser.add_argument("--camera", default="orbit_left_15deg",
                        help="camera path name or camera JSON file")
    parser.add_argument("--frames", type=int, default=None, help="frames (default: suite's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blocks", nargs="+", default=None,
                        help="block paths or indices in forward order (default: all)")
    parser.add_argument("--steps", nargs="+", type=int, default=None,
                        help="denoising steps to capture, 0 first, negative from the end "
                             "(default: all)")
    parser.add_argument("--set", dest="options", action="append", type=_parse_option,
                        default=[], metavar="KEY=VALUE", help="override a preset arg (YAML)")
    parser.add_argument("--title", default=None)
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--card-if-unavailable", action="store_true",
                        help="workflow use: when the model cannot run, write attention.png/pdf "
                        "as a card stating why (no maps) and exit 0")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; returns the exit status (2 when the method cannot run here)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        paths = run_attention_figure(
            args.preset, args.out, suite=args.suite, scene=args.scene, camera=args.camera,
            num_frames=args.frames, scene_dir=args.scene_dir, seed=args.seed,
            blocks=args.blocks, steps=args.steps, title=args.title, options=dict(args.options),
        )
    except (MethodUnavailable, CameraFileError) as exc:
        print(f"{args.preset} cannot run here: {exc}", file=sys.stderr)
        if args.card_if_unavailable:
            unavailable_card(args.out / "attention.png", f"{args.preset}: no attention maps",
                             str(exc))
            return 0
        return 2
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry; returns the exit status (2 when the method cannot run here)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.stages.attention_maps",
        description=DESCRIPTION,
    )
    return run(add_arguments(parser).parse_args(argv))
