"""MotionCtrl-SVD and Motion-I2V adapters through upstream checkouts (methods/upstream.py).

The upstream models cannot run here. The CONTRACT tests configure each adapter with this
interpreter and ``tests/data/upstream_standin.py`` as driver: the stand-in checks that the files
it receives are in the upstream formats (facts from TencentARC/MotionCtrl@0c5cc12 branch svd,
``main/inference/motionctrl_cmcm.py::get_RT``, and G-U-N/Motion-I2V@bc787e1,
``scripts/app.py::Drag.forward_sample``) and returns the input image repeated, so only the
plumbing is tested, never a result.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from benchmark.cameras import CameraPath
from methods.base import GenerationRequest, MethodUnavailable
from methods.framing import fit_to_resolution
from methods.motion_i2v import MOTION_I2V_SPEC, OFF_IMAGE, MotionI2V, stage2_flow
from methods.motionctrl import MOTIONCTRL_COMMIT, MOTIONCTRL_SPEC, MotionCtrl
from methods.upstream import UpstreamError, UpstreamRunner

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "data" / "upstream_standin.py"
MOTIONCTRL_WEIGHTS = ("checkpoints/motionctrl_svd.ckpt",
                      "configs/inference/config_motionctrl_cmcm.yaml")


@pytest.fixture(autouse=True)
def work_dirs_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work dirs kept by the runner land in the test's tmp_path, not in /tmp."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def fake_checkout(root: Path, required: list[str]) -> Path:
    """A folder with empty placeholders where the adapter looks for upstream files."""
    repo = root / "repo"
    for rel in required:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("")
    return repo


@pytest.fixture
def motionctrl_repo(tmp_path: Path) -> Path:
    return fake_checkout(tmp_path, [r for r, _ in MOTIONCTRL_SPEC.required] +
                         list(MOTIONCTRL_WEIGHTS))


@pytest.fixture
def motion_i2v_repo(tmp_path: Path) -> Path:
    return fake_checkout(tmp_path, [r for r, _ in MOTION_I2V_SPEC.required])


def standin_conf(repo: Path, **extra) -> dict:
    return {"repo_dir": str(repo), "python": sys.executable, "driver": str(STANDIN), **extra}


def gradient_image(width: int, height: int) -> np.ndarray:
    x, y = np.meshgrid(np.linspace(0, 255, width), np.linspace(0, 255, height))
    return np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)


def truck_camera(width: int, height: int, frames: int, step: float, f: float,
                 world_rot: np.ndarray | None = None) -> CameraPath:
    """Camera trucking right by ``step`` per frame along its own x axis; frame 0's camera sits
    at an arbitrary world pose (rotation ``world_rot``, centre (1, 2, 3))."""
    c2w0 = np.eye(4)
    c2w0[:3, :3] = np.eye(3) if world_rot is None else world_rot
    c2w0[:3, 3] = [1.0, 2.0, 3.0]
    w2c = []
    for i in range(frames):
        move = np.eye(4)
        move[0, 3] = step * i
        w2c.append(np.linalg.inv(c2w0 @ move))
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    return CameraPath(K=K, w2c=np.array(w2c), width=width, height=height)


def rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


# --- MotionCtrl ------------------------------------------------------------------------------


def test_motionctrl_contract_with_standin(motionctrl_repo: Path) -> None:
    """CONTRACT: 14 frames, the pose file and image in upstream format, frames read back."""
    image = gradient_image(512, 384)  # 4:3 -> centre crop to 16:9, resize to 1024x576
    camera = truck_camera(512, 384, 14, 0.05, 400.0, rot_y(30))
    method = MotionCtrl(standin_conf(motionctrl_repo))
    result = method.generate(GenerationRequest(image=image, camera=camera, seed=3))
    fitted, _, K, _ = fit_to_resolution(image, None, camera.K, 1024, 576)
    assert result.frames.shape == (14, 576, 1024, 3)
    assert np.array_equal(result.frames, np.broadcast_to(fitted, result.frames.shape))
    np.testing.assert_allclose(result.K, K)
    np.testing.assert_allclose(result.K, [[800, 0, 512], [0, 800, 288], [0, 0, 1]])
    assert result.info["upstream_commit_pinned"] == MOTIONCTRL_COMMIT
    assert result.info["translation_scale"] == 4.0
    assert result.info["workdir"] is None  # removed after success


@pytest.mark.parametrize(("extra", "scale"), [({"translation_scale": 2.0}, 2.0), ({}, 4.0)])
def test_motionctrl_pose_file_hand_computed(motionctrl_repo: Path, extra: dict,
                                            scale: float) -> None:
    """Trucking right 0.1 per frame from a rotated, offset world pose: relative w2c rows are
    [I | (-0.1 i * scale, 0, 0)] whatever the world frame; the default scale is 4 (upstream's
    example pose files reach |t| ~1.1 at frame 14; our paths 0.15-0.3)."""
    camera = truck_camera(1024, 576, 14, 0.1, 900.0, rot_y(-40))
    method = MotionCtrl(standin_conf(motionctrl_repo, keep_workdir=True, **extra))
    result = method.generate(GenerationRequest(image=gradient_image(1024, 576), camera=camera))
    workdir = Path(result.info["workdir"])
    rows = np.array(json.loads((workdir / "camera_pose.json").read_text()))
    expected = np.array([[1, 0, 0, -0.1 * scale * i, 0, 1, 0, 0, 0, 0, 1, 0]
                         for i in range(14)])
    np.testing.assert_allclose(rows, expected, atol=1e-12)
    assert result.info["translation_scale"] == scale
    settings = json.loads((workdir / "settings.json").read_text())
    assert settings["seed"] == 0 and settings["num_steps"] == 25 and settings["num_frames"] == 14


@pytest.mark.parametrize("frames", [5, 16, 25])
def test_motionctrl_refuses_other_frame_counts_before_launching(tmp_path: Path,
                                                                motionctrl_repo: Path,
                                                                frames: int) -> None:
    """Upstream hard-codes 14 frames: other counts are refused with the reason, and the
    driver (here one that would leave a marker file) never runs."""
    marker = tmp_path / "launched"
    driver = tmp_path / "driver.py"
    driver.write_text(f"open({str(marker)!r}, 'w').close()\n")
    conf = {**standin_conf(motionctrl_repo), "driver": str(driver)}
    camera = truck_camera(1024, 576, frames, 0.1, 900.0)
    with pytest.raises(ValueError, match=r"14 frames only.*modified_svd\.py.*got " + str(frames)):
        MotionCtrl(conf).generate(GenerationRequest(image=gradient_image(1024, 576),
                                                    camera=camera))
    assert not marker.exists()


def test_standin_rejects_pose_not_relative(motionctrl_repo: Path) -> None:
    """The stand-in can fail: a pose file whose frame 0 is not [I|0] is refused, and the
    runner reports the driver's message."""
    runner = UpstreamRunner(MOTIONCTRL_SPEC, motionctrl_repo, sys.executable, STANDIN, 60)

    def write(workdir: Path) -> None:
        from PIL import Image

        Image.fromarray(gradient_image(1024, 576)).save(workdir / "image.png")
        rows = [[1, 0, 0, 0.5, 0, 1, 0, 0, 0, 0, 1, 0]] * 3
        (workdir / "camera_pose.json").write_text(json.dumps(rows))

    with pytest.raises(UpstreamError, match=r"(?s)status 2.*frame 0 must be \[I\|0\]"):
        runner.run(write, {"image": "image.png", "pose_file": "camera_pose.json"}, 3, 1024, 576)


