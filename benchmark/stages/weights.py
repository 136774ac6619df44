r"""``trajbench fetch-weights``: download the weights the benchmark uses, on a networked machine.

Everything goes where the loading code looks for it (the Hugging Face cache, torch's hub
cache, clean-fid's Inception folder), so runs on the same machine (or with the caches shared)
find it offline afterwards. Upstream-environment methods (MotionCtrl, Motion-I2V) fetch their
weights in their set-up scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from benchmark.stages.fid import fetch_inception_weights
from trajattn.tracking import COTRACKER3_URL


@dataclass(frozen=True)
class WeightSource:
    """What to fetch and how: a hub repository (whole, or one file), or a custom fetcher."""

    description: str
    repo_id: str | None = None
    filename: str | None = None
    fetch: Callable[[], str] | None = None


def _inception() -> str:
    return str(fetch_inception_weights())


def _cotracker3() -> str:
    import torch  # seconds and ~650 MB: only this download needs it

    torch.hub.load_state_dict_from_url(COTRACKER3_URL, map_location="cpu")
    return f"{COTRACKER3_URL} (torch hub cache)"


def _script(name: str) -> Callable[[], str]:
    def fetch() -> str:
        raise RuntimeError(f"run `bash scripts/setup_{name}.sh`: it clones the pinned upstream "
                           "code, builds its environment and downloads its weights")

    return fetch


SOURCES: dict[str, WeightSource] = {
    "inception": WeightSource("Inception for FID (clean-fid)", fetch=_inception),
    "svd-xt": WeightSource("Stable Video Diffusion XT (gated: accept its licence, "
                           "`huggingface-cli login`)",
                           repo_id="stabilityai/stable-video-diffusion-img2vid-xt"),
    "svd": WeightSource("Stable Video Diffusion (14 frames; gated like svd-xt)",
                        repo_id="stabilityai/stable-video-diffusion-img2vid"),
    "trajattn": WeightSource("Trajectory Attention official weights",
                             repo_id="zeqixiao/TrajectoryAttention", filename="trajattn_temp.pth"),
    "wan-i2v": WeightSource("Wan 2.1 image-to-video 14B 480p, diffusers format (trajattn_wan)",
                            repo_id="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"),
    "cameractrl": WeightSource("CameraCtrl for SVD-XT", repo_id="hehao13/CameraCtrl_SVD_ckpts",
                               filename="CameraCtrl_svdxt.ckpt"),
    "cameractrl-svd": WeightSource("CameraCtrl for SVD", repo_id="hehao13/CameraCtrl_SVD_ckpts",
                                   filename="CameraCtrl_svd.ckpt"),
    "depth": WeightSource("Depth-Anything-V2 Large (transformers)",
                          repo_id="depth-anything/Depth-Anything-V2-Large-hf"),
    "cotracker3": WeightSource("CoTracker3 offline", fetch=_cotracker3),
    "motionctrl": WeightSource("MotionCtrl-SVD (upstream environment)",
                               fetch=_script("motionctrl")),
    "motion_i2v": WeightSource("Motion-I2V (upstream environment)", fetch=_script("motion_i2v")),
}


def _download(source: WeightSource) -> str:
    if source.fetch is not None:
        return source.fetch()
    from huggingface_hub import hf_hub_download, snapshot_download  # only hub downloads use it

    if source.filename is not None:
        return hf_hub_download(source.repo_id, source.filename)
    return snapshot_download(source.repo_id)


def fetch_weights(names: list[str]) -> Iterator[str]:
    """Fetch each named source (default: inception; ``list``: describe them); yields one line
    per source. Raises RuntimeError at the end naming every source that failed."""
    if names == ["list"]:
        for name, source in SOURCES.items():
            yield f"{name:15s} {source.description}"
        return
    names = names or ["inception"]
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise ValueError(f"unknown weights {unknown}; known: {', '.join(SOURCES)} (or 'list')")
    failed = []
    for name in names:
        try:
            yield f"{name}: {_download(SOURCES[name])}"
        except Exception as exc:  # network, licence, missing package: report and go on
            failed.append(name)
            yield f"{name}: FAILED ({type(exc).__name__}: {exc})"
    if failed:
        raise RuntimeError(f"could not fetch {', '.join(failed)}")
