"""Wan trajectory-attention pipeline, flow-matching training and the ``trajattn_wan`` adapter,
on tiny random Wan components (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.cameras.paths import make_camera_path
from benchmark.io import write_frames
from benchmark.sources.synthetic import canonical_K, make_scene, render_frames
from methods.base import MethodUnavailable
from methods.trajattn_wan import WanTrajectoryAttentionMethod, hold_last_pose, wan_frame_count
from trajattn.attention import TrajectoryAttentionConfig
from trajattn.pipeline import MissingModelError
from trajattn.train import latest_checkpoint
from trajattn.wan import attention as wan_attention
from trajattn.wan import tiny
from trajattn.wan.train import WanTrainConfig, load_checkpoint, train

S, F = 32, 5  # 32x32 pixels (2x2 patch grid), 5 frames (2 latent frames)


def _camera_inputs(shift: float):
    rng = np.random.default_rng(0)
    image = (rng.random((S, S, 3)) * 255).astype(np.uint8)
    depth = np.full((S, S), 2.0)
    K = np.array([[30.0, 0, S / 2], [0, 30.0, S / 2], [0, 0, 1]])
    w2c = np.repeat(np.eye(4)[None], F, 0)
    w2c[:, 0, 3] = np.linspace(0, shift, F)
    return image, depth, K, w2c


def _generate(pipe, shift: float, **kwargs):
    image, depth, K, w2c = _camera_inputs(shift)
    embeds, negative = tiny.tiny_prompt_embeds()
    return pipe(
        image, depth=depth, K=K, w2c=w2c, height=S, width=S, num_inference_steps=2,
        prompt_embeds=embeds, negative_prompt_embeds=negative,
        generator=torch.Generator().manual_seed(0), **kwargs,
    )


@pytest.fixture(scope="module")
def pipe():
    return tiny.build_tiny_pipeline(config=TrajectoryAttentionConfig(variant="inherit"))


def test_pipeline_follows_the_trajectories_deterministically(pipe):
    first = _generate(pipe, 0.3)
    assert first.shape == (F, S, S, 3) and first.dtype == np.uint8
    assert np.array_equal(first, _generate(pipe, 0.3))
    assert not np.array_equal(first, _generate(pipe, -0.3))  # other camera, other frames


def test_both_guidance_passes_attend_along_trajectories(pipe, monkeypatch):
    calls = []
    original = wan_attention.trajectory_attention

    def counting(*args, **kwargs):
        calls.append(args[1].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(wan_attention, "trajectory_attention", counting)
    blocks, steps = len(pipe.transformer.blocks), 2
    _generate(pipe, 0.3, guidance_scale=5.0)
    assert len(calls) == 2 * steps * blocks  # conditional and unconditional passes
    calls.clear()
    _generate(pipe, 0.3, guidance_scale=1.0)
    assert len(calls) == steps * blocks


def test_pipeline_refuses_frame_counts_wans_vae_cannot_encode(pipe):
    image, depth, K, w2c = _camera_inputs(0.3)
    with pytest.raises(ValueError, match="4k \\+ 1"):
        pipe(image, depth=depth, K=K, w2c=w2c[:4], height=S, width=S)


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two short synthetic clips as folders of PNG frames."""
    root = tmp_path_factory.mktemp("clips")
    for seed, camera in [(0, "orbit_left_10deg"), (1, "truck_right_15pct")]:
        scene = make_scene(seed)
        K = canonical_K(S, S)
        cam = make_camera_path(camera, K, S, S, F, base_w2c=scene.base_w2c)
        frames, _ = render_frames(scene, K, cam.w2c, S, S)
        write_frames(root / f"clip{seed}", frames)
    return root


def _config(data, out, **overrides) -> WanTrainConfig:
    base = dict(data=str(data), out=str(out), tiny=True, num_frames=F, height=S, width=S,
                track_stride=4, steps=2, checkpoint_every=1, device="cpu", lr=1e-3)
    return WanTrainConfig(**{**base, **overrides})


