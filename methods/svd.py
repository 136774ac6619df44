"""The base class of the diffusers-based adapters (SVD and Wan): shared options, one cached
pipeline per adapter, and missing weights reported as :class:`MethodUnavailable`.

A subclass sets ``default_conf`` (usually ``{..., **SVD_OPTIONS}``) and implements
:meth:`DiffusionMethod.load_pipeline` (the real models) and
:meth:`DiffusionMethod.tiny_pipeline` (tiny random models for CPU tests); the base builds the
pipeline once, on first use, moves it to the configured device and dtype and turns
:class:`trajattn.model_files.MissingModelError` into :class:`MethodUnavailable` naming what to
download. Before any of that, :meth:`DiffusionMethod.check_model_files` looks for the model
files on disk without importing torch, so that a preset without its weights fails in a
fraction of a second instead of after importing diffusers and loading SVD.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from methods.base import Method, MethodUnavailable
from methods.framing import resolve_device_dtype
from trajattn.model_files import (  # no torch
    SVD,
    SVD_XT,
    MissingModelError,
    check_base_model,
    collect_missing,
)

__all__ = ["SVD_OPTIONS", "SVD_XT", "DiffusionMethod"]


#: Options every diffusers adapter has (the adapters put their own before and after these).
SVD_OPTIONS: dict[str, Any] = {
    "decode_chunk_size": None,  # frames per VAE decode; null = all at once
    "device": "auto",  # "auto": cuda when available, else cpu
    "dtype": "auto",  # "auto": float16 on cuda, float32 on cpu
    "local_files_only": None,  # never download; null: only when HF_HUB_OFFLINE is set
    "tiny": False,  # tiny random models for CPU tests (ignores base_model and weights)
}


class DiffusionMethod(Method):
    """A method whose generation runs one diffusers pipeline, built once and cached."""

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        self._pipe: Any = None

    def device_dtype(self) -> tuple[str, Any]:
        """The torch device and dtype of the ``device``/``dtype`` options."""
        return resolve_device_dtype(self.conf["device"], self.conf["dtype"])

    def load_pipeline(self, dtype: Any) -> Any:
        """The pipeline of the real models, loaded in ``dtype`` (not yet moved to the device).

        Raises:
            trajattn.pipeline.MissingModelError or MethodUnavailable: a model is missing.
        """
        raise NotImplementedError

    def tiny_pipeline(self, dtype: Any) -> Any:
        """The pipeline of tiny random models (``tiny: true``)."""
        raise NotImplementedError

    def model_file_checks(self) -> list[Callable[[], Any]]:
        """The torch-free checks :meth:`check_model_files` runs (:mod:`trajattn.model_files`);
        here the SVD ``base_model`` of presets that have one. Subclasses add their weights."""
        if "base_model" not in self.conf:
            return []
        conf = self.conf
        return [lambda: check_base_model(conf["base_model"], SVD, conf["local_files_only"])]

    def check_model_files(self) -> None:
        """Fail fast, before torch and diffusers are imported, when a model the real pipeline
        needs is certainly missing. Every check of :meth:`model_file_checks` runs, so one
        message names every missing model.

        Raises:
            MissingModelError or MethodUnavailable: naming what to download.
        """
        collect_missing(self.model_file_checks())

    def place(self, pipe: Any, device: str, dtype: Any) -> Any:
        """Move the built pipeline to the device and dtype (override for offloading)."""
        return pipe.to(device=device, dtype=dtype)

    def pipeline(self) -> Any:
        """The loaded pipeline (built on first use). Raises MethodUnavailable when a model or
        weights file is missing, naming what to download."""
        if self._pipe is not None:
            return self._pipe
        try:
            if not self.conf["tiny"]:
                self.check_model_files()  # before the seconds of importing torch, diffusers
            device, dtype = self.device_dtype()
            pipe = self.tiny_pipeline(dtype) if self.conf["tiny"] else self.load_pipeline(dtype)
        except MissingModelError as exc:
            raise MethodUnavailable(str(exc)) from exc
        pipe = self.place(pipe, device, dtype)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe
        return pipe
