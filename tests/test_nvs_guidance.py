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

from benchmark.camera_paths import make_camera_path
from benchmark.generate import load_preset
from methods import create_method
from methods.base import GenerationRequest, MethodUnavailable
from methods.framing import fit_to_resolution
from trajattn.nvs_guidance import (
    NVSGuidanceConfig,
    NVSGuidedScheduler,
    encode_targets,
    guidance_delta,
    keep_closest,
    lambda_weight,
    latent_valid,
    nvs_guidance,
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
    keep = keep_closest(diff, valid, 2 / 3)  # 2 of the 3 valid entries: |0.1| and |0.3|
    assert keep.tolist() == [[[True, False], [True, False]]]
    assert not keep_closest(diff, valid, 0.0).any()
    assert keep_closest(diff, valid, 1.0).tolist() == [[[True, True], [True, False]]]


def test_keep_closest_compat_cutoff_counts_hole_pixels_once():
    # 4 channels, 1 pixel of 2 a hole: sorted |diff*valid| has 4 hole zeros first, but
    # upstream's index int(0.5 * (8 - 1)) + 1 = 4 lands on a zero: nothing valid is kept.
    diff = torch.arange(1.0, 9.0).reshape(4, 1, 2)
    valid = torch.tensor([[True, False]])
    assert not keep_closest(diff, valid, 0.5, compat_cutoff=True).any()
    assert int(keep_closest(diff, valid, 0.5).sum()) == 2  # exact: half of the 4 valid entries


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
        inner, svd, targets, cells, NVSGuidanceConfig(lr=0.5, refresh=False)
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
    with pytest.raises(MethodUnavailable, match="depth"):
        method.generate(_request(depth=False))


def test_real_preset_without_svd_names_the_download(tmp_path):
    args = load_preset("nvs_solver")["args"]
    method = create_method("nvs_solver", {**args, "base_model": str(tmp_path / "missing")})
    with pytest.raises(MethodUnavailable, match=(
        "huggingface-cli download stabilityai/stable-video-diffusion-img2vid-xt"
    )):
        method.generate(_request())
