"""Tiny randomly initialised diffusers models for CPU tests (built in well under a second)."""

from __future__ import annotations

from trajattn.tiny import tiny_unet

__all__ = ["tiny_unet"]
