"""NVS-Solver guidance (trajattn/nvs_guidance.py) and the ``nvs_solver`` adapter.

Upstream facts come from ZHU-Zhiyu/NVS_Solver @ b69f2f7: ``search_hypers`` and the pipeline in
svd_interpolate_single_img.py, ``EulerDiscreteScheduler.step_single`` in
src/diffusers/schedulers/scheduling_euler_discrete.py.
"""

from __future__ import annotations

import math

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import EulerDiscreteScheduler, StableVideoDiffusionPipeline

from benchmark.cameras.paths import make_camera_path
from benchmark.stages.generate import load_preset
from methods import create_method
from methods.base import GenerationRequest, MethodUnavailable
from methods.framing import fit_to_resolution
from trajattn.nvs_guidance import (
    NVSGuidanceConfig,
    NVSGuidedScheduler,
    crop_windows,
    encode_targets,
    guidance_delta,
    keep_closest,
    lambda_weight,
    latent_valid,
    nvs_guidance,
    predicted_clean_latent,
    weight_schedule,
)
from trajattn.tiny import (
    SVD_SCHEDULER,
    build_tiny_pipeline,
    tiny_feature_extractor,
    tiny_image_encoder,
    tiny_unet,
    tiny_vae,
)

FRAMES, H, W = 4, 32, 32


# ----------------------------------------------------------------------------- weight schedule


def test_lambda_weight_hand_computed():
    # v1=0.001, v2=50, v3=10, sigma_n=1, tau_n=1: Q = 10 - 50 = -40, k = 0.8, b = -0.2.
    # disc = (2*0.8*0.001 + 0.8*(-40))^2 - 4*0.8*0.001*(0.8*0.001 + 8) = 1023.872;
    # root + = (-(0.002 - 32) + sqrt(disc)) / 0.0016 > 1, so lambda is it.
    lam = (31.998 + math.sqrt(1023.872)) / 0.0016
    assert float(lambda_weight(0.001, 50, 10, 1.0, 1.0)) == pytest.approx(lam / (1 + lam), 1e-12)
    # sigma_n = 0: Q = 10. Both roots for v1 are < 1; with -v1 the discriminant is
    # (-0.0016 + 8)^2 - 4*0.8*(-0.001)*(-0.0008 - 2) = 63.968 and root + = (-(-0.002 + 8)
    # + sqrt(63.968)) / (-0.0016), in (0, 1]: the third choice.
    lam3 = (-7.998 + math.sqrt(63.968)) / -0.0016
    assert 0 < lam3 <= 1
    assert float(lambda_weight(0.001, 50, 10, 0.0, 1.0)) == pytest.approx(lam3 / (1 + lam3), 1e-6)


def _search_hypers_reference(sigmas, v1s, v2s, v3s, frames):
    """Scalar transcription of upstream's search_hypers control flow (first best count)."""
    best, out, chosen = 0, None, None
    smax = max(sigmas)
    for v1 in v1s:
        for v2 in v2s:
            for v3 in v3s:
                values, ok = [], True
                for sigma in sigmas:
                    for tau in range(frames):
                        if tau == 0:
                            values.append(1.0)
                            continue
                        q, k, b = v3 * tau / (frames - 1) - v2 * sigma / smax, 0.8, -0.2
                        found = None
                        for v, lo_ok in ((v1, False), (-v1, True)):
                            disc = (2 * k * v + k * q) ** 2 - 4 * k * v * (k * v + q * b)
                            if disc < 0:
                                continue
                            for sign in (1, -1):
                                lam = (-(2 * v + k * q) + sign * math.sqrt(disc)) / (2 * k * v)
                                good = (0 < lam <= 1) if lo_ok else lam > 1
                                if good and found is None:
                                    found = lam
                        if found is None:
                            ok = False
                            break
                        values.append(found / (1 + found))
                    if not ok:
                        break
                if ok and sum(x > 0.5 for x in values) > best:
                    best = sum(x > 0.5 for x in values)
                    out, chosen = np.reshape(values, (len(sigmas), frames)), (v1, v2, v3)
    return out, chosen


def test_weight_schedule_is_upstreams_grid_search():
    sched = EulerDiscreteScheduler(**SVD_SCHEDULER)
    sched.set_timesteps(6)
    sigmas = sched.sigmas[:-1].double().numpy()
    grids = ((0.001, 0.005, 0.009), (50.0, 500.0, 1000.0), (10.0, 50.0, 100.0))
    weights, chosen = weight_schedule(sigmas, 5, *grids)
    ref, ref_chosen = _search_hypers_reference(list(sigmas), *grids, 5)
    assert chosen == ref_chosen
    np.testing.assert_allclose(weights, ref, rtol=1e-9, atol=1e-12)


