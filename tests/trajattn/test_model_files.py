"""Missing models are found without torch: local paths, and the Hugging Face cache when
downloads are off (trajattn.model_files). The adapters' use of it: tests/methods/
test_missing_models.py.

The cache is a real one in the layout ``huggingface_hub`` reads (refs/main -> snapshot),
built in a temporary folder; nothing here may reach the network.
"""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest

from trajattn.model_files import (
    SVD,
    WAN,
    MissingModelError,
    check_base_model,
    check_weights_file,
    collect_missing,
)


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


def test_collect_missing_runs_every_step_and_names_every_missing_model():
    ran = []

    def missing(name):
        def step():
            ran.append(name)
            raise MissingModelError(f"{name} not found")
        return step

    def present(name):
        return lambda: ran.append(name) or name

    assert collect_missing([present("a"), present("b")]) == ["a", "b"]
    ran.clear()
    with pytest.raises(MissingModelError) as caught:
        collect_missing([missing("svd"), present("vae"), missing("weights")])
    assert ran == ["svd", "vae", "weights"]  # the steps after a missing model still ran
    assert str(caught.value) == "svd not found; weights not found"
    with pytest.raises(ZeroDivisionError):  # other errors are not a missing model
        collect_missing([lambda: 1 / 0, missing("never")])