@pytest.mark.parametrize("missing", ["repo", "python", "weights"])
def test_motionctrl_unavailable_names_setup(tmp_path: Path, motionctrl_repo: Path,
                                            missing: str) -> None:
    conf = standin_conf(motionctrl_repo)
    if missing == "repo":
        conf["repo_dir"] = str(tmp_path / "nowhere")
    elif missing == "python":
        conf["python"] = str(tmp_path / "env" / "bin" / "python")
    else:
        (motionctrl_repo / "checkpoints" / "motionctrl_svd.ckpt").unlink()
    camera = truck_camera(64, 36, 14, 0.1, 50.0)
    with pytest.raises(MethodUnavailable) as info:
        MotionCtrl(conf).generate(GenerationRequest(image=gradient_image(64, 36), camera=camera))
    message = str(info.value)
    assert "bash scripts/setup_motionctrl.sh" in message
    if missing == "weights":
        assert "huggingface-cli download TencentARC/MotionCtrl motionctrl_svd.ckpt" in message


def test_default_locations_follow_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAJBENCH_UPSTREAM", str(tmp_path))
    runner = MotionCtrl().runner()
    assert runner.repo_dir == tmp_path / "motionctrl" / "repo"
    assert runner.python == tmp_path / "motionctrl" / "env" / "bin" / "python"
    assert runner.driver == ROOT / "methods" / "upstream_drivers" / "motionctrl_svd.py"
    assert runner.driver.is_file()
    assert MotionI2V().runner().driver.is_file()


