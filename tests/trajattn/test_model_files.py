"""Missing models are found without torch: local paths, and the Hugging Face cache when
downloads are off (trajattn.model_files), and the adapters fail on them before any import.

The cache is a real one in the layout ``huggingface_hub`` reads (refs/main -> snapshot),
built in a temporary folder; nothing here may reach the network.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import huggingface_hub
import pytest

from benchmark.stages.conformance import NAMES_WHAT_IS_MISSING
from trajattn.model_files import (
    SVD,
    WAN,
    MissingModelError,
    check_base_model,
    check_weights_file,
)

ROOT = Path(__file__).resolve().parents[2]


def cache_with(tmp_path: Path, repo_id: str, filename: str) -> Path:
    """A Hugging Face hub cache in ``tmp_path`` holding one file of one model repo."""
    repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / filename).write_text("{}")
    return tmp_path / "hub"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("a check asked the hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_local_base_model_folder(tmp_path, no_network):
    check_base_model(tmp_path, SVD, None)  # a folder: the loader decides whether it loads
    with pytest.raises(MissingModelError, match="huggingface-cli download stabilityai/stable-vi"):
        check_base_model(tmp_path / "no-svd", SVD, None)
    with pytest.raises(MissingModelError, match="trajbench fetch-weights wan-i2v"):
        check_base_model(tmp_path / "no-wan", WAN, True)


def test_hub_base_model_is_looked_up_in_the_cache_only_when_downloads_are_off(
    tmp_path, monkeypatch, no_network
):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    check_base_model(SVD.default, SVD, None)  # may still be downloaded: not decided here
    check_base_model(SVD.default, SVD, False)
    with pytest.raises(MissingModelError, match="not in the Hugging Face cache"):
        check_base_model(SVD.default, SVD, True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # local_files_only null follows offline mode
    with pytest.raises(MissingModelError, match=f"huggingface-cli download {SVD.default}"):
        check_base_model(SVD.default, SVD, None)
    cache = cache_with(tmp_path, SVD.default, "model_index.json")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    check_base_model(SVD.default, SVD, None)
    other = cache_with(tmp_path / "other", WAN.default, "config.json")  # no model_index.json
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(other))
    with pytest.raises(MissingModelError, match="Wan base model"):
        check_base_model(WAN.default, WAN, True)


def test_weights_file_checks(tmp_path, monkeypatch, no_network):
    weights = tmp_path / "branch.safetensors"
    with pytest.raises(MissingModelError, match="branch.safetensors"):
        check_weights_file(weights, None)
    weights.write_bytes(b"x")
    check_weights_file(weights, None)
    spec = "zeqixiao/TrajectoryAttention:trajattn_temp.pth"
    check_weights_file(spec, None)  # downloads allowed: the loader fetches it (no call here)
    monkeypatch.undo()  # the cache lookup itself goes through hf_hub_download(local only)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(MissingModelError, match="huggingface-cli download zeqixiao/Traj"):
        check_weights_file(spec, True)


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
