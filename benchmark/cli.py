"""``trajbench`` command line: one subcommand per stage, each a thin shell over a function
that Python code (and the Snakefile's rules) can call the same way.

Most commands import their stage inside their function (each such import says what it loads):
the stages load pycolmap, matplotlib, pandas or torch, and ``trajbench methods`` should not wait
for all of them. ``train`` and
``attention`` hand their arguments on to the trainer's and the attention figure's own command
lines (``trajbench train --help``, ``trajbench attention --help``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.cameras import CameraFileError, save_camera_path, save_unavailable_camera
from benchmark.config.suites import load_suite
from benchmark.io import atomic_write_text
from benchmark.sfm.records import PoseRecoveryConfig  # options only: no COLMAP
from benchmark.sources.scenes import load_scene_view, make_scene_camera, prepare_synthetic_scene
from methods import REGISTRY, UnknownMethodError, get_method_class, preset_file


def _cmd_methods(args: argparse.Namespace) -> int:
    if args.name:
        preset = preset_file(args.name)
        adapter = args.name if preset is None else str(preset["adapter"])
        cls = get_method_class(adapter)
        if preset is not None:
            print(f"{args.name}: preset of adapter {adapter}")
            for key, value in (preset.get("args") or {}).items():
                print(f"  {key} = {value!r}")
        print(f"{adapter}: {REGISTRY.get(adapter, adapter)}")
        print((sys.modules[cls.__module__].__doc__ or "").strip())
        for key, value in cls.default_conf.items():
            print(f"  {key} = {value!r}")
        return 0
    for name in sorted(REGISTRY):
        print(f"{name:16s} {REGISTRY[name]}")
    return 0


def _cmd_check_method(args: argparse.Namespace) -> int:
    from benchmark.stages.conformance import check_method  # lazy: runs adapters

    checks = check_method(args.name, args.suite, num_frames=args.num_frames)
    for check in checks:
        print(f"[{'ok' if check.passed else 'FAIL'}] {check.name}: {check.detail}")
    return 0 if all(c.passed for c in checks) else 1


def _cmd_prepare_scene(args: argparse.Namespace) -> int:

    suite = load_suite(args.suite)
    if not suite.is_synthetic:
        from benchmark.sources.real_images import prepare_image_scene  # lazy: depth model

        prepare_image_scene(suite, args.scene, args.out)
    else:
        prepare_synthetic_scene(suite, args.scene, args.out)
    return 0


def _cmd_fetch_image(args: argparse.Namespace) -> int:
    from benchmark.sources.real_images import fetch_image  # lazy: depth model

    fetch_image(args.url, args.sha256, args.out)
    return 0


def _cmd_make_camera(args: argparse.Namespace) -> int:

    scene = load_scene_view(args.scene_dir)
    if args.video_dir is not None:
        from benchmark.sources.videos import compose_camera, load_video  # lazy: trajattn

        try:
            video = load_video(args.video_dir)
        except CameraFileError as exc:  # the clip's cameras are unknown: pass the reason on
            save_unavailable_camera(f"input video {args.video_dir}: {exc}", args.out)
            return 0
        if video.camera.num_frames != args.frames:
            raise ValueError(f"the video has {video.camera.num_frames} frames, not {args.frames}")
        save_camera_path(compose_camera(scene, args.camera, video), args.out)
    else:
        save_camera_path(make_scene_camera(scene, args.camera, args.frames), args.out)
    return 0


def _cmd_prepare_video(args: argparse.Namespace) -> int:

    suite = load_suite(args.suite)
    if suite.is_synthetic:
        from benchmark.sources.videos import prepare_synthetic_video  # lazy: renderer (torch)

        scene = load_scene_view(args.scene_dir)
        prepare_synthetic_video(suite, scene, args.scene, args.frames, args.out)
    else:
        from benchmark.sources.real_videos import prepare_real_video  # lazy: depth model, video I/O

        prepare_real_video(suite, args.scene_dir, args.scene, args.frames, args.out)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from benchmark.stages.generate import run_generation  # lazy: adapters and their models

    meta = run_generation(
        args.method, args.scene_dir, args.camera_file, args.seed, args.out, args.video_dir,
        args.edit_dir,
    )
    print(f"{args.method}: {meta['status']} {meta.get('reason', '')}".rstrip())
    return 0


def _cmd_poses(args: argparse.Namespace) -> int:
    from benchmark.sfm.poses import run_poses  # lazy: pycolmap

    conf = PoseRecoveryConfig(
        matcher=args.matcher, mapper=args.mapper, num_threads=args.threads, seed=args.seed
    )
    result = run_poses(args.run_dir, conf)
    print(f"poses: {result.status} {result.num_registered}/{result.num_frames} {result.reason}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from benchmark.stages.score import score_run  # lazy: evo, trackers

    out = score_run(args.run_dir, args.camera_file, args.reference_dir,
                    video_dir=args.video_dir, edit_dir=args.edit_dir)
    print(f"score: {out['status']} ATE={out.get('ate')} {out.get('reason') or ''}".rstrip())
    return 0


def _cmd_render_reference(args: argparse.Namespace) -> int:
    from benchmark.stages.reference import render_reference  # lazy: the renderer (torch)

    render_reference(args.scene_dir, args.camera_file, args.out, args.edit_dir)
    return 0


def _cmd_prepare_edit(args: argparse.Namespace) -> int:
    from benchmark.sources.editing import prepare_edit  # lazy: the synthetic renderer

    suite = load_suite(args.suite)
    if not suite.is_editing:
        raise ValueError(f"suite {suite.name!r} is not an editing suite (kind {suite.kind})")
    prepare_edit(suite, args.scene, args.scene_dir, args.out)
    return 0


def _cmd_fid(args: argparse.Namespace) -> int:
    import pandas as pd  # lazy: heavy, one command uses it

    from benchmark.stages.fid import suite_fid  # lazy: the Inception network (torch)

    rows = suite_fid(args.results, args.methods, reference=args.reference)
    columns = ["method", "num_frames", "fid", "kid", "num_gen", "num_ref", "num_runs",
               "runs_skipped", "reference", "reason", "note", "extractor"]
    atomic_write_text(args.out, pd.DataFrame(rows, columns=columns).to_csv(index=False))
    for row in rows:
        print(f"{row['method']} f{row['num_frames']}: FID={row['fid']} {row['reason'] or ''}")
    return 0


def _cmd_fetch_weights(args: argparse.Namespace) -> int:
    """Download the named weights into their caches (or say they are there)."""
    # lazy: the weights stage loads the FID stage and evo (0.5 s), which no other command needs
    from benchmark.stages.weights import fetch_weights

    for line in fetch_weights(args.names):
        print(line)
    return 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from benchmark.stages.previews import run_preview  # lazy: video encoding

    print(run_preview(args.run_dir, args.reference_dir, args.scene_dir, args.out, args.fps))
    return 0


def _cmd_aggregate(args: argparse.Namespace) -> int:
    from benchmark.reporting.report import aggregate_suite  # lazy: pandas, matplotlib

    aggregate_suite(
        args.results, args.out, args.title or Path(args.results).name, args.metrics, args.table,
        workers=args.threads,
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    if args.backbone == "wan":
        from trajattn.wan.train import main as train_main  # lazy: torch, diffusers
    else:
        from trajattn.train import main as train_main  # lazy: torch, diffusers
    return int(train_main(args.rest) or 0)


def _cmd_attention(args: argparse.Namespace) -> int:
    # lazy: matplotlib, and torch when the model runs
    from benchmark.stages.attention.cli import DESCRIPTION, add_arguments, run

    parser = argparse.ArgumentParser(prog="trajbench attention", description=DESCRIPTION)
    return run(add_arguments(parser).parse_args(args.rest))


#: Subcommands whose own command line parses the arguments after their name.
_PASSTHROUGH = ("train", "attention")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trajbench",
        description="Reproducibility benchmark for camera-controlled video generation.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("methods", help="list registered methods (or describe one)")
    p.add_argument("name", nargs="?", help="a method name to describe")
    p.set_defaults(func=_cmd_methods)

    p = sub.add_parser("check-method", help="check a method preset against the adapter contract")
    p.add_argument("name", help="method preset name, preset .yaml path, or adapter name")
    p.add_argument("--suite", default="smoke", help="synthetic suite to take a clip from")
    p.add_argument("--num-frames", type=int, default=6, help="frames to request")
    p.set_defaults(func=_cmd_check_method)

    p = sub.add_parser("prepare-scene", help="write a suite scene's image, depth and view")
    p.add_argument("--suite", required=True, help="suite name or YAML path")
    p.add_argument("--scene", required=True)
    p.add_argument("--out", required=True, type=Path, help="scene folder")
    p.set_defaults(func=_cmd_prepare_scene)

    p = sub.add_parser("fetch-image", help="download an image and check its sha256")
    p.add_argument("--url", required=True)
    p.add_argument("--sha256", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(func=_cmd_fetch_image)

    p = sub.add_parser("make-camera", help="write a parametric camera path for a scene")
    p.add_argument("--scene-dir", required=True, type=Path)
    p.add_argument("--camera", required=True, help="path name, e.g. orbit_left_15deg")
    p.add_argument("--frames", required=True, type=int)
    p.add_argument("--out", required=True, type=Path, help="camera JSON file")
    p.add_argument("--video-dir", type=Path, default=None,
                   help="video suites: compose the path with this input video's cameras")
    p.set_defaults(func=_cmd_make_camera)

    p = sub.add_parser("prepare-video", help="write a scene's input video (video suites)")
    p.add_argument("--suite", required=True, help="suite name or YAML path")
    p.add_argument("--scene", required=True)
    p.add_argument("--scene-dir", required=True, type=Path)
    p.add_argument("--frames", required=True, type=int)
    p.add_argument("--out", required=True, type=Path, help="video folder")
    p.set_defaults(func=_cmd_prepare_video)

    p = sub.add_parser("prepare-edit", help="write a scene's edited first frame (editing suites)")
    p.add_argument("--suite", required=True, help="suite name or YAML path")
    p.add_argument("--scene", required=True)
    p.add_argument("--scene-dir", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="edit folder")
    p.set_defaults(func=_cmd_prepare_edit)

    p = sub.add_parser("generate", help="run a method preset on a scene and camera path")
    p.add_argument("--method", required=True, help="method preset (configs/methods) or name")
    p.add_argument("--scene-dir", required=True, type=Path)
    p.add_argument("--camera-file", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--video-dir", type=Path, default=None, help="input video (video suites)")
    p.add_argument("--edit-dir", type=Path, default=None,
                   help="editing suites: the edit (edited first frame, edited scene)")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("poses", help="recover poses of a run's frames with COLMAP")
    p.add_argument("--run-dir", required=True, type=Path)
    # defaults: the protocol's own (PoseRecoveryConfig), not a second copy of them
    p.add_argument("--matcher", choices=["exhaustive", "sequential"],
                   default=PoseRecoveryConfig.matcher)
    p.add_argument("--mapper", choices=["incremental", "global"],
                   default=PoseRecoveryConfig.mapper)
    p.add_argument("--threads", type=int, default=1, help="1 = bit-reproducible")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_poses)

    p = sub.add_parser("score", help="pose and fidelity metrics of one run")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--camera-file", required=True, type=Path)
    p.add_argument("--reference-dir", type=Path, help="exact render of the path (fidelity)")
    p.add_argument("--video-dir", type=Path, default=None,
                   help="editing suites: the original video (track agreement, persistence)")
    p.add_argument("--edit-dir", type=Path, default=None,
                   help="editing suites: the edit (its edited first frame)")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("render-reference", help="render a synthetic scene along a path")
    p.add_argument("--scene-dir", required=True, type=Path)
    p.add_argument("--camera-file", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="folder for the PNG frames")
    p.add_argument("--edit-dir", type=Path, default=None,
                   help="editing suites: render the edited scene (the exact edited video)")
    p.set_defaults(func=_cmd_render_reference)

    p = sub.add_parser("fid", help="FID/KID of each method's frames against the reference set")
    p.add_argument("--results", required=True, type=Path, help="results/{suite}")
    p.add_argument("--out", required=True, type=Path, help="CSV file (one row per method, F)")
    p.add_argument("--reference", choices=["auto", "renders", "conditioning"], default="auto",
                   help="auto: exact renders where they exist, else the conditioning images")
    p.add_argument("methods", nargs="+")
    p.set_defaults(func=_cmd_fid)

    p = sub.add_parser("preview", help="MP4 preview of a run beside its reference")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--scene-dir", required=True, type=Path)
    p.add_argument("--reference-dir", type=Path, default=None,
                   help="exact render (synthetic suites); else the conditioning image is shown")
    p.add_argument("--out", required=True, type=Path, help="MP4 file")
    p.add_argument("--fps", type=int, default=7)
    p.set_defaults(func=_cmd_preview)

    p = sub.add_parser("fetch-weights", help="download model weights (networked machine)")
    p.add_argument("names", nargs="*", help="what to fetch (default: inception); 'list' lists")
    p.set_defaults(func=_cmd_fetch_weights)

    p = sub.add_parser("aggregate", help="tables and plots of a suite's results")
    p.add_argument("--results", required=True, type=Path, help="results/{suite}")
    p.add_argument("--out", required=True, type=Path, help="folder for tables and plots")
    p.add_argument("--title", default="")
    p.add_argument("--table", choices=["table1", "table2", "table_edit"], default="table1",
                   help="table1: image camera control; table2: video camera control; "
                   "table_edit: first-frame-guided editing")
    p.add_argument("--threads", type=int, default=1,
                   help="processes drawing the per-clip trajectory plots")
    p.add_argument("metrics", nargs="*", type=Path, help="metrics.json files (default: all)")
    p.set_defaults(func=_cmd_aggregate)

    p = sub.add_parser(
        "train", add_help=False,
        help="train trajectory-attention weights (SVD or Wan); the trainer's flags follow",
        description="Trains with trajattn.train (SVD) or trajattn.wan.train (Wan); every other "
        "argument goes to that trainer (`trajbench train --help` lists them).",
    )
    p.add_argument("--backbone", choices=["svd", "wan"], default="svd",
                   help="svd: python -m trajattn.train; wan: python -m trajattn.wan.train")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "attention", add_help=False,
        help="Fig. 2-style temporal vs trajectory attention maps of a trajattn preset",
    )
    p.set_defaults(func=_cmd_attention)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trajbench`` console script."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in _PASSTHROUGH:
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    logging.getLogger("evo").setLevel(logging.WARNING)  # evo prints every statistic at INFO
    try:
        return int(args.func(args) or 0)
    except (UnknownMethodError, ValueError, FileNotFoundError) as exc:
        print(f"trajbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