# --- runner failures ------------------------------------------------------------------------


def run_driver(tmp_path: Path, repo: Path, source: str, timeout_s: float = 60) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(source)
    runner = UpstreamRunner(MOTIONCTRL_SPEC, repo, sys.executable, driver, timeout_s)
    runner.run(lambda workdir: None, {}, 4, 32, 16)


def test_driver_failure_reports_log_tail(tmp_path: Path, motionctrl_repo: Path) -> None:
    source = (
        "import sys\n"
        "for i in range(2000):\n"
        "    print(f'line {i:04d} of a long log')\n"
        "sys.exit('CUDA out of memory (the last words)')\n"
    )
    with pytest.raises(UpstreamError) as info:
        run_driver(tmp_path, motionctrl_repo, source)
    message = str(info.value)
    assert "exited with status 1" in message
    assert "CUDA out of memory (the last words)" in message
    assert "line 1999" in message and "line 0000" not in message  # the tail, not the head
    workdir = Path(message.split("work dir kept: ")[1].split(")")[0])
    assert (workdir / "driver.log").is_file()  # the log is kept


def test_wrong_frame_count_is_an_error(tmp_path: Path, motionctrl_repo: Path) -> None:
    source = (
        "import json, sys, pathlib\n"
        "import numpy as np\n"
        "from PIL import Image\n"
        "s = json.loads((pathlib.Path(sys.argv[1]) / 'settings.json').read_text())\n"
        "out = pathlib.Path(s['frames_dir']); out.mkdir()\n"
        "for j in range(s['num_frames'] - 1):\n"
        "    Image.fromarray(np.zeros((s['height'], s['width'], 3), np.uint8))"
        ".save(out / f'{j:06d}.png')\n"
    )
    with pytest.raises(UpstreamError, match="expected 4 PNG frames .* found 3"):
        run_driver(tmp_path, motionctrl_repo, source)


def test_wrong_frame_size_is_an_error(tmp_path: Path, motionctrl_repo: Path) -> None:
    source = (
        "import json, sys, pathlib\n"
        "import numpy as np\n"
        "from PIL import Image\n"
        "s = json.loads((pathlib.Path(sys.argv[1]) / 'settings.json').read_text())\n"
        "out = pathlib.Path(s['frames_dir']); out.mkdir()\n"
        "for j in range(s['num_frames']):\n"
        "    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(out / f'{j:06d}.png')\n"
    )
    with pytest.raises(UpstreamError, match="is 8x8, expected 32x16"):
        run_driver(tmp_path, motionctrl_repo, source)


def test_driver_timeout(tmp_path: Path, motionctrl_repo: Path) -> None:
    with pytest.raises(UpstreamError, match="timed out after 1 s"):
        run_driver(tmp_path, motionctrl_repo, "import time\ntime.sleep(60)\n", timeout_s=1)


# --- Motion-I2V -----------------------------------------------------------------------------


def plane_request(frames: int, step: float, depth: float = 2.0) -> GenerationRequest:
    camera = truck_camera(512, 320, frames, step, 100.0)
    return GenerationRequest(image=gradient_image(512, 320), camera=camera, seed=1,
                             depth=np.full((320, 512), depth))


