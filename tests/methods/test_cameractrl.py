"""CameraCtrl-SVD natively on diffusers (methods/cameractrl_model.py) and its adapter
(methods/cameractrl.py), on tiny random models.

Upstream facts used below come from github.com/hehao13/CameraCtrl, branch ``svd``, commit
1f9d8baeff66f6c60bb9848dfafcc667b3a22a28 (file named at each use). A scratch cross-check run
while writing this (upstream modules imported from that commit, not part of the project)
found upstream's ``CameraPoseEncoder`` and ours bit-identical on shared weights, and
upstream's forked UNet vs diffusers' UNet with our processors equal to 1.2e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import UNetSpatioTemporalConditionModel

from benchmark.cameras import CameraPath
from benchmark.cameras.paths import make_camera_path
from benchmark.stages.generate import load_preset
from methods import cameractrl_model as cm
from methods import create_method
from methods.base import GenerationRequest, MethodUnavailable
from methods.camera_formats import plucker_embedding
from trajattn.tiny import tiny_unet

W, H, FRAMES = 72, 40, 4  # tiny: 9:5 like 576x320; latents 18x10 (VAE factor 4)
K = np.array([[50.0, 0.0, 36.0], [0.0, 50.0, 20.0], [0.0, 0.0, 1.0]])

#: Upstream ``attention_processor_state_dict`` names for SVD / SVD-XT: ``train_camera_control.py``
#: saves the UNet parameters whose names contain "merge"; ``unet.py``
#: ``set_pose_cond_attn_processor`` (add_temporal, attn_processor_name "attn1", query and
#: key/value condition -> ``qkv_merge``) puts one on ``attn1`` of each temporal transformer
#: block of diffusers' SVD layout: down_blocks 0-2 x 2 attentions, mid_block, up_blocks 1-3 x 3.
UPSTREAM_PROCESSOR_WIDTHS = {
    **{f"down_blocks.{b}.attentions.{a}": w for b, w in enumerate((320, 640, 1280))
       for a in (0, 1)},
    "mid_block.attentions.0": 1280,
    **{f"up_blocks.{b}.attentions.{a}": w for b, w in ((1, 1280), (2, 640), (3, 320))
       for a in (0, 1, 2)},
}
UPSTREAM_PROCESSOR_SUFFIX = ".temporal_transformer_blocks.0.attn1.processor.qkv_merge."
#: Pose level read by each block (upstream ``unet.py`` forward: ``pose_features[block_idx]``
#: down, ``pose_features[-1]`` mid, ``pose_features[-(block_idx + 1)]`` up).
UPSTREAM_LEVELS = {"down_blocks.0": 0, "down_blocks.1": 1, "down_blocks.2": 2, "mid_block": 3,
                   "up_blocks.1": 2, "up_blocks.2": 1, "up_blocks.3": 0}
#: Some upstream ``pose_encoder_state_dict`` entries for ``svdxt_320_576_cameractrl.yaml``
#: (``pose_adaptor.py`` ``CameraPoseEncoder``/``ResnetBlock``; ``motion_module.py``
#: ``TemporalTransformerBlock``: diffusers ``Attention`` without qkv bias, ``PositionalEncoding``
#: buffer ``pe`` (1, max_len, C), ``FeedForward`` geglu with inner width 4C).
UPSTREAM_ENCODER_SHAPES = {
    "encoder_conv_in.weight": (320, 384, 3, 3),
    "encoder_down_conv_blocks.0.0.block1.weight": (320, 320, 3, 3),
    "encoder_down_conv_blocks.0.0.block2.weight": (320, 320, 1, 1),
    "encoder_down_conv_blocks.1.0.in_conv.weight": (640, 320, 1, 1),
    "encoder_down_conv_blocks.2.0.in_conv.bias": (1280,),
    "encoder_down_conv_blocks.3.1.block2.bias": (1280,),
    "encoder_down_attention_blocks.0.0.attention_blocks.0.to_q.weight": (320, 320),
    "encoder_down_attention_blocks.1.1.attention_blocks.0.to_out.0.bias": (640,),
    "encoder_down_attention_blocks.3.1.attention_blocks.0.pos_encoder.pe": (1, 25, 1280),
    "encoder_down_attention_blocks.2.0.norms.0.weight": (1280,),
    "encoder_down_attention_blocks.0.1.ff.net.0.proj.weight": (2560, 320),
    "encoder_down_attention_blocks.0.1.ff.net.2.weight": (320, 1280),
    "encoder_down_attention_blocks.3.0.ff_norm.bias": (1280,),
}
#: 36 conv tensors (block1/block2 weight+bias per residual block, 8 blocks, + in_conv at
#: levels 1 and 2 where the width changes), 8 temporal blocks x 14 (q, k, v, out w+b, pe,
#: norm w+b, ff 4, ff_norm w+b), conv_in w+b.
UPSTREAM_ENCODER_NUM_KEYS = 8 * 4 + 2 * 2 + 8 * 14 + 2


def rays(camera: CameraPath) -> torch.Tensor:
    return torch.from_numpy(plucker_embedding(camera, H, W))[None]


def camera(kind: str = "orbit_left_15deg", frames: int = FRAMES) -> CameraPath:
    return make_camera_path(kind, K, W, H, frames, depth=2.0)


def unet_inputs(batch: int = 2, frames: int = FRAMES, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, frames, 8, H // 4, W // 4, generator=g),
        torch.tensor(0.7),
        torch.randn(batch, 1, 32, generator=g),
        torch.tensor([[6.0, 127.0, 0.02]] * batch),
    )


def run(unet, features, inputs):
    sample, t, ehs, ids = inputs
    with torch.no_grad(), cm.pose_features(unet, features):
        return unet(sample, t, ehs, added_time_ids=ids).sample


def randomise_merges(unet, seed: int = 1, std: float = 0.1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in cm.processor_parameters(unet).values():
            p.copy_(torch.randn(p.shape, generator=g) * std)


@pytest.fixture(scope="module")
def encoder():
    return cm.tiny_pose_encoder(seed=3)


@pytest.fixture(scope="module")
def features(encoder):
    with torch.no_grad():
        return encoder(rays(camera()))


# ------------------------------------------------------------------------------ pose encoder


def test_pose_encoder_levels_tiny(encoder):
    with torch.no_grad():
        out = encoder(torch.randn(2, 5, 6, H, W))
    assert [tuple(o.shape) for o in out] == [(2, 32, 5, 10, 18), (2, 64, 5, 5, 9)]


def test_pose_encoder_levels_and_keys_real_config():
    with torch.device("meta"):
        enc = cm.CameraPoseEncoder(**cm.SVD_XT_POSE_ENCODER)
        out = enc(torch.zeros(1, 25, 6, 320, 576))
    assert [tuple(o.shape) for o in out] == [
        (1, 320, 25, 40, 72), (1, 640, 25, 20, 36), (1, 1280, 25, 10, 18), (1, 1280, 25, 5, 9)
    ]
    state = enc.state_dict()
    assert len(state) == UPSTREAM_ENCODER_NUM_KEYS
    for key, shape in UPSTREAM_ENCODER_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    with torch.device("meta"):
        svd = cm.CameraPoseEncoder(**cm.SVD_POSE_ENCODER).state_dict()
    assert tuple(svd["encoder_down_attention_blocks.0.0.attention_blocks.0.pos_encoder.pe"].shape) \
        == (1, 14, 320)  # svd_320_576_cameractrl.yaml: temporal_position_encoding_max_len 14


def test_position_table_hand_values():
    table = cm.sinusoidal_table(4, 6)[0]
    assert table[0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    w1 = 10000.0 ** (-2 / 6)
    np.testing.assert_allclose(
        table[2].numpy(), [np.sin(2), np.cos(2), np.sin(2 * w1), np.cos(2 * w1),
                           np.sin(2 * w1**2), np.cos(2 * w1**2)], rtol=1e-6
    )


def test_pose_encoder_knows_frame_order():
    """Convs act per frame and attention alone is permutation-equivariant over frames, so only
    the position table (upstream ``temporal_position_encoding: true``) breaks the symmetry."""
    enc = cm.tiny_pose_encoder(seed=3)
    x = torch.randn(1, 4, 6, H, W)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        out, out_perm = enc(x), enc(x[:, perm])
        for layer in enc.modules():
            if isinstance(layer, cm._PositionTable):
                layer.pe.zero_()
        flat, flat_perm = enc(x), enc(x[:, perm])
    torch.testing.assert_close(flat_perm[0], flat[0][:, :, perm])
    assert (out_perm[0] - out[0][:, :, perm]).abs().max() > 1e-4


def test_pose_encoder_refuses_more_frames_than_its_table():
    enc = cm.tiny_pose_encoder(max_frames=3)
    with pytest.raises(ValueError, match="4 frames .* position table has 3"):
        enc(torch.zeros(1, 4, 6, H, W))


# ------------------------------------------------------------------------------- processors


def test_processors_sit_on_temporal_attn1_with_upstream_names_and_levels():
    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel()  # SVD's config
    procs = cm.attach_pose_processors(unet)
    expected = {
        f"{block}{UPSTREAM_PROCESSOR_SUFFIX}{kind}": (w, w) if kind == "weight" else (w,)
        for block, w in UPSTREAM_PROCESSOR_WIDTHS.items() for kind in ("weight", "bias")
    }
    got = {k: tuple(p.shape) for k, p in cm.processor_parameters(unet).items()}
    assert got == expected and len(got) == 32
    assert {k: v for k, v in unet.state_dict().items() if "merge" in k}.keys() == expected.keys()
    for key, proc in procs.items():
        assert proc.level == UPSTREAM_LEVELS[key.split(".attentions")[0]], key
    spatial = [k for k in unet.attn_processors if ".transformer_blocks." in k]
    assert spatial and not any(
        isinstance(unet.attn_processors[k], cm.PoseCondAttnProcessor) for k in spatial
    )


def test_zero_initialised_processors_are_an_exact_noop(features):
    inputs = unet_inputs()
    plain = tiny_unet(0)
    with torch.no_grad():
        reference = plain(inputs[0], inputs[1], inputs[2], added_time_ids=inputs[3]).sample
    unet = tiny_unet(0)
    cm.attach_pose_processors(unet)
    assert all(not p.any() for p in cm.processor_parameters(unet).values())
    assert torch.equal(run(unet, features, inputs), reference)


def test_merge_formula_and_token_layout():
    r"""``x' = qkv_merge(x + pose) * scale + x`` (upstream ``PoseAdaptorAttnProcessor``), with
    feature (b, c, f, h, w) -> tokens (b*h*w, f, c) (upstream ``attention.py``)."""
    unet = tiny_unet(0)
    procs = cm.attach_pose_processors(unet)
    proc = next(p for k, p in procs.items() if k.startswith("down_blocks.0"))
    calls = []
    proc.base = lambda attn, x, *args: calls.append(x) or x
    with torch.no_grad():
        proc.qkv_merge.weight.copy_(torch.eye(32))
    proc.scale = 0.5
    b, c, f, h, w = 1, 32, 3, 2, 5
    feat = torch.arange(b * c * f * h * w, dtype=torch.float32).reshape(b, c, f, h, w)
    x = torch.randn(2 * h * w, f, c)  # two CFG halves
    features = [feat, torch.zeros(1, 64, f, 1, 1)]
    with cm.pose_features(unet, features):
        proc(None, x)
    pose = torch.empty(2 * h * w, f, c)
    for half in range(2):
        for i in range(h):
            for j in range(w):
                pose[half * h * w + i * w + j] = feat[0, :, :, i, j].T
    torch.testing.assert_close(calls[0], (x + pose) * 0.5 + x)


def test_cameras_change_the_output_once_merges_are_trained(encoder):
    unet = tiny_unet(0)
    cm.attach_pose_processors(unet)
    randomise_merges(unet)
    inputs = unet_inputs()
    with torch.no_grad():
        orbit = encoder(rays(camera("orbit_left_15deg")))
        dolly = encoder(rays(camera("dolly_in_20pct")))
    a, b = run(unet, orbit, inputs), run(unet, dolly, inputs)
    assert (a - b).abs().max() > 1e-3
    assert torch.equal(run(unet, orbit, inputs), a)
    # both CFG halves get the same features: implicit repeat == upstream torch.cat([x, x])
    assert torch.equal(run(unet, [torch.cat([x, x]) for x in orbit], inputs), a)


def test_processors_need_features_and_matching_shapes(features):
    unet = tiny_unet(0)
    cm.attach_pose_processors(unet)
    sample, t, ehs, ids = unet_inputs()
    with pytest.raises(RuntimeError, match="no pose features set"):
        unet(sample, t, ehs, added_time_ids=ids)
    with pytest.raises(ValueError, match="does not fit hidden states"):
        run(unet, features, unet_inputs(frames=FRAMES + 1))
    with pytest.raises(ValueError, match="1 pose feature levels for a 2-level UNet"):
        run(unet, features[:1], unet_inputs())
    with pytest.raises(RuntimeError, match="already attached"):
        cm.attach_pose_processors(unet)


# ------------------------------------------------------------------------------ checkpoints


def test_checkpoint_round_trip_in_upstream_layout(tmp_path, features, encoder):
    unet = tiny_unet(0)
    cm.attach_pose_processors(unet)
    randomise_merges(unet)
    path = tmp_path / "CameraCtrl_tiny.ckpt"
    torch.save({
        "pose_encoder_state_dict": encoder.state_dict(),
        "attention_processor_state_dict": cm.processor_state_dict(unet),
    }, path)
    inputs = unet_inputs()
    reference = run(unet, features, inputs)

    fresh_unet, fresh_encoder = tiny_unet(0), cm.tiny_pose_encoder(seed=9)
    cm.attach_pose_processors(fresh_unet)
    cm.load_cameractrl_checkpoint(fresh_unet, fresh_encoder, path)
    with torch.no_grad():
        fresh_features = fresh_encoder(rays(camera()))
    assert all(torch.equal(a, b) for a, b in zip(fresh_features, features, strict=True))
    assert torch.equal(run(fresh_unet, fresh_features, inputs), reference)


def test_misfitting_state_dicts_name_the_key(encoder):
    unet = tiny_unet(0)
    cm.attach_pose_processors(unet)
    state = cm.processor_state_dict(unet)
    key = f"mid_block.attentions.0{UPSTREAM_PROCESSOR_SUFFIX}weight"
    bad = {**state, key: torch.zeros(32, 32)}
    with pytest.raises(cm.CheckpointMismatchError, match=rf"{key}: checkpoint \(32, 32\) vs "
                                                         r"model \(64, 64\)"):
        cm.load_processor_state_dict(unet, bad)
    missing = {k: v for k, v in state.items() if k != key}
    with pytest.raises(cm.CheckpointMismatchError, match="1 missing"):
        cm.load_processor_state_dict(unet, missing)
    enc_state = dict(encoder.state_dict())
    pe = "encoder_down_attention_blocks.0.0.attention_blocks.0.pos_encoder.pe"
    enc_state[pe] = torch.zeros(1, 14, 32)  # an SVD (14-frame) table in a 25-frame encoder
    with pytest.raises(cm.CheckpointMismatchError, match=f"{pe}: checkpoint"):
        cm.load_pose_encoder_state_dict(cm.tiny_pose_encoder(), enc_state)


# ------------------------------------------------------------------------- pipeline, adapter


def test_pipeline_camera_or_rays_give_the_same_frames():
    pipe = cm.build_tiny_pipeline()
    image = (np.random.default_rng(2).random((H, W, 3)) * 255).astype(np.uint8)
    cam = camera(frames=3)
    kw = {"height": H, "width": W, "num_inference_steps": 1}
    by_camera = pipe(image, camera=cam, generator=torch.Generator().manual_seed(0), **kw)
    by_rays = pipe(image, plucker=plucker_embedding(cam, H, W),
                   generator=torch.Generator().manual_seed(0), **kw)
    assert by_camera.shape == (3, H, W, 3) and by_camera.dtype == np.uint8
    assert np.array_equal(by_camera, by_rays)
    with pytest.raises(ValueError, match="num_frames 4 but the rays have 3"):
        pipe(image, camera=cam, num_frames=4, **kw)


def adapter_request(seed: int = 0, kind: str = "orbit_left_15deg") -> GenerationRequest:
    k = np.array([[40.0, 0.0, 24.0], [0.0, 40.0, 20.0], [0.0, 0.0, 1.0]])
    cam = make_camera_path(kind, k, 48, 40, 5, depth=2.0)
    image = (np.random.default_rng(1).random((40, 48, 3)) * 255).astype(np.uint8)
    return GenerationRequest(image=image, camera=cam, seed=seed)


def test_tiny_adapter_frames_and_K():
    method = create_method("cameractrl", {**load_preset("cameractrl_tiny")["args"],
                                          "num_inference_steps": 2})
    result = method.generate(adapter_request())
    assert result.frames.shape == (5, 40, 72, 3) and result.frames.dtype == np.uint8
    # 48x40 -> 9:5 crop of 48x27 rows 6..32 (round(48 * 40 / 72) = 27), then x1.5, x40/27
    expected = np.array([[40.0 * 1.5, 0.0, 24.0 * 1.5],
                         [0.0, 40.0 * 40 / 27, (20.0 - 6) * 40 / 27],
                         [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(result.K, expected)
    assert result.info["crop_box_xywh"] == [0, 6, 48, 27]
    assert result.info["resolution"] == [72, 40]
    assert np.array_equal(method.generate(adapter_request()).frames, result.frames)
    other = method.generate(adapter_request(kind="dolly_in_20pct")).frames
    assert not np.array_equal(other, result.frames)  # the camera reaches the model


def test_adapter_refuses_more_frames_than_the_checkpoint_has():
    method = create_method("cameractrl", {**load_preset("cameractrl_tiny")["args"],
                                          "max_frames": 4})
    with pytest.raises(ValueError, match="max_frames=4 cannot make 5 frames"):
        method.generate(adapter_request())


@pytest.mark.parametrize("preset, file", [
    ("cameractrl", "CameraCtrl_svdxt.ckpt"), ("cameractrl_svd", "CameraCtrl_svd.ckpt")
])
def test_real_presets_without_weights_say_what_to_download(monkeypatch, preset, file):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    method = create_method("cameractrl", load_preset(preset)["args"])
    with pytest.raises(MethodUnavailable) as info:
        method.generate(adapter_request())
    message = str(info.value)
    assert f"huggingface-cli download hehao13/CameraCtrl_SVD_ckpts {file}" in message
    assert "huggingface-cli download stabilityai/stable-video-diffusion-img2vid" in message


def test_local_checkpoint_path_missing_names_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    method = create_method("cameractrl", {"checkpoint": str(tmp_path / "CameraCtrl_svdxt.ckpt")})
    with pytest.raises(MethodUnavailable,
                       match="huggingface-cli download hehao13/CameraCtrl_SVD_ckpts "
                             "CameraCtrl_svdxt.ckpt"):
        method.pipeline()