def _saved(out) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(latest_checkpoint(out / "checkpoints") / "trainable.safetensors"))


def _all_parameters(config: WanTrainConfig, checkpoint=None) -> dict[str, torch.Tensor]:
    """Every transformer parameter after loading ``checkpoint`` into a fresh model."""
    model = tiny.tiny_transformer(config.seed)
    wan_attention.apply_trajectory_attention(
        model, TrajectoryAttentionConfig(variant=config.variant, seed=config.seed)
    )
    if checkpoint is not None:
        params = wan_attention.trainable_parameters(model)
        load_checkpoint(checkpoint, model, torch.optim.Adam(params))
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize(
    "variant,dtype", [("inherit", "float32"), ("tuning", "float32"), ("inherit", "bfloat16")]
)
def test_one_training_step_changes_exactly_the_variants_parameters(
    clips, tmp_path, variant, dtype
):
    """bfloat16: frozen weights in bfloat16, the branch trained (and saved) in float32."""
    config = _config(clips, tmp_path, variant=variant, steps=1, dtype=dtype)
    result = train(config)
    assert result["step"] == 1 and np.isfinite(result["losses"]).all()
    before = _all_parameters(config)
    after = _all_parameters(config, latest_checkpoint(tmp_path / "checkpoints"))
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    saved = _saved(tmp_path)
    assert all(t.dtype == torch.float32 for t in saved.values())
    marker = ".traj_attn." if variant == "inherit" else ".attn1."
    expected = {n for n in before if marker in n}
    if variant == "inherit":  # the zero output projection gets a gradient first
        assert {n for n in changed if ".to_out." in n}
    assert changed and changed <= expected
    # and the variant's parameters are exactly those named by the attention module
    model = tiny.tiny_transformer()
    wan_attention.apply_trajectory_attention(model, TrajectoryAttentionConfig(variant=variant))
    assert set(wan_attention.named_trainable_parameters(model)) == expected


