"""The least time attn1 + the trajectory branch can take, against what it takes (one report).

Run ``python -m bench.branch_bound`` (``--device cuda`` on a GPU machine). The branch repeats
``attn1``'s q/k/v and output projections on the same grid tokens with matrices of the same
size (the projections commute with sampling, :func:`trajattn.branch.commutes_with_sampling`),
and attends over ``N = 2 h w`` sequences per batch item where ``attn1`` attends over ``h w``.
So, with ``P`` the projections' time and ``A(S)`` the attention core's time on ``S``
sequences, any implementation of ``attn1`` + branch takes at least::

    (P + A(h w) + P + A(2 h w)) / (P + A(h w))   times attn1 alone

before gathering and scattering a single token. This script times ``P``, ``A(h w)`` and
``A(2 h w)`` separately (forward + backward, or ``--forward-only``) at the SVD-XT layer of
``bench.trajattn``, then ``attn1`` alone and ``attn1`` + branch as the project runs them, all
in one process and one run, and prints the bound beside the measured ratio: what is left
between them is the gather / scatter traffic and the attention's masking. Times are the best
of ``--repeats``; the bound and the ratio are in user CPU seconds of this process on a CPU
(its arithmetic: system time, mostly page faults, varies several-fold between runs on a
virtual machine), in wall seconds on CUDA.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention

from bench.timing import Meter, best_of
from bench.trajattn import DTYPES, add_layer_arguments, pass_label, shape_of, variant_call


def piece_calls(args, device: torch.device) -> dict[str, Callable[[], None]]:
    """``P``, ``A(h w)`` and ``A(2 h w)`` as calls on fresh inputs of the block's shapes."""
    batch, frames, h, w, channels, _ = shape_of(args)
    dtype = DTYPES[args.dtype]
    heads = channels // 64
    torch.manual_seed(0)
    attn = Attention(channels, heads=heads, dim_head=64).to(device, dtype)
    tokens = torch.randn(batch * h * w, frames, channels, device=device, dtype=dtype)
    tokens.requires_grad_(True)

    def run(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def call() -> None:
            if args.forward_only:
                with torch.no_grad():
                    fn()
                return
            fn().float().square().mean().backward()
            tokens.grad = None
            attn.zero_grad(set_to_none=True)

        return call

    def projections() -> torch.Tensor:
        q, k, v = attn.to_q(tokens), attn.to_k(tokens), attn.to_v(tokens)
        return attn.to_out[0](q + k + v)  # the four C x C products, no attention

    def core(sequences: int) -> Callable[[], torch.Tensor]:
        shape = (sequences, heads, frames, 64)
        qkv = [torch.randn(shape, device=device, dtype=dtype).requires_grad_(True)
               for _ in range(3)]
        return lambda: F.scaled_dot_product_attention(*qkv)

    return {
        "P": run(projections),
        "A(hw)": run(core(batch * h * w)),
        "A(2hw)": run(core(batch * 2 * h * w)),
    }


def lower_bound(seconds: dict[str, float]) -> float:
    """``(P + A(hw) + P + A(2hw)) / (P + A(hw))``."""
    attn1 = seconds["P"] + seconds["A(hw)"]
    return (attn1 + seconds["P"] + seconds["A(2hw)"]) / attn1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_layer_arguments(parser)
    parser.set_defaults(repeats=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    meter = Meter(device)
    # the bound's unit: user CPU time on a CPU (the arithmetic; system time is page faults,
    # which vary several-fold between runs on a virtual machine), wall time on CUDA
    key = "s" if device.type == "cuda" else "user_s"
    calls = piece_calls(args, device)
    calls["attn1"] = variant_call("block-attn1", args, device)
    calls["attn1 + branch"] = variant_call("block-ours", args, device)
    best = {}
    for name, call in calls.items():
        best[name] = best_of(call, meter, args.repeats, args.warmup)
        b = best[name]
        print(f"  {name:15s} wall {b['s']:8.3f} s  user {b['user_s']:8.3f} s  "
              f"system {b['sys_s']:8.3f} s", flush=True)
    seconds = {name: b[key] for name, b in best.items()}
    bound = lower_bound(seconds)
    measured = seconds["attn1 + branch"] / seconds["attn1"]
    pieces = seconds["P"] + seconds["A(hw)"]
    unit = "s wall" if key == "s" else "s user"
    print(f"{pass_label(args)}, {args.dtype}, {device}, in {unit}: attn1 + branch / attn1 "
          f"alone measured x{measured:.2f}, lower bound x{bound:.2f} "
          f"(P + A(hw) = {pieces:.3f} against attn1's {seconds['attn1']:.3f})")

if __name__ == "__main__":
    main()