def test_weight_schedule_properties_for_svd_xt():
    sched = EulerDiscreteScheduler(**SVD_SCHEDULER)
    sched.set_timesteps(25)
    weights, chosen = weight_schedule(sched.sigmas[:-1], 25)
    assert weights.shape == (25, 25)
    assert np.all(weights[:, 0] == 1.0)  # the conditioning frame always keeps everything
    assert np.all((weights > 0) & (weights <= 1))
    assert weights[0].min() > 0.999  # at sigma_max every frame is guided fully
    # Later frames (farther from the conditioning view) never weigh more at a given step.
    assert np.all(np.diff(weights[:, 1:], axis=1) <= 1e-12)
    # Running upstream's search on sigmas/sigmas_25.npy (= these sigmas) picks this point.
    assert chosen == (0.001, 1000.0, 10.0)


# ----------------------------------------------------------------------------- masks and update


def test_latent_valid_pools_with_threshold():
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    valid[0, :4, :4] = False  # top-left 4x4 cell all holes
    valid[0, 0, 4] = False  # 1 of 16 pixels of the top-right cell (6 %: still valid)
    valid[0, 4:8, 0] = False  # bottom-left cell: 4/16 = 25 % >= 20 % -> hole
    valid[0, 4:7, 4] = False  # bottom-right cell: 3/16 = 19 % < 20 % -> valid
    cells = latent_valid(valid, 4, threshold=0.2)
    assert cells.tolist() == [[[False, True], [False, True]]]


def test_keep_closest_keeps_fraction_of_valid_entries():
    diff = torch.tensor([[[0.1, -0.5], [0.3, 9.0]]])  # (C=1, 2, 2)
    valid = torch.tensor([[True, True], [True, False]])
    # The departure option compat_cutoff=False keeps exactly the fraction of valid entries.
    keep = keep_closest(diff, valid, 2 / 3, compat_cutoff=False)  # 2 of 3: |0.1| and |0.3|
    assert keep.tolist() == [[[True, False], [True, False]]]
    assert not keep_closest(diff, valid, 0.0, compat_cutoff=False).any()
    assert keep_closest(diff, valid, 1.0, compat_cutoff=False).tolist() == [
        [[True, True], [True, False]]
    ]


def test_keep_closest_compat_cutoff_counts_hole_pixels_once():
    # 4 channels, 1 pixel of 2 a hole: sorted |diff*valid| has 4 hole zeros first, but
    # upstream's index int(0.5 * (8 - 1)) + 1 = 4 lands on a zero: nothing valid is kept.
    diff = torch.arange(1.0, 9.0).reshape(4, 1, 2)
    valid = torch.tensor([[True, False]])
    assert not keep_closest(diff, valid, 0.5, compat_cutoff=True).any()
    assert not keep_closest(diff, valid, 0.5).any()  # upstream's rule is the default
    # exact (the departure option): half of the 4 valid entries
    assert int(keep_closest(diff, valid, 0.5, compat_cutoff=False).sum()) == 2


def test_keep_closest_default_is_upstreams_cutoff_index():
    """C = 4, 2x2 cells, diff = 1..16 (channel-major), cell (0, 0) a hole (its entries 1, 5,
    9, 13 become the 4 zeros at the head of the sorted list). Upstream's index for w = 0.5 is
    int(0.5 * (16 - 1)) + 1 = 8: cutoff = sorted[7] = 6, so 2, 3, 4, 6 are kept (the exact
    rule keeps 6 of the 12 valid entries: 2, 3, 4, 6, 7, 8)."""
    diff = torch.arange(1.0, 17.0).reshape(4, 2, 2)
    valid = torch.tensor([[False, True], [True, True]])
    kept = sorted(diff[keep_closest(diff, valid, 0.5)].tolist())
    assert kept == [2.0, 3.0, 4.0, 6.0]
    assert sorted(diff[keep_closest(diff, valid, 0.5, False)].tolist()) == [2, 3, 4, 6, 7, 8]
    # 3 hole cells (12 zeros): index int(0.5 * 13) + 3 = 9 lands on a zero, nothing is kept
    # (upstream guides no frame there); the exact rule keeps 2 of the 4 valid entries.
    valid = torch.tensor([[False, False], [False, True]])
    assert not keep_closest(diff, valid, 0.5).any()
    assert sorted(diff[keep_closest(diff, valid, 0.5, False)].tolist()) == [4.0, 8.0]