def test_motion_i2v_contract_with_standin(motion_i2v_repo: Path) -> None:
    """CONTRACT: 16 frames, flow (16, 2, 320, 512) float32 and a 512x320 image and a prompt in
    stage 2's format; frames read back; K of the output frames."""
    request = plane_request(16, 0.1)
    method = MotionI2V(standin_conf(motion_i2v_repo, keep_workdir=True))
    result = method.generate(request)
    assert result.frames.shape == (16, 320, 512, 3)
    assert np.array_equal(result.frames, np.broadcast_to(request.image, result.frames.shape))
    np.testing.assert_allclose(result.K, request.camera.K)
    # Fronto-parallel plane at depth 2, f = 100, truck 0.1 per frame: every pixel moves
    # -100 * 0.1 * i / 2 = -5 i px in x, 0 in y (hand-computed); nothing is behind the camera.
    flow = np.load(Path(result.info["workdir"]) / "flow.npy")
    expected_x = -5.0 * np.arange(16)[:, None, None]
    np.testing.assert_allclose(flow[:, 0], np.broadcast_to(expected_x, (16, 320, 512)),
                               atol=1e-3)
    assert np.abs(flow[:, 1]).max() < 1e-3
    assert not result.extras["flow_off_image"].any()
    assert "stage 1 bypassed" in result.info["flow_choice"]


def test_motion_i2v_refuses_more_than_16_frames(tmp_path: Path, motion_i2v_repo: Path) -> None:
    """Stage 2's position encoding (max_len 32) covers the interleaved 2F-1 sequence: 17
    frames are refused with the reason before upstream runs; 16 pass (contract test)."""
    marker = tmp_path / "launched"
    driver = tmp_path / "driver.py"
    driver.write_text(f"open({str(marker)!r}, 'w').close()\n")
    conf = {**standin_conf(motion_i2v_repo), "driver": str(driver)}
    for frames in (17, 32):
        with pytest.raises(ValueError, match=r"at most 16 frames.*2F-1"):
            MotionI2V(conf).generate(plane_request(frames, 0.01))
    assert not marker.exists()


def test_motion_i2v_needs_depth(motion_i2v_repo: Path) -> None:
    request = plane_request(2, 0.1)
    request.depth = None
    with pytest.raises(MethodUnavailable, match="needs the conditioning view's depth"):
        MotionI2V(standin_conf(motion_i2v_repo)).generate(request)


def test_motion_i2v_unavailable_names_setup(tmp_path: Path, motion_i2v_repo: Path) -> None:
    (motion_i2v_repo / "models/stage2/Motion_Module/motion_block.bin").unlink()
    with pytest.raises(MethodUnavailable, match=r"motion_block\.bin.*setup_motion_i2v\.sh"):
        MotionI2V(standin_conf(motion_i2v_repo)).generate(plane_request(2, 0.1))


def test_standin_rejects_empty_prompt(motion_i2v_repo: Path) -> None:
    """The stand-in can fail on a Motion-I2V input too (the adapter itself refuses an empty
    prompt, so the runner is called directly)."""
    runner = UpstreamRunner(MOTION_I2V_SPEC, motion_i2v_repo, sys.executable, STANDIN, 60)

    def write(workdir: Path) -> None:
        from PIL import Image

        Image.fromarray(gradient_image(512, 320)).save(workdir / "image.png")
        np.save(workdir / "flow.npy", np.zeros((2, 2, 320, 512), np.float32))

    settings = {"image": "image.png", "flow_file": "flow.npy", "prompt": " "}
    with pytest.raises(UpstreamError, match="non-empty text"):
        runner.run(write, settings, 2, 512, 320)
    with pytest.raises(ValueError, match="non-empty"):
        MotionI2V(standin_conf(motion_i2v_repo, prompt="")).generate(plane_request(2, 0.1))


def small_plane(frames: int, step: float, depth: np.ndarray) -> CameraPath:
    return truck_camera(depth.shape[1], depth.shape[0], frames, step, 20.0)


