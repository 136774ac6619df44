"""The trajectory-attention bench's reference loops and its variants (tiny shapes, in-process)."""

from __future__ import annotations

import argparse

import pytest
import torch

from bench import trajattn as bench
from trajattn import branch
from trajattn.sampling import build_trajectory_index


def tiny_args(**over) -> argparse.Namespace:
    values = dict(
        device="cpu", threads=1, repeats=1, warmup=0, frames=3, latent=(4, 6), channels=64,
        valid=0.8, dtype="float32", chunk_mib=0, forward_only=False,
    )  # fmt: skip
    return argparse.Namespace(**(values | over))


def test_official_loops_are_paper_alg1_alg2_on_a_hand_case():
    # two trajectories on a 1x2 grid (pixels 16 wide per cell), 2 frames, batch 1, C = 1
    tracks = torch.tensor([[[1.0, 1.0], [3.0, 2.0]], [[20.0, 1.0], [25.0, 1.0]]])  # (F, L, 2)
    visible = torch.tensor([[True, True], [True, False]])
    index = build_trajectory_index(tracks, visible, (16, 32), (1, 2))
    hidden = torch.tensor([[[1.0], [2.0]], [[3.0], [4.0]]])  # cell 0: f0 1, f1 2; cell 1: 3, 4
    tokens = bench.official_gather(hidden, index)
    # trajectory 0 reads cell 0 at f0 and cell 1 at f1; trajectory 1 cell 0, then invalid
    assert tokens.flatten().tolist() == [1.0, 4.0, 1.0, 0.0]
    back = bench.official_scatter(torch.tensor([[[5.0], [6.0]], [[7.0], [8.0]]]), index)
    # f0: both land on cell 0 -> mean 6; f1: only trajectory 0 (cell 1) -> 6, cell 0 empty
    assert back.flatten().tolist() == [6.0, 0.0, 0.0, 6.0]


def test_project_functions_agree_with_official_loops():
    bench.check_agreement(torch.device("cpu"))


def test_random_tracks_hit_the_requested_valid_fraction():
    _, visible = bench.random_tracks(25, 20000, (576, 1024), valid=0.8)
    assert abs(visible.float().mean().item() - 0.8) < 0.02


@pytest.mark.parametrize("name", bench.VARIANTS)
def test_every_variant_runs_and_reports(name):
    result = bench.run_variant(name, tiny_args())
    assert result["variant"] == name and result["peak_mib"] > 0
    if name.endswith("inputs"):
        assert result["seconds"] is None
    else:
        assert result["seconds"] > 0 and result["cpu_seconds"] >= 0


def test_report_ratios():
    results = {
        "a": {"peak_mib": 100.0},
        "b": {"seconds": 2.0, "cpu_seconds": 1.0, "peak_mib": 300.0},
        "c": {"seconds": 1.0, "cpu_seconds": 0.25, "peak_mib": 150.0},
    }
    lines = bench.report(results, [("t", ("a", "b", "c"))])
    assert "x0.50" in lines[2] and "x0.25" in lines[2] and "+   50" in lines[2]


def test_paired_block_times_attn1_and_the_branch_alternately():
    result = bench.run_variant(bench.PAIRED, tiny_args())
    assert result["first_s"] > 0 and result["second_s"] > 0
    order = []
    meter = bench.Meter(torch.device("cpu"))
    bench.time_alternately(lambda: order.append("a"), lambda: order.append("b"), meter,
                           repeats=2, warmup=1)
    assert order == ["a", "b"] * 3


def test_alternating_timer_counts_the_page_faults_of_fresh_memory():
    # 64 MiB written afresh per call (above glibc's mmap threshold, so never reused) is
    # 16,384 pages to fault in; the empty call faults in next to none
    meter = bench.Meter(torch.device("cpu"))
    result = bench.time_alternately(lambda: None, lambda: torch.ones(16 << 20), meter,
                                    repeats=2, warmup=1)
    assert result["second_kfaults"] >= 16 > result["first_kfaults"]
    assert result["second_sys_s"] >= 0 and result["second_user_s"] >= 0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_dtype_option_runs_the_variants_in_that_precision(dtype):
    # --dtype: what SVD runs in on a GPU; Alg. 2 keeps the tokens' dtype (float32 sums inside)
    args = tiny_args(dtype=dtype)
    out = bench.variant_call("alg2-ours", args, torch.device("cpu"))()
    assert out[0].dtype == bench.DTYPES[dtype]
    assert bench.variant_call("alg1-ours", args, torch.device("cpu"))().dtype == bench.DTYPES[dtype]


def test_forced_paths_and_forward_only_reach_the_branch(monkeypatch):
    # --both-paths: block-chunked / block-projected force each nearest path; --forward-only
    # runs the block without gradients, and the children get the flag
    grad_enabled = []
    real = branch.attend_grid_chunked

    def spy(*args, **kwargs):
        grad_enabled.append(torch.is_grad_enabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(branch, "attend_grid_chunked", spy)
    cpu = torch.device("cpu")
    for dtype in ("float32", "float16"):
        for name, chunked_calls in (("block-chunked", 1), ("block-projected", 0)):
            grad_enabled.clear()
            bench.variant_call(name, tiny_args(dtype=dtype), cpu)()
            assert grad_enabled == [True] * chunked_calls
            grad_enabled.clear()
            bench.variant_call(name, tiny_args(dtype=dtype, forward_only=True), cpu)()
            assert grad_enabled == [False] * chunked_calls
    assert "--forward-only" in bench.forwarded(tiny_args(forward_only=True))
    assert "--forward-only" not in bench.forwarded(tiny_args())