def test_crop_windows_are_upstreams_for_its_latent():
    """576x1024 -> 72x128 latent cells: rows [:40] and [32:] (rows >= 40 from the second),
    columns [:72] and [56:] (columns >= 72 from the second); small latents: one crop."""
    assert crop_windows(72, 40) == [(0, 0, 40), (32, 40, 72)]
    assert crop_windows(128, 72) == [(0, 0, 72), (56, 72, 128)]
    assert crop_windows(30, 40) == [(0, 0, 30)]
    assert crop_windows(4, 3) == [(0, 0, 3), (1, 3, 4)]


def test_guidance_delta_normalises_per_crop():
    """4x6 latent, crops of 3x4 (windows: rows 0-2 / 1-3 owning rows 0-2 / 3, columns 0-3 /
    2-5 owning columns 0-3 / 4-5). diff = +-1 checkerboard in columns 0-3 and +-3 in 4-5;
    everything kept (w = 1, no holes), lr sqrt(sigma) = 1. Every crop row has mean 0, so:
    left crops hold 12 values +-1: std = sqrt(12 / 11); right crops hold +-1, +-1, +-3, +-3 per
    row: std = sqrt(60 / 11). Over the whole frame (crop=None): std = sqrt(88 / 23)."""
    r, c = np.meshgrid(np.arange(4), np.arange(6), indexing="ij")
    sign = np.where((r + c) % 2 == 0, 1.0, -1.0)
    diff = torch.tensor(sign * np.where(c < 4, 1.0, 3.0), dtype=torch.float32)
    x0 = diff.reshape(1, 1, 1, 4, 6)
    target = torch.zeros(1, 1, 4, 6)
    valid = torch.ones(1, 4, 6, dtype=torch.bool)
    delta = guidance_delta(x0, target, valid, np.ones(1), 4.0, 0.5, 0.2, crop=(3, 4))
    std = torch.tensor(np.where(c < 4, math.sqrt(12 / 11), math.sqrt(60 / 11)),
                       dtype=torch.float32)
    torch.testing.assert_close(delta[0, 0, 0], -diff / std)
    whole = guidance_delta(x0, target, valid, np.ones(1), 4.0, 0.5, 0.2, crop=None)
    torch.testing.assert_close(whole[0, 0, 0], -diff / math.sqrt(88 / 23))


def test_guidance_delta_counts_holes_per_crop():
    """Upstream's cutoff and hole count are per crop. 1 frame, C = 1, a 2x4 latent in crops of
    2x2 (columns 0-1 and 2-3), w = 0.5. Left crop: diff 1, 2, 3, 4 with the cell of 1 a hole:
    index int(0.5 * 3) + 1 = 2, cutoff sorted([0, 2, 3, 4])[1] = 2: keeps 2. Right crop: no
    hole, diff 5, 6, 7, 8: index 2, cutoff 6: keeps 5, 6. Over the whole frame: index
    int(0.5 * 7) + 1 = 4, cutoff sorted([0, 2, ..., 8])[3] = 4: keeps 2, 3, 4."""
    diff = torch.tensor([[1.0, 2.0, 5.0, 6.0], [3.0, 4.0, 7.0, 8.0]])
    valid = torch.ones(1, 2, 4, dtype=torch.bool)
    valid[0, 0, 0] = False
    x0 = diff.reshape(1, 1, 1, 2, 4)
    target = torch.zeros(1, 1, 2, 4)

    def kept(crop):
        delta = guidance_delta(x0, target, valid, np.full(1, 0.5), 1.0, 1.0, 0.0, crop=crop)
        return sorted(diff[delta[0, 0, 0] != 0].tolist())

    assert kept((2, 2)) == [2.0, 5.0, 6.0]
    assert kept(None) == [2.0, 3.0, 4.0]


class _Latents:
    def __init__(self, x):
        self.x = x

    def mode(self):
        return self.x


class _RecordingVAE:
    """Stands in for the VAE: records the pixels it is given, 'encodes' by 8x8 subsampling."""

    device, dtype = torch.device("cpu"), torch.float32

    class config:  # noqa: N801 - mirrors vae.config
        scaling_factor = 0.18215

    def __init__(self):
        self.seen = []

    def encode(self, batch):
        self.seen.append(batch.clone())
        return type("Out", (), {"latent_dist": _Latents(batch[:, :, ::8, ::8])})()


