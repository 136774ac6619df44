"""Trajectory attention's hot path against an official-style loop (prints one report).

Run ``python -m bench.trajattn`` (``--device cuda`` on a GPU machine). At an SVD-XT
layer by default (CFG batch 2, F = 25, latent 36x64, C = 640 = 10 heads of 64, N = 2hw
trajectories, ~80% of points valid, nearest mode, float32 unless ``--dtype``, 1 CPU
thread) it times, best of ``--repeats`` after ``--warmup`` untimed calls (1):

- Alg. 2 (back projection): :func:`trajattn.sampling.scatter_back` against the official
  code's style, a Python loop over frames and batch items with ``index_put_(accumulate=True)``
  into ``(B, F, h*w, C)``, division by the counts and the rearrangement to the block's
  ``(B*h*w, F, C)`` layout (which the official processor also has to return);
- Alg. 1 (sampling): :func:`trajattn.sampling.gather_tokens` against a per-frame, per-item
  indexing loop;
- one temporal block, forward + backward: ``attn1`` alone; ``attn1`` + branch the official
  way (loop gather, projections on the gathered tokens, loop scatter); ``attn1`` + branch as
  the project's processor ran before the projections moved (``gather_tokens`` ->
  ``attend`` -> ``scatter_back``); ``attn1`` + branch as it runs now
  (:func:`trajattn.branch.attend_along_trajectories`, whose automatic path choice
  ``--both-paths`` checks by timing its chunked and projected paths forced). ``--forward-only``
  times the block's forward under ``torch.no_grad()``, as sampling runs it.

Every variant runs in its own child process so that its peak memory is its own: on CPU the
child's peak RSS (``getrusage``), on CUDA ``torch.cuda.max_memory_allocated``. A child that
only builds the inputs gives the baseline each peak includes. Before timing, the parent checks
on a small case that the official-style loops and the project's functions agree. Timings
depend on what else runs on the machine; the ratios come from one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable

import torch
from diffusers.models.attention_processor import Attention

from bench.timing import Meter, time_alternately, time_call
from trajattn import chunked
from trajattn.branch import attend, attend_along_trajectories
from trajattn.sampling import TrajectoryIndex, build_trajectory_index, gather_tokens, scatter_back

ALG2 = ("alg2-inputs", "alg2-official", "alg2-ours")
ALG1 = ("alg1-inputs", "alg1-official", "alg1-ours")
BLOCK = ("block-inputs", "block-attn1", "block-official", "block-before", "block-ours")
#: the branch forced onto each of its two paths (``--both-paths``; block-ours picks one)
BOTH_PATHS = ("block-chunked", "block-projected")
#: attn1 alone and attn1 + branch timed alternately in one process (see ``--paired``)
PAIRED = "block-paired"
VARIANTS = ALG2 + ALG1 + BLOCK + BOTH_PATHS
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def official_gather(hidden: torch.Tensor, index: TrajectoryIndex) -> torch.Tensor:
    """Alg. 1 the official way: per frame and batch item, index the grid, zero invalid points."""
    h, w = index.latent_size
    cells, valid = index.index[0], index.valid  # (N, F)
    num, frames = valid.shape
    batch = hidden.shape[0] // (h * w)
    grid = hidden.reshape(batch, h * w, frames, -1)
    out = hidden.new_empty(batch, num, frames, hidden.shape[-1])
    mask = valid.to(hidden.dtype)[..., None]
    for f in range(frames):
        for b in range(batch):
            out[b, :, f] = grid[b, cells[:, f], f] * mask[:, f]
    return out.reshape(batch * num, frames, -1)


def official_scatter(tokens: torch.Tensor, index: TrajectoryIndex) -> torch.Tensor:
    """Alg. 2 the official way: ``index_put_(accumulate=True)`` per frame and batch item."""
    h, w = index.latent_size
    cells, valid = index.index[0], index.valid  # (N, F)
    num, frames = valid.shape
    batch, channels = tokens.shape[0] // num, tokens.shape[-1]
    src = tokens.reshape(batch, num, frames, channels)
    out = tokens.new_zeros(batch, frames, h * w, channels)
    count = tokens.new_zeros(frames, h * w)
    mask = valid.to(tokens.dtype)
    for f in range(frames):
        count[f].index_put_((cells[:, f],), mask[:, f], accumulate=True)
        for b in range(batch):
            out[b, f].index_put_((cells[:, f],), src[b, :, f] * mask[:, f, None], accumulate=True)
    out = out / count.clamp(min=1)[None, ..., None]  # uncovered cells: 0 / 1
    return out.permute(0, 2, 1, 3).reshape(batch * h * w, frames, channels)


def random_tracks(frames: int, num: int, image: tuple[int, int], valid: float, seed: int = 0):
    """Straight random tracks; points leaving the image or dropped at random are invalid."""
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(num, 2, generator=g) * torch.tensor([image[1], image[0]])
    step = torch.randn(num, 2, generator=g) * 2
    tracks = start[None] + torch.arange(frames, dtype=torch.float32)[:, None, None] * step
    inside = (tracks >= 0).all(-1) & (tracks[..., 0] < image[1]) & (tracks[..., 1] < image[0])
    keep = torch.rand(frames, num, generator=g) < valid / inside.float().mean()
    return tracks, inside & keep


def shape_of(args) -> tuple[int, int, int, int, int, tuple[int, int]]:
    h, w = args.latent
    return 2, args.frames, h, w, args.channels, (h * 16, w * 16)


def make_index(args, device: torch.device, generator: torch.Generator | None = None):
    batch, frames, h, w, _, image = shape_of(args)
    tracks, visible = random_tracks(frames, 4 * h * w, image, args.valid)
    return build_trajectory_index(
        tracks.to(device),
        visible.to(device),
        image,
        (h, w),
        num_trajectories=2 * h * w,
        generator=generator or torch.Generator().manual_seed(0),
    )


def variant_call(name: str, args, device: torch.device) -> Callable[[], object] | None:
    """The call a variant times, its inputs already built (None: inputs only)."""
    batch, frames, h, w, channels, image = shape_of(args)
    g = torch.Generator(device).manual_seed(1)
    dtype = DTYPES[args.dtype]
    if name.startswith("alg2"):
        index = make_index(args, device)
        tokens = torch.randn(
            batch * index.num_trajectories, frames, channels, generator=g, device=device
        ).to(dtype)
        calls = {
            "alg2-official": lambda: official_scatter(tokens, index),
            "alg2-ours": lambda: scatter_back(tokens, index),
        }
        return calls.get(name)
    if name.startswith("alg1"):
        index = make_index(args, device)
        hidden = torch.randn(
            batch * h * w, frames, channels, generator=g, device=device
        ).to(dtype)
        calls = {
            "alg1-official": lambda: official_gather(hidden, index),
            "alg1-ours": lambda: gather_tokens(hidden, index),
        }
        return calls.get(name)
    heads = channels // 64
    torch.manual_seed(0)
    attn1 = Attention(channels, heads=heads, dim_head=64).to(device, dtype)
    branch = Attention(channels, heads=heads, dim_head=64, bias=False, out_bias=True).to(
        device, dtype
    )
    hidden = torch.randn(batch * h * w, frames, channels, generator=g, device=device).to(dtype)
    hidden.requires_grad_(True)
    subsets = torch.Generator().manual_seed(0)  # a fresh subset per call, as in the processor

    def block(back_projected: Callable[[TrajectoryIndex], torch.Tensor] | None):
        def forward():
            out = attn1(hidden)
            if back_projected is not None:
                out = out + back_projected(make_index(args, device, subsets))
            return out

        def call():
            if args.forward_only:
                with torch.no_grad():
                    forward()
                return
            forward().square().mean().backward()
            hidden.grad = None

        return call

    if name == PAIRED:
        attn1_only = block(None)
        with_branch = block(lambda i: attend_along_trajectories(branch, hidden, i)[0])
        return lambda: (attn1_only, with_branch)  # run_variant alternates them
    calls = {
        "block-attn1": block(None),
        "block-official": block(
            lambda i: official_scatter(attend(branch, official_gather(hidden, i))[0], i)
        ),
        "block-before": block(
            lambda i: scatter_back(attend(branch, gather_tokens(hidden, i))[0], i)[0]
        ),
        "block-ours": block(lambda i: attend_along_trajectories(branch, hidden, i)[0]),
        "block-chunked": block(
            lambda i: attend_along_trajectories(branch, hidden, i, chunked=True)[0]
        ),
        "block-projected": block(
            lambda i: attend_along_trajectories(branch, hidden, i, chunked=False)[0]
        ),
    }
    return calls.get(name)


def run_variant(name: str, args) -> dict:
    """Build a variant's inputs, time it, and return seconds and peak MiB (this process)."""
    device = torch.device(args.device)
    meter = Meter(device)
    call = variant_call(name, args, device)
    wall = cpu = None
    if name == PAIRED and call is not None:
        return {"variant": name, **time_alternately(*call(), meter, args.repeats, args.warmup)}
    if call is not None:
        wall, cpu = time_call(call, meter, args.repeats, args.warmup)
    return {"variant": name, "seconds": wall, "cpu_seconds": cpu, "peak_mib": meter.peak_mib()}


