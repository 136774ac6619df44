r"""Where the models and weights are, and whether they are there, without torch or diffusers.

A generate job with a missing model must say so at once: importing torch and diffusers costs
seconds per job, and loading SVD-XT before finding that the branch weights are missing costs
far more, paid once per clip when a suite runs a preset whose weights were never trained.
:func:`check_base_model` and :func:`check_weights_file` decide what can be decided from the
disk and the Hugging Face cache alone (local paths, and hub ids when downloads are off), so
the adapters (``methods.svd.DiffusionMethod.check_model_files``) run them before any import;
the loaders in :mod:`trajattn.pipeline` use the same functions, so the messages are the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SVD_XT = "stabilityai/stable-video-diffusion-img2vid-xt"
WAN_I2V_480P = "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"
OFFICIAL_WEIGHTS_REPO = "zeqixiao/TrajectoryAttention"
OFFICIAL_WEIGHTS_FILE = "trajattn_temp.pth"
#: ``weights`` spec of the released checkpoint: ``repo_id:filename`` on the Hugging Face hub.
OFFICIAL_WEIGHTS = f"{OFFICIAL_WEIGHTS_REPO}:{OFFICIAL_WEIGHTS_FILE}"


class MissingModelError(FileNotFoundError):
    """The base model or the trajectory-attention weights are not available locally; the
    message names what to download."""


def collect_missing(steps: Iterable[Callable[[], Any]]) -> list[Any]:
    """Run every step, the later ones too when one finds its model missing, and return their
    results; if any raised :class:`MissingModelError`, raise one naming every missing model,
    so that a user downloads all of them in one go instead of one per failed run."""
    results, problems = [], []
    for step in steps:
        try:
            results.append(step())
        except MissingModelError as exc:
            problems.append(str(exc))
    if problems:
        raise MissingModelError("; ".join(problems))
    return results


def offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: the hub is never asked."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def local_only(local_files_only: bool | None) -> bool:
    """Whether nothing may be downloaded: ``local_files_only`` or, when None, offline mode."""
    return bool(local_files_only) or offline()


def looks_like_path(spec: str) -> bool:
    """A local path rather than a hub id (``org/name``)."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or Path(spec).exists()


def _hub_spec(spec: str | Path) -> tuple[str, str] | None:
    """``(repo_id, filename)`` of a ``"repo_id:filename"`` spec; None for a local path."""
    text = str(spec)
    if ":" in text and not looks_like_path(text):
        repo_id, filename = text.split(":", 1)
        return repo_id, filename
    return None


def resolve_weights_file(
    spec: str | Path,
    local_files_only: bool | None = True,
    what: str = "trajectory-attention weights",
    download_hint: str | None = None,
) -> Path:
    r"""A local weights file from a path or a hub spec ``"repo_id:filename"`` (downloaded
    unless :func:`local_only`).

    ``what`` names the file in errors; ``download_hint`` says how to get it when a local path
    is missing (default: the official trajectory-attention checkpoint).

    Raises:
        MissingModelError: the file is not there (names the download command).
    """
    hub = _hub_spec(spec)
    if hub is not None:
        repo_id, filename = hub
        from huggingface_hub import hf_hub_download

        try:
            return Path(
                hf_hub_download(repo_id, filename, local_files_only=local_only(local_files_only))
            )
        except Exception as exc:  # hub errors vary (offline, not cached, no such repo)
            raise MissingModelError(
                f"{what} {filename!r} from {repo_id!r} are not available "
                f"locally: run `huggingface-cli download {repo_id} {filename}` "
                f"(or give a local path) ({type(exc).__name__})"
            ) from exc
    path = Path(spec).expanduser()
    if not path.is_file():
        hint = download_hint or (
            f"download the official checkpoint with `huggingface-cli download "
            f"{OFFICIAL_WEIGHTS_REPO} {OFFICIAL_WEIGHTS_FILE}` (or train and save branch "
            "weights there)"
        )
        raise MissingModelError(f"{what} not found at {path}: {hint}")
    return path


def check_weights_file(
    spec: str | Path,
    local_files_only: bool | None,
    what: str = "trajectory-attention weights",
    download_hint: str | None = None,
) -> None:
    """:func:`resolve_weights_file` where it needs no network: a local path, or a hub spec
    when downloads are off (a cache lookup). A hub spec that may still be downloaded passes.

    Raises:
        MissingModelError: as :func:`resolve_weights_file`.
    """
    if _hub_spec(spec) is None or local_only(local_files_only):
        resolve_weights_file(spec, True, what, download_hint)


@dataclass(frozen=True)
class BaseModel:
    """A diffusers base model family: its name in messages, the hub id named when a local
    folder is missing, and how to download a hub id."""

    what: str
    default: str
    download_hint: str = ""  # appended to the download command of the default model

    def download(self, model: str) -> str:
        text = f"huggingface-cli download {model}"
        return text + self.download_hint if model == self.default else text


SVD = BaseModel("SVD", SVD_XT)
WAN = BaseModel("Wan", WAN_I2V_480P, "` or `trajbench fetch-weights wan-i2v")
#: ``what`` and ``download_hint`` of the Wan branch weights (none released)
WAN_BRANCH_WEIGHTS = (
    "Wan trajectory-attention weights",
    "the Wan branch needs trained weights, none have been released: train them with "
    "`python -m trajattn.wan.train` and give the saved safetensors file",
)


def check_base_model(base_model: str | Path, family: BaseModel, local_files_only: bool | None):
    """Raise :class:`MissingModelError` when ``base_model`` (a diffusers folder or hub id) is
    certainly absent: a folder that does not exist, or a hub id not in the cache while
    downloads are off (no ``model_index.json`` there). Whether a present model loads is for
    the loader to find out.
    """
    base = str(base_model)
    if looks_like_path(base):
        if not Path(base).expanduser().is_dir():
            raise MissingModelError(
                f"{family.what} base model not found at {base}: download it with "
                f"`{family.download(family.default)}` and give its folder (or the hub id) as "
                "base_model"
            )
        return
    if not local_only(local_files_only):
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(base, "model_index.json"), str):
        raise MissingModelError(
            f"the {family.what} base model {base!r} is not in the Hugging Face cache and "
            f"downloads are off: download it with `{family.download(base)}`"
        )