def test_holes_are_black_before_encoding_as_upstream():
    """Upstream zeroes the uint8 warped frame in the dilated holes, then scales to [-1, 1]:
    holes reach the VAE as -1 (black). A white frame (255 -> +1) with a hole at 16-23 px
    (dilated by 2 px each side: 14-25) gives -1 there, +1 elsewhere; hole_fill='grey' gives 0."""
    pipe = type("Pipe", (), {"vae": _RecordingVAE(), "vae_scale_factor": 8})()
    frames = np.full((1, 8, 40, 3), 255, np.uint8)
    valid = np.ones((1, 8, 40), bool)
    valid[:, :, 16:24] = False
    encode_targets(pipe, frames, valid)
    seen = pipe.vae.seen[-1][0]
    hole = np.zeros(40, bool)
    hole[14:26] = True
    assert torch.all(seen[:, :, torch.from_numpy(hole)] == -1.0)
    assert torch.all(seen[:, :, torch.from_numpy(~hole)] == 1.0)
    encode_targets(pipe, frames, valid, NVSGuidanceConfig(hole_fill="grey"))
    assert torch.all(pipe.vae.seen[-1][0][:, :, torch.from_numpy(hole)] == 0.0)
    with pytest.raises(ValueError, match="hole_fill"):
        NVSGuidanceConfig(hole_fill="white")


class _ProbeUNet(torch.nn.Module):
    """Output = the image-latent channels of its input + the mean CLIP embedding, per video:
    it shows which conditioning a pass used."""

    def forward(self, sample, timestep, encoder_hidden_states=None, added_time_ids=None,
                return_dict=False):
        out = sample[:, :, 4:] + encoder_hidden_states.mean(dim=(1, 2))[:, None, None, None, None]
        return (out,)


def test_x0_comes_from_upstreams_unconditional_pass():
    """Upstream's guidance x0 comes from one UNet pass with the zero CLIP embedding and the
    *conditional* image latents. With a probe UNet (output = image latents + mean embedding)
    and a recorded CFG call (halves: zero latents + zero embedding, cond latents + embedding
    of mean 5), that pass outputs exactly the conditional latents; x0_pass='cfg' uses the
    pipeline's prediction instead."""
    inner = EulerDiscreteScheduler(**SVD_SCHEDULER)
    inner.set_timesteps(4)
    g = torch.Generator().manual_seed(5)
    shape = (1, 2, 4, 3, 3)
    cond = torch.randn(shape, generator=g)
    targets = torch.randn(shape[1:], generator=g)
    valid = torch.ones(2, 3, 3, dtype=torch.bool)
    sample = torch.randn(shape, generator=g) * 5
    model_output = torch.randn(shape, generator=g)
    t = inner.timesteps[1]
    pipe = type("Pipe", (), {"unet": _ProbeUNet(), "guidance_scale": 2.0})()
    weights = np.ones((4, 2))
    scaled = inner.scale_model_input(sample, t)
    recorded = torch.cat([torch.cat([scaled, torch.zeros_like(cond)], 2),
                          torch.cat([scaled, cond], 2)])
    embeddings = torch.cat([torch.zeros(1, 1, 8), torch.full((1, 1, 8), 5.0)])

    def step(x0_pass):
        inner._step_index = 1
        wrapper = NVSGuidedScheduler(inner, pipe, targets, valid, NVSGuidanceConfig(
            lr=0.5, weights=weights, refresh=False, x0_pass=x0_pass))
        wrapper.record_unet_call(pipe.unet, (recorded, t), {
            "encoder_hidden_states": embeddings, "added_time_ids": torch.zeros(2, 3)})
        return wrapper.step(model_output, t, sample).prev_sample

    def expected(x0_output):
        sigma = float(inner.sigmas[1])
        x0 = predicted_clean_latent(inner.config.prediction_type, x0_output, sample, sigma)
        delta = guidance_delta(x0, targets, valid, weights[1], sigma, 0.5, 0.2)
        inner._step_index = 1
        return inner.step(model_output, t, sample + delta).prev_sample

    torch.testing.assert_close(step("unconditional"), expected(cond))
    torch.testing.assert_close(step("cfg"), expected(model_output))


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(1, 3, 4, 6, 6, generator=g)
    target = torch.randn(3, 4, 6, 6, generator=g)
    valid = torch.ones(3, 6, 6, dtype=torch.bool)
    valid[:, :, :2] = False
    valid[2, 3:] = False
    return x0, target, valid