def test_resume_is_bit_exact(clips, tmp_path):
    straight = train(_config(clips, tmp_path / "a", steps=2))
    train(_config(clips, tmp_path / "b", steps=1))
    resumed = train(_config(clips, tmp_path / "b", steps=2))
    assert resumed["losses"] == straight["losses"][1:]
    a, b = _saved(tmp_path / "a"), _saved(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_vanilla_trains_nothing_and_tuning_needs_float32(clips, tmp_path):
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(_config(clips, tmp_path, variant="vanilla"))
    with pytest.raises(ValueError, match="use dtype float32"):
        train(_config(clips, tmp_path, variant="tuning", dtype="bfloat16"))


# ------------------------------------------------------------------------------ adapter


def test_wan_frame_counts_and_held_poses():
    assert [wan_frame_count(n) for n in (1, 5, 6, 14, 25, 81)] == [1, 5, 9, 17, 25, 81]
    w2c = np.stack([np.eye(4) * (i + 1) for i in range(3)])
    held = hold_last_pose(w2c, 5)
    assert held.shape == (5, 4, 4) and np.array_equal(held[:3], w2c)
    assert np.array_equal(held[3], w2c[2]) and np.array_equal(held[4], w2c[2])


def test_check_method_passes_for_the_tiny_preset():
    from benchmark.stages.conformance import check_method

    checks = check_method("trajattn_wan_tiny", num_frames=6)
    assert all(c.passed for c in checks), [(c.name, c.detail) for c in checks]
    assert len(checks) > 1  # it ran, it was not refused


def test_real_preset_without_weights_is_a_recorded_failure_naming_the_download(
    tmp_path, monkeypatch
):
    from benchmark.stages.generate import load_preset
    from methods import create_method

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the preset's local_files_only: null
    preset = load_preset("trajattn_wan")
    method = create_method(preset["adapter"], preset["args"])  # Wan not in the cache here
    with pytest.raises(MethodUnavailable, match="huggingface-cli download Wan-AI/Wan2.1-I2V"):
        method.pipeline()
    method = WanTrajectoryAttentionMethod(
        {"base_model": str(tmp_path / "no-wan-here"), "local_files_only": True}
    )
    with pytest.raises(MethodUnavailable, match="huggingface-cli download Wan-AI/Wan2.1-I2V"):
        method.pipeline()
    method = WanTrajectoryAttentionMethod({"weights": None, "local_files_only": True})
    with pytest.raises(MethodUnavailable, match="python -m trajattn.wan.train"):
        method.pipeline()


def test_from_pretrained_loads_a_saved_wan_folder_and_the_branch_weights(tmp_path):
    """The real-model path on a tiny saved pipeline: Wan's dtypes (bfloat16 transformer,
    float32 VAE and image encoder), trained branch weights loaded, frames generated."""
    from diffusers import WanImageToVideoPipeline

    from trajattn.wan.pipeline import WanTrajectoryPipeline
    from trajattn.wan.weights import save_weights

    WanImageToVideoPipeline(**tiny.tiny_components()).save_pretrained(tmp_path / "wan")
    trained = tiny.tiny_transformer()
    wan_attention.apply_trajectory_attention(trained, TrajectoryAttentionConfig(variant="addon"))
    weights = save_weights(trained, tmp_path / "branch.safetensors")
    pipe = WanTrajectoryPipeline.from_pretrained(
        tmp_path / "wan", trajattn_weights=weights, variant="inherit", local_files_only=True,
        tokenizer=None, text_encoder=None,
        dtype={"default": torch.bfloat16, "vae": torch.float32, "image_encoder": torch.float32},
    )
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.vae.dtype == torch.float32
    for name, param in wan_attention.named_trainable_parameters(pipe.transformer).items():
        assert param.dtype == torch.bfloat16
        assert torch.equal(param, trained.get_parameter(name).detach().to(torch.bfloat16))
    pipe.set_progress_bar_config(disable=True)
    frames = _generate(pipe, 0.3)
    assert frames.shape == (F, S, S, 3) and frames.std() > 0
    with pytest.raises(MissingModelError, match="python -m trajattn.wan.train"):
        WanTrajectoryPipeline.from_pretrained(
            tmp_path / "wan", trajattn_weights=tmp_path / "missing.safetensors",
            local_files_only=True, tokenizer=None, text_encoder=None,
        )


def test_adapter_generates_the_next_4k_plus_1_frames_with_the_last_pose_held():
    """6 requested frames: the pipeline runs 9 frames along the path extended by its last
    pose, the adapter returns the first 6 and the 6 frames' trajectories as extras."""
    from benchmark.cameras.paths import make_camera_path
    from benchmark.stages.generate import load_preset
    from methods import create_method
    from methods.base import GenerationRequest
    from trajattn.trajectories import trajectories_from_depth

    K = np.array([[40.0, 0.0, 32.0], [0.0, 40.0, 32.0], [0.0, 0.0, 1.0]])
    camera = make_camera_path("orbit_left_15deg", K, 64, 64, 6, depth=2.0)
    image = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    depth = np.full((64, 64), 2.0)
    method = create_method("trajattn_wan", load_preset("trajattn_wan_tiny")["args"])
    result = method.generate(GenerationRequest(image=image, camera=camera, seed=3, depth=depth))
    assert result.frames.shape == (6, 64, 64, 3) and result.info["generated_frames"] == 9
    w2c = hold_last_pose(camera.w2c, 9)
    traj = trajectories_from_depth(depth, K, w2c, stride=4)
    embeds, negative = tiny.tiny_prompt_embeds(0)
    direct = method.pipeline()(
        image, tracks=traj.tracks, visible=traj.visible, height=64, width=64,
        num_inference_steps=4, prompt_embeds=embeds, negative_prompt_embeds=negative,
        generator=torch.Generator().manual_seed(3),
    )
    assert np.array_equal(result.frames, direct[:6])
    step = result.info["trajectory_extras_stride"] // 4
    assert result.extras["tracks"].shape == (6, (16 // step) ** 2, 2)
    assert np.array_equal(result.extras["tracks"][:, 0], traj.tracks[:6, 0])
