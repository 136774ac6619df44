"""Branch training on tiny random SVD components: only the variant trains, resume is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.cameras.paths import make_camera_path
from benchmark.io import write_frames
from benchmark.sources.synthetic import canonical_K, make_scene, render_frames
from trajattn.train import TrainConfig, latest_checkpoint, load_pipeline, train

W, H, F = 32, 32, 4


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two short synthetic clips as folders of PNG frames."""
    root = tmp_path_factory.mktemp("clips")
    for seed, camera in [(0, "orbit_left_10deg"), (1, "truck_right_15pct")]:
        scene = make_scene(seed)
        K = canonical_K(W, H)
        cam = make_camera_path(camera, K, W, H, F, base_w2c=scene.base_w2c)
        frames, _ = render_frames(scene, K, cam.w2c, W, H)
        write_frames(root / f"clip{seed}", frames)
    return root


def _config(data, out, **overrides) -> TrainConfig:
    base = dict(data=str(data), out=str(out), tiny=True, num_frames=F, height=H, width=W,
                track_stride=4, steps=2, checkpoint_every=1, device="cpu", lr=1e-3)
    return TrainConfig(**{**base, **overrides})


def _state(out) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(latest_checkpoint(out / "checkpoints") / "trainable.safetensors"))


def assert_generation_loads(out, variant: str) -> None:
    """The checkpoint's trainable.safetensors is what a preset's ``weights`` takes: loaded
    into a fresh tiny UNet of that variant by the generation loader, every tensor equal."""
    from trajattn.attention import TrajectoryAttentionConfig
    from trajattn.pipeline import load_trajattn_weights
    from trajattn.tiny import build_tiny_pipeline

    trained = _state(out)
    unet = build_tiny_pipeline(seed=1, config=TrajectoryAttentionConfig(variant=variant)).unet
    load_trajattn_weights(unet, latest_checkpoint(out / "checkpoints") / "trainable.safetensors")
    state = unet.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in trained.items())


def test_inherit_training_changes_only_the_branch(clips, tmp_path):
    config = _config(clips, tmp_path / "run", steps=1)
    result = train(config)
    assert result["step"] == 1 and all(np.isfinite(result["losses"]))
    trained = _state(tmp_path / "run")
    assert trained and all(".traj_attn." in name for name in trained)
    # Only to_out can move at the first step (it starts at zero, so q/k/v get no gradient).
    initial = load_pipeline(config).unet.state_dict()
    assert not any(name in initial for name in trained)  # branch weights are new
    outs = [n for n in trained if ".to_out.0.weight" in n]
    assert any(trained[n].abs().sum() > 0 for n in outs)
    assert_generation_loads(tmp_path / "run", "inherit")


def test_tuning_trains_attn1_and_vanilla_refuses(clips, tmp_path):
    train(_config(clips, tmp_path / "tune", variant="tuning", steps=1))
    trained = _state(tmp_path / "tune")
    assert trained and all(".attn1." in name for name in trained)
    base = load_pipeline(_config(clips, tmp_path)).unet.state_dict()
    assert any(not torch.equal(trained[n], base[n]) for n in trained)
    assert_generation_loads(tmp_path / "tune", "tuning")
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(_config(clips, tmp_path / "van", variant="vanilla"))


def test_resume_continues_exactly(clips, tmp_path):
    train(_config(clips, tmp_path / "straight", steps=2))
    train(_config(clips, tmp_path / "split", steps=1))
    train(_config(clips, tmp_path / "split", steps=2))  # resumes from step 1
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


def test_gradient_checkpointing_trains_with_every_trajectory(clips, tmp_path):
    result = train(_config(clips, tmp_path / "ckpt", steps=1, gradient_checkpointing=True))
    assert result["step"] == 1 and np.isfinite(result["losses"][0])
    assert any(".traj_attn.to_out." in n for n in _state(tmp_path / "ckpt"))


def test_both_trainers_take_their_config_fields_as_flags():
    """The SVD and Wan trainers share one command line: a flag per config field, booleans as
    switches, --no-resume."""
    from trajattn.train import TrainConfig, run_training_cli
    from trajattn.wan.train import WanTrainConfig

    for config_cls in (TrainConfig, WanTrainConfig):
        seen = {}

        def fake_train(config, resume, seen=seen):
            seen.update(config=config, resume=resume)
            return {"step": 3}

        argv = ["--data", "clips", "--out", "runs/x", "--steps", "7", "--tiny", "--no-resume"]
        assert run_training_cli(config_cls, fake_train, "trainer", argv) == 0
        assert isinstance(seen["config"], config_cls)
        assert (seen["config"].data, seen["config"].out) == ("clips", "runs/x")
        assert seen["config"].steps == 7 and seen["config"].tiny is True
        assert seen["resume"] is False
        with pytest.raises(SystemExit):  # --data and --out are required
            run_training_cli(config_cls, fake_train, "trainer", ["--steps", "1"])