def test_guidance_delta_is_upstreams_normalised_gradient():
    x0, target, valid = _problem()
    sigma, lr = 4.0, 0.02
    delta = guidance_delta(x0, target, valid, np.ones(3), sigma, lr, 0.2)
    # Upstream: loss = sum(mask * (x0 - target)^2) / sum(mask) with x0 = c_out F + c_skip x and
    # the network output F detached; grad wrt x, divided by its std, times lr sqrt(sigma).
    c_skip = 1 / (sigma**2 + 1)
    net = (x0 - c_skip * x0)  # any fixed network contribution
    x = x0.clone().requires_grad_(True)
    mask = valid[None, :, None].expand_as(x0).float()
    loss = (((net + c_skip * x) - target[None]) ** 2 * mask).sum() / mask.sum()
    (grad,) = torch.autograd.grad(loss, x)
    expected = -lr * math.sqrt(sigma) * grad / grad.std()
    torch.testing.assert_close(delta, expected, rtol=1e-5, atol=1e-6)


def test_guidance_delta_leaves_holes_alone_and_zero_weight_is_none():
    x0, target, valid = _problem(1)
    delta = guidance_delta(x0, target, valid, np.full(3, 0.5), 100.0, 0.5, 0.2)
    holes = ~valid[None, :, None].expand_as(delta)
    assert torch.all(delta[holes] == 0)
    assert torch.count_nonzero(delta[~holes]) > 0
    assert guidance_delta(x0, target, valid, np.ones(3), 100.0, 0.0, 0.2) is None
    assert guidance_delta(x0, target, valid, np.zeros(3), 100.0, 0.5, 0.0) is None


# ----------------------------------------------------------------------------- pipelines


