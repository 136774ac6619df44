"""A preset without its models fails at once, before torch and diffusers are imported
(methods.svd.DiffusionMethod.check_model_files, trajattn.model_files), with a message that
says what to get (the words ``trajbench check-method`` looks for)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmark.stages.conformance import NAMES_WHAT_IS_MISSING

ROOT = Path(__file__).resolve().parents[2]

ADAPTER_RUN = textwrap.dedent(
    """
    import json, sys
    from methods import create_method
    from methods.base import MethodUnavailable
    from methods.presets import load_preset

    name, args = sys.argv[1], json.loads(sys.argv[2])
    preset = load_preset(name)
    method = create_method(preset["adapter"], {**preset["args"], **args})
    try:
        method.pipeline()
        reason = None
    except MethodUnavailable as exc:
        reason = str(exc)
    print(json.dumps({"reason": reason, "torch": "torch" in sys.modules,
                      "diffusers": "diffusers" in sys.modules}))
    """
)


@pytest.mark.parametrize(
    ("preset", "args", "named"),
    [
        ("trajattn_addon", {"base_model": "{svd}"}, "trajbench train --variant addon"),
        ("trajattn", {"base_model": "{svd}", "local_files_only": True}, "zeqixiao"),
        ("trajattn_tuning", {}, "stabilityai/stable-video-diffusion-img2vid-xt"),
        ("trajattn_tuning", {"base_model": "{svd}"}, "the tuning variant needs trained weights"),
        ("trajattn_inherit", {"base_model": "{svd}", "weights": "{svd}/w.pth"},
         "huggingface-cli download zeqixiao/TrajectoryAttention trajattn_temp.pth"),
        ("trajattn_wan", {"base_model": "{svd}"}, "python -m trajattn.wan.train"),
        ("cameractrl", {"base_model": "{svd}", "local_files_only": True}, "hehao13"),
        ("nvs_solver", {"base_model": "{svd}/missing"}, "missing"),
    ],
)
def test_a_preset_without_its_models_fails_before_importing_torch(tmp_path, preset, args,
                                                                   named):
    # a suite runs such a preset once per clip: each job must fail at once, not after
    # importing torch and diffusers (seconds) and loading SVD (far more) on a GPU box
    svd = tmp_path / "svd"
    svd.mkdir()  # a base model folder that exists: the weights are what is missing
    args = {k: v.replace("{svd}", str(svd)) if isinstance(v, str) else v for k, v in args.items()}
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache"),
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", ADAPTER_RUN, preset, json.dumps(args)],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["reason"] is not None and named in result["reason"], result
    assert any(word in result["reason"] for word in NAMES_WHAT_IS_MISSING)  # check-method's
    assert not result["torch"] and not result["diffusers"], result


@pytest.mark.parametrize(
    ("preset", "named"),
    [
        ("trajattn_inherit", ("SVD base model not found", "trajectory-attention weights")),
        ("trajattn_wan", ("Wan base model not found", "Wan trajectory-attention weights")),
        ("cameractrl", ("SVD base model not found", "CameraCtrl-SVD checkpoint")),
    ],
)
def test_a_preset_missing_base_model_and_weights_names_both(tmp_path, preset, named):
    # one message for everything that is missing: a user downloads it all in one go instead
    # of finding the weights missing only after the base model has been fetched
    args = {"base_model": str(tmp_path / "no-base"), "weights": str(tmp_path / "w.pth"),
            "checkpoint": str(tmp_path / "ckpt.ckpt")}
    if preset != "cameractrl":
        del args["checkpoint"]
    else:
        del args["weights"]
    done = subprocess.run(
        [sys.executable, "-c", ADAPTER_RUN, preset, json.dumps(args)],
        cwd=tmp_path, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                           "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["reason"] is not None, result
    for name in named:
        assert name in result["reason"], result
    assert not result["torch"] and not result["diffusers"], result
