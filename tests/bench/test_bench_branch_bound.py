"""The branch's lower-bound bench: its arithmetic on a hand case, and its pieces on tiny shapes."""

from __future__ import annotations

import argparse

import pytest
import torch

from bench import branch_bound


def test_lower_bound_is_two_projections_and_both_attention_cores_over_attn1():
    # P = 3, A(hw) = 1, A(2hw) = 2: attn1 = 4, + branch at least 4 + 3 + 2 = 9 -> 9 / 4
    seconds = {"P": 3.0, "A(hw)": 1.0, "A(2hw)": 2.0}
    assert branch_bound.lower_bound(seconds) == pytest.approx(9 / 4)
    # projections dominating: the bound tends to 2 from above, never below
    assert 2 < branch_bound.lower_bound({"P": 100.0, "A(hw)": 1e-3, "A(2hw)": 2e-3}) < 2.001


@pytest.mark.parametrize("forward_only", [False, True])
def test_pieces_run_with_or_without_gradients(forward_only, monkeypatch):
    args = argparse.Namespace(frames=3, latent=(4, 6), channels=64, dtype="float32",
                              forward_only=forward_only, valid=0.8)
    seen = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v):
        seen.append((q.shape[0], torch.is_grad_enabled()))
        return real(q, k, v)

    monkeypatch.setattr(branch_bound.F, "scaled_dot_product_attention", spy)
    calls = branch_bound.piece_calls(args, torch.device("cpu"))
    assert set(calls) == {"P", "A(hw)", "A(2hw)"}
    for call in calls.values():
        call()
    # CFG batch 2 x 4 x 6 grid cells, then twice as many trajectories; grad as asked
    assert seen == [(48, not forward_only), (96, not forward_only)]


def test_report_runs_end_to_end(capsys):
    branch_bound.main(["--frames", "3", "--latent", "4", "6", "--channels", "64",
                       "--repeats", "1", "--warmup", "0"])
    out = capsys.readouterr().out
    assert "lower bound x" in out and "attn1 + branch" in out