def test_stage2_flow_drop_sends_out_of_view_pixels_off() -> None:
    """Plane at depth 2, f = 20, truck 0.5/frame: flow -5 i px; in "drop" mode the pixels whose
    centre x + 0.5 - 5 i falls left of the image are sent off (hand-computed)."""
    depth = np.full((8, 40), 2.0)
    flow, off = stage2_flow(depth, small_plane(4, 0.5, depth), "drop")
    assert flow.shape == (4, 2, 8, 40) and flow.dtype == np.float32
    x = np.arange(40)
    for i in range(4):
        gone = np.broadcast_to(x + 0.5 - 5 * i < 0, (8, 40))
        np.testing.assert_array_equal(off[i], gone)
        np.testing.assert_allclose(flow[i, 0][~gone], -5.0 * i, atol=1e-4)
        assert np.all(flow[i, :, gone] == OFF_IMAGE)
    assert np.all(flow[0] == 0)


def test_stage2_flow_geometric_keeps_out_of_view_drops_behind_and_invalid() -> None:
    depth = np.full((8, 40), 2.0)
    depth[0, :3] = np.nan  # invalid depth: no displacement at all
    flow, off = stage2_flow(depth, small_plane(4, 0.5, depth), "geometric")
    expected_off = np.zeros((4, 8, 40), bool)
    expected_off[1:, 0, :3] = True
    np.testing.assert_array_equal(off, expected_off)
    np.testing.assert_allclose(flow[3, 0][~expected_off[3]], -15.0, atol=1e-4)  # out of view kept
    assert np.all(flow[1:, :, 0, :3] == OFF_IMAGE) and np.all(flow[0] == 0)
    # Dolly forward 3 through a plane at depth 2: z = 2 - 3 < 0 in the last frame -> all off.
    w2c = np.tile(np.eye(4), (3, 1, 1))
    w2c[:, 2, 3] = [0.0, -1.0, -3.0]
    K = np.array([[20.0, 0, 20], [0, 20, 4], [0, 0, 1]])
    camera = CameraPath(K=K, w2c=w2c, width=40, height=8)
    flow, off = stage2_flow(np.full((8, 40), 2.0), camera, "geometric")
    assert not off[1].any() and off[2].all()
    with pytest.raises(ValueError, match="invalid_flow"):
        stage2_flow(np.full((8, 40), 2.0), camera, "zero")


# --- set-up scripts and drivers -------------------------------------------------------------


@pytest.mark.parametrize("script", ["setup_motionctrl.sh", "setup_motion_i2v.sh"])
def test_setup_scripts_parse_and_pin(script: str) -> None:
    path = ROOT / "scripts" / script
    subprocess.run(["bash", "-n", str(path)], check=True)
    spec = MOTIONCTRL_SPEC if "motionctrl" in script else MOTION_I2V_SPEC
    assert f"COMMIT={spec.commit}" in path.read_text()
    assert spec.setup_script == f"scripts/{script}"


def test_setup_motionctrl_pins_what_upstream_leaves_open() -> None:
    """Upstream's requirements leave these open next to torch 1.13.1; the script constrains
    every one of them (and every pip install) to one exact version."""
    text = (ROOT / "scripts" / "setup_motionctrl.sh").read_text()
    pins = text.split("<<'PINS'\n")[1].split("\nPINS\n")[0].splitlines()
    pinned = dict(line.split("==") for line in pins if "==" in line)
    assert pinned["torch"] == "1.13.1" and pinned["xformers"] == "0.0.16"
    for package in ("transformers", "open_clip_torch", "kornia", "timm", "triton"):
        assert package in pinned, package
    installs = [line for line in text.splitlines() if "pip install" in line
                and "--upgrade pip" not in line and not line.lstrip().startswith("#")]
    assert installs and all('-c "$CONSTRAINTS"' in line for line in installs)


@pytest.mark.parametrize("driver", ["motionctrl_svd.py", "motion_i2v.py"])
def test_drivers_compile_and_pin(driver: str) -> None:
    """Drivers run only in the upstream envs; here: they compile and name the pinned commit."""
    path = ROOT / "methods" / "upstream_drivers" / driver
    compile(path.read_text(), str(path), "exec")
    spec = MOTIONCTRL_SPEC if "motionctrl" in driver else MOTION_I2V_SPEC
    assert spec.commit in path.read_text()
