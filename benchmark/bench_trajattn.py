"""Time trajectory attention on one temporal block's input (prints a report).

Run ``python -m benchmark.bench_trajattn`` (``--device cuda`` on a GPU machine). Two parts:

1. forward+backward seconds of ``attn1`` alone vs ``attn1`` + trajectory branch (Alg. 1,
   attention over F, Alg. 2) at SVD's first level after one downsample: latent 36x64,
   F = 25, C = 640 (10 heads), CFG batch 2, ``2 * h * w`` random trajectories per call;
2. the vectorised Alg. 1 + 2 against a literal Python loop of the paper's pseudo-code, at a
   small shape (and at the full shape with ``--literal-full``, which takes minutes on CPU).

Peak memory is CUDA's allocator peak on a GPU; on CPU it is the process's peak RSS so far
(monotone, so only growth between lines is informative). Timings depend on what else runs on
the machine.
"""

from __future__ import annotations

import argparse
import math
import resource
import time

import torch
from diffusers.models.attention_processor import Attention

from trajattn.attention import _attend
from trajattn.sampling import build_trajectory_index, gather_tokens, scatter_back


def peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB (cuda peak)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB (peak RSS)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_tracks(frames: int, num: int, image: tuple[int, int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(num, 2, generator=g) * torch.tensor([image[1], image[0]])
    step = torch.randn(num, 2, generator=g) * 2
    tracks = start[None] + torch.arange(frames, dtype=torch.float32)[:, None, None] * step
    inside = (tracks >= 0).all(-1) & (tracks[..., 0] < image[1]) & (tracks[..., 1] < image[0])
    return tracks, inside


def time_call(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm up
    sync(device)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def bench_branch(args, device: torch.device) -> None:
    h, w = args.latent
    frames, channels, batch = args.frames, args.channels, 2
    image = (h * 16, w * 16)  # latent 36x64 is 576x1024 pixels / 16
    heads = channels // 64
    attn1 = Attention(channels, heads=heads, dim_head=64).to(device)
    branch = Attention(channels, heads=heads, dim_head=64).to(device)
    tracks, visible = random_tracks(frames, h * w * 4, image)
    tracks, visible = tracks.to(device), visible.to(device)
    hidden = torch.randn(batch * h * w, frames, channels, device=device, requires_grad=True)
    generator = torch.Generator().manual_seed(0)

    def plain():
        attn1(hidden).square().mean().backward()

    def with_branch():
        index = build_trajectory_index(
            tracks, visible, image, (h, w), num_trajectories=2 * h * w, generator=generator
        )
        out, _ = _attend(branch, gather_tokens(hidden, index))
        back, _ = scatter_back(out, index)
        (attn1(hidden) + back).square().mean().backward()

    print(f"block input ({batch}*{h}*{w}, {frames}, {channels}), {heads} heads, device {device}")
    for name, fn in (("attn1 only", plain), ("attn1 + branch", with_branch)):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = time_call(fn, device, args.repeats)
        print(f"  {name:16s} fwd+bwd {seconds:8.4f} s   {peak_memory(device)}")


def literal(hidden, tracks, visible, image, latent):
    """Paper Alg. 1, identity attention, Alg. 2 as Python loops (nearest)."""
    h, w = latent
    frames, num = visible.shape
    batch = hidden.shape[0] // (h * w)
    grid = hidden.reshape(batch, h, w, frames, -1)
    out = torch.zeros_like(grid)
    count = torch.zeros(h, w, frames)
    for i in range(num):
        for f in range(frames):
            col = min(max(int(math.floor(float(tracks[f, i, 0]) * w / image[1])), 0), w - 1)
            row = min(max(int(math.floor(float(tracks[f, i, 1]) * h / image[0])), 0), h - 1)
            m = float(visible[f, i])
            out[:, row, col, f] += grid[:, row, col, f] * m
            count[row, col, f] += m
    out = torch.where(count[None, ..., None] > 0, out / count.clamp(min=1)[None, ..., None], 0)
    return out.reshape_as(hidden)


def bench_loops(latent, frames, channels, repeats) -> None:
    h, w = latent
    image = (h * 8, w * 8)
    tracks, visible = random_tracks(frames, 2 * h * w, image, seed=1)
    hidden = torch.randn(2 * h * w, frames, channels)

    def vectorised():
        index = build_trajectory_index(tracks, visible, image, (h, w))
        return scatter_back(gather_tokens(hidden, index), index)[0]

    torch.testing.assert_close(vectorised(), literal(hidden, tracks, visible, image, latent))
    fast = time_call(vectorised, torch.device("cpu"), repeats)
    start = time.perf_counter()
    literal(hidden, tracks, visible, image, latent)
    slow = time.perf_counter() - start
    print(
        f"  latent {h}x{w}, F={frames}, C={channels}: vectorised {fast:.4f} s, "
        f"literal loop {slow:.2f} s, ratio {slow / fast:.0f}x   {peak_memory(torch.device('cpu'))}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--latent", type=int, nargs=2, default=(36, 64))
    parser.add_argument("--channels", type=int, default=640)
    parser.add_argument("--literal-full", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    bench_branch(args, device)
    print("vectorised Alg. 1+2 (best of repeats) vs literal loop (one call), CPU:")
    bench_loops((8, 8), 5, 32, args.repeats)
    if args.literal_full:
        bench_loops(tuple(args.latent), args.frames, args.channels, 1)


if __name__ == "__main__":
    main()