@pytest.fixture(scope="module")
def svd():
    pipe = StableVideoDiffusionPipeline(
        vae=tiny_vae(0),
        image_encoder=tiny_image_encoder(0),
        unet=tiny_unet(0),
        scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
        feature_extractor=tiny_feature_extractor(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    image = (rng.random((H, W, 3)) * 255).astype(np.uint8)
    warped = np.stack([np.roll(image, 2 * f, axis=1) for f in range(FRAMES)])
    valid = np.ones((FRAMES, H, W), bool)
    valid[:, :, :12] = False  # left 12 px are holes: latent columns 0-3 after dilation
    return image, warped, valid


def _latents(pipe, image, steps=4):
    return pipe(
        PIL.Image.fromarray(image),
        height=H,
        width=W,
        num_frames=FRAMES,
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(0),
        output_type="latent",
        return_dict=False,
    )


def test_zero_weight_guidance_is_exact_noop(svd, scene):
    image, warped, valid = scene
    plain = _latents(svd, image)
    with nvs_guidance(svd, warped, valid, NVSGuidanceConfig(lr=0.0)):
        guided = _latents(svd, image)
    assert torch.equal(plain, guided)


def test_guidance_pulls_output_toward_warped_latents(svd, scene):
    image, warped, valid = scene
    targets, cells = encode_targets(svd, warped, valid)

    def dist(latents):
        d = ((latents[0].float() - targets) ** 2).mean(1)  # (F, h, w)
        return float(d[cells].mean())

    plain = dist(_latents(svd, image))
    config = NVSGuidanceConfig(lr=0.5, weights=np.ones((4, FRAMES)))
    with nvs_guidance(svd, warped, valid, config) as guided:
        out = _latents(svd, image)
    assert dist(out) < 0.6 * plain
    assert [h["rms"] > 0 for h in guided.history] == [True] * 4


def test_step_gives_no_guidance_in_holes(svd, scene):
    image, warped, valid = scene
    targets, cells = encode_targets(svd, warped, valid)
    inner = EulerDiscreteScheduler(**SVD_SCHEDULER)
    wrapper = NVSGuidedScheduler(
        inner, svd, targets, cells, NVSGuidanceConfig(lr=0.5, refresh=False, x0_pass="cfg")
    )
    wrapper.set_timesteps(4)
    g = torch.Generator().manual_seed(3)
    sample = torch.randn(1, *targets.shape, generator=g) * 10
    output = torch.randn(1, *targets.shape, generator=g)
    t = inner.timesteps[1]
    inner._step_index = 1
    guided = wrapper.step(output, t, sample).prev_sample
    inner._step_index = 1
    plain = inner.step(output, t, sample).prev_sample
    holes = ~cells[None, :, None].expand_as(plain)
    assert torch.equal(guided[holes], plain[holes])
    assert not torch.allclose(guided[~holes], plain[~holes])


def test_scheduler_and_hooks_restored_also_after_exception(svd, scene):
    image, warped, valid = scene
    original, config = svd.scheduler, dict(svd.config)
    with nvs_guidance(svd, warped, valid) as guided:
        assert svd.scheduler is guided
        _latents(svd, image, steps=2)
    assert svd.scheduler is original and not svd.unet._forward_pre_hooks
    assert dict(svd.config) == config
    with pytest.raises(ValueError, match="do not match the guidance targets"):
        with nvs_guidance(svd, warped[:3], valid[:3]):
            _latents(svd, image, steps=2)  # 4 frames against 3 targets
    assert svd.scheduler is original and not svd.unet._forward_pre_hooks
    with pytest.raises(RuntimeError, match="boom"):
        with nvs_guidance(svd, warped, valid):
            raise RuntimeError("boom")
    assert svd.scheduler is original and not svd.unet._forward_pre_hooks


def test_works_with_trajectory_attention_pipeline(scene):
    image, warped, valid = scene
    pipe = build_tiny_pipeline(seed=0)
    k = np.array([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]])
    camera = make_camera_path("orbit_left_15deg", k, W, H, FRAMES, depth=2.0)
    kwargs = dict(
        depth=np.full((H, W), 2.0), K=k, w2c=camera.w2c, height=H, width=W,
        num_inference_steps=3,
    )

    def run(config=None):
        generator = torch.Generator().manual_seed(0)
        if config is None:
            return pipe(image, generator=generator, **kwargs)
        with nvs_guidance(pipe, warped, valid, config):
            return pipe(image, generator=generator, **kwargs)

    plain = run()
    assert np.array_equal(run(NVSGuidanceConfig(lr=0.0)), plain)
    guided = run(NVSGuidanceConfig(lr=0.5, weights=np.ones((3, FRAMES))))
    assert guided.shape == plain.shape and not np.array_equal(guided, plain)
    assert not pipe.unet._forward_pre_hooks  # our recording hook is gone


# ----------------------------------------------------------------------------- the adapter

RW, RH, RFRAMES = 96, 64, 5
RK = np.array([[80.0, 0.0, 48.0], [0.0, 80.0, 32.0], [0.0, 0.0, 1.0]])


def _request(depth: bool = True) -> GenerationRequest:
    camera = make_camera_path("orbit_left_15deg", RK, RW, RH, RFRAMES, depth=2.0)
    image = (np.random.default_rng(2).random((RH, RW, 3)) * 255).astype(np.uint8)
    return GenerationRequest(
        image=image, camera=camera, seed=0, depth=np.full((RH, RW), 2.0) if depth else None
    )


def test_tiny_adapter_frames_and_K():
    method = create_method("nvs_solver", load_preset("nvs_solver_tiny")["args"])
    request = _request()
    result = method.generate(request)
    assert result.frames.shape == (RFRAMES, 72, 128, 3) and result.frames.dtype == np.uint8
    # K of the 1024x576 framing, scaled to 128x72 (x 1/8).
    _, _, k_full, _ = fit_to_resolution(request.image, request.depth, RK, 1024, 576)
    expected = k_full.copy()
    expected[:2] /= 8
    np.testing.assert_allclose(result.K, expected, rtol=1e-12)
    assert len(result.info["guidance_rms_per_step"]) == 4
    assert result.info["valid_fraction_per_frame"][0] == 1.0
    # Upstream's guidance rules are the adapter's defaults (departures are off).
    assert result.info["guidance_rules"] == {
        "compat_cutoff": True, "crop_latent": [40, 72], "x0_pass": "unconditional",
        "hole_fill": "black",
    }
    with pytest.raises(MethodUnavailable, match="depth"):
        method.generate(_request(depth=False))


def test_real_preset_without_svd_names_the_download(tmp_path):
    args = load_preset("nvs_solver")["args"]
    method = create_method("nvs_solver", {**args, "base_model": str(tmp_path / "missing")})
    with pytest.raises(MethodUnavailable, match=(
        "huggingface-cli download stabilityai/stable-video-diffusion-img2vid-xt"
    )):
        method.generate(_request())
