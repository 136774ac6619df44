"""The branch's projections moved around Alg. 1 / Alg. 2 (trajattn.branch) are exact.

Reference: the direct composition ``scatter_back(attend(attn, gather_tokens(h)))`` (itself
tested against the paper's literal loops), here with a random ``to_out`` bias so that the
masking of uncovered cells is exercised, gradients included.
"""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention

from trajattn import branch, chunked
from trajattn.branch import (
    attend,
    attend_along_trajectories,
    commutes_with_sampling,
    official_sequence_length,
)
from trajattn.sampling import build_trajectory_index, gather_tokens, scatter_back

B, F, H_LAT, W_LAT, C, HEADS = 2, 4, 4, 6, 16, 2
IMAGE = (32, 48)


def setup(mode: str, num: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(F, num, 2, generator=g)
    tracks = torch.stack([xy[..., 0] * 56 - 4, xy[..., 1] * 40 - 4], -1)
    visible = torch.rand(F, num, generator=g) < 0.7
    index = build_trajectory_index(tracks, visible, IMAGE, (H_LAT, W_LAT), mode)
    torch.manual_seed(seed)
    attn = Attention(C, heads=HEADS, dim_head=C // HEADS, bias=False, out_bias=True)
    with torch.no_grad():
        attn.to_out[0].bias.normal_()
    hidden = torch.randn(B * H_LAT * W_LAT, F, C, requires_grad=True)
    return index, attn, hidden


def small_float64_case(seed: int, out_bias: bool):
    """5 nearest-mode trajectories (some cells uncovered, some points invalid) and a float64
    attention of 2 heads of 4: small enough for finite differences."""
    g = torch.Generator().manual_seed(seed)
    tracks = torch.rand(F, 5, 2, generator=g) * torch.tensor([56.0, 40.0]) - 4
    visible = torch.rand(F, 5, generator=g) < 0.7
    index = build_trajectory_index(tracks, visible, IMAGE, (H_LAT, W_LAT), "nearest")
    torch.manual_seed(seed)
    attn = Attention(8, heads=2, dim_head=4, bias=False, out_bias=out_bias).double()
    return index, attn


def grads(value: torch.Tensor, attn: Attention, hidden: torch.Tensor) -> list[torch.Tensor]:
    params = [hidden, *attn.parameters()]
    return torch.autograd.grad(value.square().sum(), params)


@pytest.mark.parametrize(("mode", "chunked"), [("nearest", True), ("nearest", False),
                                               ("bilinear", None)])
@pytest.mark.parametrize("masked,mixed", [(False, False), (True, False), (False, True)])
def test_projections_around_sampling_are_exact(mode, chunked, masked, mixed):
    # nearest mode has two paths (chunk by chunk, or on the gathered q/k/v): each forced
    index, attn, hidden = setup(mode, num=12)  # 12 trajectories leave cells uncovered
    assert commutes_with_sampling(attn)
    key_mask = index.key_mask(B) if masked else None
    # compat mode: the official view(B*h*w, -1, ...), N F / (h w) tokens per sequence
    length = official_sequence_length(B * 12, F, B * H_LAT * W_LAT) if mixed else None
    out, _ = attend(attn, gather_tokens(hidden, index), key_mask, mixed, mixed_length=length)
    ref, ref_cov = scatter_back(out, index)
    got, covered, _ = attend_along_trajectories(attn, hidden, index, key_mask, mixed,
                                                chunked=chunked)
    assert torch.equal(covered, ref_cov) and not covered.all()
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert not got.reshape(B, H_LAT * W_LAT, F, C)[:, ~covered].any()  # bias kept off
    for a, b in zip(grads(got, attn, hidden), grads(ref, attn, hidden), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_path_choice_follows_mode_dtype_and_device(monkeypatch):
    # automatic choice: the chunked path in nearest mode for float32 / float64 everywhere and
    # for half precision on the devices listed (CUDA is not: SDPA is faster there)
    nearest, attn, hidden = setup("nearest", num=12)
    bilinear = setup("bilinear", num=12)[0]
    taken = []
    real = branch.attend_grid_chunked

    def spy(*args, **kwargs):
        taken.append(args[0].dtype)
        return real(*args, **kwargs)

    monkeypatch.setattr(branch, "attend_grid_chunked", spy)
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        x = hidden.detach().to(dtype)
        attend_along_trajectories(attn.to(dtype), x, nearest)
        attend_along_trajectories(attn, x, bilinear)
    assert taken == [torch.float32, torch.float64, torch.float16, torch.bfloat16]
    taken.clear()
    monkeypatch.setattr(branch, "CHUNKED_HALF_PRECISION_DEVICES", frozenset({"cuda"}))
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        attend_along_trajectories(attn.to(dtype), hidden.detach().to(dtype), nearest)
    assert taken == [torch.float32]
    with pytest.raises(ValueError, match="bilinear"):
        attend_along_trajectories(attn.float(), hidden, bilinear, chunked=True)


def test_biased_qkv_takes_the_direct_path():
    index, _, hidden = setup("nearest", num=12)
    attn = Attention(C, heads=HEADS, dim_head=C // HEADS, bias=True)
    assert not commutes_with_sampling(attn)  # to_q(0) = bias != gather of projected zeros
    got, _, probs = attend_along_trajectories(attn, hidden, index, want_probs=True)
    out, ref_probs = attend(attn, gather_tokens(hidden, index), want_probs=True)
    assert torch.equal(got, scatter_back(out, index)[0]) and torch.equal(probs, ref_probs)


def test_wrapped_projections_take_the_direct_path():
    class Scaled(torch.nn.Linear):  # stands in for a LoRA / quantised layer
        def forward(self, x):
            return super().forward(x) * 2

    index, attn, hidden = setup("nearest", num=12)
    wrapped = Scaled(C, C, bias=False)
    wrapped.load_state_dict(attn.to_q.state_dict())
    attn.to_q = wrapped
    assert not commutes_with_sampling(attn)
    got, _, _ = attend_along_trajectories(attn, hidden, index)
    ref = scatter_back(attend(attn, gather_tokens(hidden, index))[0], index)[0]
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("out_bias", [True, False])
def test_fused_nearest_path_passes_gradcheck(out_bias):
    # the nearest path's hand-written backward (trajattn.chunked) and to_out's masked bias against
    # finite differences, float64, with uncovered cells and invalid points
    index, attn = small_float64_case(4, out_bias)
    if out_bias:
        with torch.no_grad():
            attn.to_out[0].bias.normal_()
    hidden = torch.randn(B * H_LAT * W_LAT, F, 8, dtype=torch.float64, requires_grad=True)
    params = [attn.to_q.weight, attn.to_v.weight, attn.to_out[0].weight]
    if out_bias:
        params.append(attn.to_out[0].bias)

    def value(h, *_):
        return attend_along_trajectories(attn, h, index)[0]

    assert torch.autograd.gradcheck(value, (hidden, *params), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("masked,mixed", [(False, False), (True, False), (False, True)])
def test_chunked_path_does_not_depend_on_the_chunk_size(monkeypatch, masked, mixed):
    # one sequence per chunk against everything in one chunk, forward, probabilities and
    # gradients: the chunk loop (trajattn.chunked) must neither drop nor repeat a sequence
    index, attn, hidden = setup("nearest", num=12, seed=3)
    key_mask = index.key_mask(B) if masked else None

    def run():
        got, _, probs = attend_along_trajectories(attn, hidden, index, key_mask, mixed, True)
        return got, probs, grads(got, attn, hidden)

    whole = run()
    monkeypatch.setattr(chunked, "CHUNK_BYTES", {"cpu": 1, "cuda": 1})
    assert chunked.chunk_sequences(10**6, torch.device("cpu")) == 1
    single = run()
    torch.testing.assert_close(single[0], whole[0], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(single[1], whole[1], atol=1e-6, rtol=1e-6)
    for a, b in zip(single[2], whole[2], strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_chunked_probabilities_match_the_direct_path():
    # Fig. 2's maps: the chunked path's averaged probabilities equal attend()'s
    index, attn, hidden = setup("nearest", num=12, seed=5)
    _, _, probs = attend_along_trajectories(attn, hidden, index, want_probs=True)
    _, ref = attend(attn, gather_tokens(hidden, index), want_probs=True)
    torch.testing.assert_close(probs, ref, atol=1e-6, rtol=1e-6)


def test_chunked_gradcheck_with_one_sequence_per_chunk(monkeypatch):
    # the hand-written backward across chunk boundaries, with masked keys, float64
    monkeypatch.setattr(chunked, "CHUNK_BYTES", {"cpu": 1, "cuda": 1})
    index, attn = small_float64_case(6, out_bias=True)
    hidden = torch.randn(B * H_LAT * W_LAT, F, 8, dtype=torch.float64, requires_grad=True)
    key_mask = index.key_mask(B)
    assert not key_mask.all()

    def value(h, w):
        return attend_along_trajectories(attn, h, index, key_mask)[0]

    args = (hidden, attn.to_k.weight)
    assert torch.autograd.gradcheck(value, args, eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_chunked_path_matches_float64(monkeypatch, dtype):
    # half-precision tokens take the chunked nearest path with softmax, sums and counts in
    # float32: against the float64 direct composition to half-precision rounding, forward
    # and gradients, in one chunk and in one sequence per chunk; then the projected path
    # (what half precision takes on CUDA) to the same tolerance
    import copy

    index, attn, hidden = setup("nearest", num=12, seed=7)
    key_mask = index.key_mask(B)
    ref_attn = copy.deepcopy(attn).double()
    x64 = hidden.detach().double().requires_grad_(True)
    ref = scatter_back(attend(ref_attn, gather_tokens(x64, index), key_mask)[0], index)[0]
    ref_grads = grads(ref, ref_attn, x64)
    half_attn = copy.deepcopy(attn).to(dtype)
    x = hidden.detach().to(dtype).requires_grad_(True)
    atol, rtol = (3e-2, 5e-2) if dtype == torch.bfloat16 else (4e-3, 1e-2)

    def no_sampled_tokens(*_):
        raise AssertionError("the plain composition materialises every sampled token")

    monkeypatch.setattr(branch, "gather_tokens", no_sampled_tokens)

    def check(path=None):
        got = attend_along_trajectories(half_attn, x, index, key_mask, chunked=path)[0]
        assert got.dtype == dtype
        scale = float(ref.detach().abs().max())
        torch.testing.assert_close(got.double() / scale, ref / scale, atol=atol, rtol=rtol)
        for a, b in zip(grads(got.float(), half_attn, x), ref_grads, strict=True):
            assert a.dtype == dtype
            s = float(b.abs().max())
            torch.testing.assert_close(a.double() / s, b / s, atol=atol, rtol=rtol)

    check()
    monkeypatch.setattr(chunked, "CHUNK_BYTES", {"cpu": 1, "cuda": 1})
    check()
    monkeypatch.setattr(branch, "gather_tokens", gather_tokens)
    check(path=False)