def child(name: str, args) -> dict:
    """:func:`run_variant` in a fresh interpreter, so that peaks are separable."""
    cmd = [sys.executable, "-m", "bench.trajattn", "--child", name, *forwarded(args)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"variant {name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def forwarded(args) -> list[str]:
    h, w = args.latent
    return [
        f"--device={args.device}",
        f"--threads={args.threads}",
        f"--repeats={args.repeats}",
        f"--warmup={args.warmup}",
        f"--frames={args.frames}",
        "--latent",
        str(h),
        str(w),
        f"--channels={args.channels}",
        f"--valid={args.valid}",
        f"--dtype={args.dtype}",
        f"--chunk-mib={args.chunk_mib}",
        *(["--forward-only"] if args.forward_only else []),
    ]


def check_agreement(device: torch.device) -> None:
    """The official-style loops and the project's Alg. 1 / 2 agree (small case)."""
    h, w, frames, channels = 6, 8, 5, 16
    tracks, visible = random_tracks(frames, 4 * h * w, (h * 16, w * 16), 0.8, seed=3)
    index = build_trajectory_index(
        tracks.to(device), visible.to(device), (h * 16, w * 16), (h, w), num_trajectories=2 * h * w
    )
    hidden = torch.randn(2 * h * w, frames, channels, device=device)
    torch.testing.assert_close(gather_tokens(hidden, index), official_gather(hidden, index))
    tokens = torch.randn(2 * index.num_trajectories, frames, channels, device=device)
    torch.testing.assert_close(scatter_back(tokens, index)[0], official_scatter(tokens, index))


def report(results: dict[str, dict], groups: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """Lines of the report: seconds, peak, peak above the inputs, ratios to the reference."""
    lines = []
    for title, names in groups:
        inputs, ref = results[names[0]], results[names[1]]
        lines.append(
            f"{title} (inputs alone peak {inputs['peak_mib']:.0f} MiB; ratios to {names[1]})"
        )
        for name in names[1:]:
            r = results[name]
            extra = r["peak_mib"] - inputs["peak_mib"]
            wall, cpu, peak = (r[k] / ref[k] for k in ("seconds", "cpu_seconds", "peak_mib"))
            lines.append(
                f"  {name:15s} wall {r['seconds']:8.3f} s (x{wall:.2f})"
                f"  cpu {r['cpu_seconds']:8.3f} s (x{cpu:.2f})"
                f"  peak {r['peak_mib']:6.0f} MiB (+{extra:5.0f}, x{peak:.2f})"
            )
    return lines


def add_layer_arguments(parser: argparse.ArgumentParser) -> None:
    """Device, timing and the SVD-XT layer's shape: the options every trajattn bench takes."""
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--latent", type=int, nargs=2, default=(36, 64))
    parser.add_argument("--channels", type=int, default=640)
    parser.add_argument("--valid", type=float, default=0.8, help="fraction of valid points")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                        help="tokens and modules (half precision: as SVD runs on a GPU)")
    parser.add_argument("--forward-only", action="store_true",
                        help="block: forward under torch.no_grad() (sampling) instead of "
                        "forward + backward (training)")


def pass_label(args) -> str:
    """What a block call runs: ``--forward-only`` or forward + backward."""
    return "fwd (no grad)" if args.forward_only else "fwd+bwd"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_layer_arguments(parser)
    parser.add_argument("--chunk-mib", type=int, default=0,
                        help="the nearest path's chunk budget on this device (MiB; default: "
                        "trajattn.chunked.CHUNK_BYTES)")
    parser.add_argument("--skip-block", action="store_true", help="Alg. 1 and 2 only")
    parser.add_argument("--block-only", action="store_true", help="the temporal block only")
    parser.add_argument("--paired", action="store_true",
                        help="block: instead of one process per variant, attn1 alone and attn1 + "
                        "branch timed alternately in one process (the least noisy ratio on a "
                        "shared machine; no separate peaks)")
    parser.add_argument("--skip-official-block", action="store_true",
                        help="block: attn1 alone vs with the branch only (the official-style "
                        "block takes ~5x longer; ratios are then to attn1)")
    parser.add_argument("--both-paths", action="store_true",
                        help="block: also time the branch forced onto its chunked and its "
                        "projected path (which one block-ours takes depends on device and dtype)")
    parser.add_argument("--child", choices=(*VARIANTS, PAIRED), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.chunk_mib:
        chunked.CHUNK_BYTES[torch.device(args.device).type] = args.chunk_mib << 20
    if args.child:
        torch.set_num_threads(args.threads)  # CPU threads; no effect on CUDA kernels
        print(json.dumps(run_variant(args.child, args)))
        return
    device = torch.device(args.device)
    check_agreement(device)
    batch, frames, h, w, channels, _ = shape_of(args)
    valid = make_index(args, torch.device("cpu")).valid.float().mean().item()
    print(
        f"batch {batch}, F={frames}, latent {h}x{w}, C={channels}, N={2 * h * w}, "
        f"{valid:.0%} valid, nearest, {args.dtype}, device {device}"
        + (f", {args.threads} thread(s)" if device.type == "cpu" else "")
    )
    groups = [] if args.block_only else [("Alg. 2 scatter-back", ALG2), ("Alg. 1 gather", ALG1)]
    if not args.skip_block and not args.paired:
        block = tuple(n for n in BLOCK if not (args.skip_official_block and n == "block-official"))
        block += BOTH_PATHS if args.both_paths else ()
        groups.append((f"temporal block {pass_label(args)}", block))
    results = {}
    for _, names in groups:
        for name in names:
            results[name] = child(name, args)
            print(f"  ... {name} done", file=sys.stderr, flush=True)
    print("\n".join(report(results, groups)))
    if args.paired and not args.skip_block:
        r = child(PAIRED, args)
        print(f"temporal block {pass_label(args)}, alternating in one process "
              f"(best of {args.repeats}):")
        for what, unit in (("s", "s wall"), ("cpu_s", "s cpu"), ("user_s", "s user"),
                           ("sys_s", "s system"), ("kfaults", "k page faults")):
            first, second = r[f"first_{what}"], r[f"second_{what}"]
            ratio = f"x{second / first:.2f}" if first > 0 else "-"
            print(f"  attn1 {first:9.2f}, attn1 + branch {second:9.2f} {unit:14s} {ratio}")
    if not args.skip_block and not args.paired:
        attn1 = results["block-attn1"]
        for name in groups[-1][1][2:]:
            wall, cpu = (results[name][k] / attn1[k] for k in ("seconds", "cpu_seconds"))
            print(f"  attn1 + branch ({name}) / attn1 alone: wall x{wall:.2f}, cpu x{cpu:.2f}")


if __name__ == "__main__":
    main()
